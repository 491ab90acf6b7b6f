"""Per-operation costs of the audio hot path, in microseconds (median of repeats).

    python -m bench.audio_costs

Also prints how much audio each soxr quality holds back at 8 -> 16 kHz, which is why the
live path uses "LQ" (pipeline/audio.py).
"""

from __future__ import annotations

import base64
import json
import statistics
import timeit
from collections.abc import Callable

import numpy as np
import soxr

from bench.twilio_load import FIXTURE
from pipeline.audio import ULAW_8K, AudioSpec, Converter, StreamResampler
from pipeline.endpointing import Endpointer
from pipeline.g711 import pcm16_to_ulaw, ulaw_to_pcm16
from pipeline.wav import read_wav
from transports.esp32.opus import OpusPacketizer
from transports.twilio.protocol import TwilioProtocol

REPEATS = 7


def measure(fn: Callable[[], object], number: int) -> float:
    runs = timeit.repeat(fn, number=number, repeat=REPEATS)
    return statistics.median(runs) / number * 1e6


def main() -> None:
    pcm16k, _ = read_wav(FIXTURE)
    conv = Converter(AudioSpec("pcm16", 16000), ULAW_8K)
    ulaw = conv.process(pcm16k) + conv.flush()
    frame_ulaw = ulaw[16000:16160]
    frame_pcm8k = ulaw_to_pcm16(frame_ulaw)
    speech24 = StreamResampler(16000, 24000).process(pcm16k)
    frame24 = speech24[48000 : 48000 + 5760]
    proto = TwilioProtocol()
    proto.receive_text(
        json.dumps(
            {"event": "start", "start": {"streamSid": "MZ1", "callSid": "CA1", "accountSid": "AC1"}}
        )
    )
    media = json.dumps(
        {
            "event": "media",
            "streamSid": "MZ1",
            "media": {
                "track": "inbound",
                "chunk": "1",
                "timestamp": "20",
                "payload": base64.b64encode(frame_ulaw).decode(),
            },
        }
    )
    endpointer = Endpointer(8000)
    speech_frames = [ulaw_to_pcm16(ulaw[i : i + 160]) for i in range(0, len(ulaw) - 160, 160)]
    cursor = [0]

    def endpoint_speech() -> None:
        endpointer.push(speech_frames[cursor[0] % len(speech_frames)])
        cursor[0] += 1

    packetizer = OpusPacketizer(120)
    up = StreamResampler(16000, 24000)
    rows = [
        (
            "Twilio media frame: JSON + base64 + checks",
            measure(lambda: proto.receive_text(media), 20000),
        ),
        ("μ-law -> PCM16, 20 ms", measure(lambda: ulaw_to_pcm16(frame_ulaw), 50000)),
        ("PCM16 -> μ-law, 20 ms", measure(lambda: pcm16_to_ulaw(frame_pcm8k), 50000)),
        ("endpointer, 20 ms of speech (VAD)", measure(endpoint_speech, 20000)),
        ("endpointer, 20 ms of silence", measure(lambda: endpointer.push(b"\x00" * 320), 50000)),
        ("resample 16 -> 24 kHz, 120 ms", measure(lambda: up.process(pcm16k[:3840]), 5000)),
        (
            "Opus encode, 120 ms of speech at 24 kHz",
            measure(lambda: packetizer.encode(frame24), 500),
        ),
    ]
    print("| operation | µs (median) |\n|---|---:|")
    for name, micros in rows:
        print(f"| {name} | {micros:.1f} |")
    print("\n| soxr quality | audio held back at 8 -> 16 kHz (ms) |\n|---|---:|")
    impulse = np.zeros(1600, dtype=np.int16)
    for quality in ("QQ", "LQ", "MQ", "HQ", "VHQ"):
        stream = soxr.ResampleStream(8000, 16000, 1, dtype="int16", quality=quality)
        out = sum(len(stream.resample_chunk(impulse[i : i + 160])) for i in range(0, 1600, 160))
        print(f"| {quality} | {(3200 - out) / 16:.1f} |")


if __name__ == "__main__":
    main()
