// Audio worklets of the talk page: the microphone to 16 kHz PCM16, and the agent's 16 kHz
// PCM16 to the speakers with a count of what was played (the bridge's "heard" position).
const WIRE_RATE_HZ = 16000;
const FRAME_SAMPLES = 320; // 20 ms at 16 kHz

class CaptureProcessor extends AudioWorkletProcessor {
  constructor() {
    super();
    this.ratio = sampleRate / WIRE_RATE_HZ; // input samples per output sample
    this.acc = 0;
    this.sum = 0;
    this.count = 0;
    this.frame = new Int16Array(FRAME_SAMPLES);
    this.length = 0;
  }

  process(inputs) {
    const channel = inputs[0] && inputs[0][0];
    if (!channel) return true;
    for (let i = 0; i < channel.length; i++) {
      // a box filter over each output sample's span: enough against aliasing for speech
      this.sum += channel[i];
      this.count += 1;
      this.acc += 1;
      if (this.acc >= this.ratio) {
        this.acc -= this.ratio;
        const value = this.sum / this.count;
        this.sum = 0;
        this.count = 0;
        this.frame[this.length++] = Math.max(-32768, Math.min(32767, Math.round(value * 32767)));
        if (this.length === FRAME_SAMPLES) {
          this.port.postMessage(this.frame.buffer, [this.frame.buffer]);
          this.frame = new Int16Array(FRAME_SAMPLES);
          this.length = 0;
        }
      }
    }
    return true;
  }
}

class PlayerProcessor extends AudioWorkletProcessor {
  constructor(options) {
    super();
    this.debug = Boolean(options.processorOptions && options.processorOptions.debug);
    this.queue = [];
    this.offset = 0; // next source sample in queue[0]
    this.phase = 0; // fraction of a source sample already played
    this.step = WIRE_RATE_HZ / sampleRate;
    this.turn = null;
    this.playedSamples = 0; // of this.turn, in source samples
    this.sinceReport = 0;
    this.captured = [];
    this.port.onmessage = (event) => this.command(event.data);
  }

  command(message) {
    if (message.type === "audio") {
      if (message.turn !== this.turn) {
        this.turn = message.turn;
        this.playedSamples = 0;
      }
      this.queue.push(new Int16Array(message.pcm));
    } else if (message.type === "clear") {
      // stop now: what is queued is dropped, and the bridge learns exactly where we stopped
      this.queue = [];
      this.offset = 0;
      this.phase = 0;
      this.report(true);
    }
  }

  report(final) {
    if (this.turn === null) return;
    this.port.postMessage({ type: "played", turn: this.turn, ms: this.playedSamples / 16, final });
    if (this.debug && this.captured.length) {
      const pcm = Int16Array.from(this.captured);
      this.captured = [];
      this.port.postMessage({ type: "debug", pcm: pcm.buffer }, [pcm.buffer]);
    }
  }

  process(inputs, outputs) {
    const out = outputs[0][0];
    for (let i = 0; i < out.length; i++) {
      if (!this.queue.length) {
        out[i] = 0;
        continue;
      }
      const buffer = this.queue[0];
      out[i] = buffer[this.offset] / 32768;
      this.phase += this.step;
      while (this.phase >= 1 && this.queue.length) {
        this.phase -= 1;
        if (this.debug) this.captured.push(this.queue[0][this.offset]);
        this.offset += 1;
        this.playedSamples += 1;
        if (this.offset >= this.queue[0].length) {
          this.queue.shift();
          this.offset = 0;
        }
      }
    }
    this.sinceReport += out.length;
    if (this.sinceReport >= sampleRate / 10) {
      this.sinceReport = 0;
      this.report(false);
    }
    return true;
  }
}

registerProcessor("capture", CaptureProcessor);
registerProcessor("player", PlayerProcessor);
