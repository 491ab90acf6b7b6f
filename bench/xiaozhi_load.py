"""Concurrent emulated xiaozhi-esp32 devices (``/xiaozhi/v1/``) at real-time pace, echo agent.

Each device does what the firmware does in auto mode (``transports/xiaozhi/emulator`` is the
full emulator; this is its lean part): the four handshake headers (protocol version 1, its own
``Device-Id``), ``hello`` with 16 kHz 60 ms Opus (and no MCP tools) and a wait for ours, then
``listen start`` and its microphone, one Opus packet every 60 ms: 2 s of recorded speech, then
silence, until our ``tts start`` turns the microphone off (half duplex). The reply's packets
(24 kHz Opus, 60 ms each) play on a virtual clock; on ``tts stop`` the device listens again at
once. The uplink is encoded once, before the run, with libopus as the firmware's encoder would
(16 kHz, VOIP, 60 ms), and the packets are replayed; replies are counted, not decoded (decoding
is the device's cost, not the server's). The server runs pinned to core 0, this generator on
core 1, one 60 ms ticker driving every device (``--groups 3`` staggers them over 20 ms steps).

    python -m bench.xiaozhi_load --devices 1,50,100 --seconds 20 --runs 3
"""

from __future__ import annotations

import asyncio
import json
import time
from functools import cache

import opuslib

from bench.sessions import SessionBench, SimSession, main, speech_chunks
from bench.wsclient import OP_BINARY, OP_TEXT, LeanWebSocket, open_lean

FRAME_MS = 60
FRAME_SAMPLES = 16 * FRAME_MS
#: the reply's packets, as our hello announces them
REPLY_FRAME_S = 0.060
#: silence packets encoded after the speech, so the encoder settles; the last one repeats
SILENCE_FRAMES = 20
HELLO = json.dumps(
    {
        "type": "hello",
        "version": 1,
        # no MCP: a device that offers it is asked for its tools, which this one cannot answer
        "features": {},
        "transport": "websocket",
        "audio_params": {
            "format": "opus",
            "sample_rate": 16000,
            "channels": 1,
            "frame_duration": FRAME_MS,
        },
    }
)


@cache
def mic_packets() -> tuple[list[bytes], int]:
    """The microphone as Opus packets, speech then silence; the index after the last voiced."""
    speech, speech_end = speech_chunks(FRAME_SAMPLES * 2)
    encoder = opuslib.Encoder(16000, 1, opuslib.APPLICATION_VOIP)
    pcm = [*speech, *[bytes(FRAME_SAMPLES * 2)] * SILENCE_FRAMES]
    return [encoder.encode(chunk, FRAME_SAMPLES) for chunk in pcm], speech_end


class SimDevice(SimSession):
    def __init__(self, ws: LeanWebSocket, phase_s: float) -> None:
        self.packets, self.speech_end = mic_packets()
        self.position = 0
        self.listen_at: float | None = None
        self.phase_s = phase_s
        self.session_id = ""
        self.hello: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        super().__init__(ws)

    def listen(self, now: float) -> None:
        self.ws.send_text(
            f'{{"session_id":"{self.session_id}","type":"listen","state":"start","mode":"auto"}}'
        )
        self.position = 0
        self.listen_at = now + self.phase_s
        self.phase_s = 0.0

    def tick(self, now: float, measuring: bool) -> None:
        super().tick(now, measuring)
        if self.listen_at is None or now < self.listen_at:
            return
        packets = self.packets
        self.ws.send(OP_BINARY, packets[min(self.position, len(packets) - 1)])
        self.position += 1
        if self.position == self.speech_end:
            self.spoke(now)

    def on_message(self, opcode: int, payload: bytes) -> None:
        now = time.monotonic()
        if opcode == OP_BINARY:
            self.reply_audio(now, REPLY_FRAME_S)
            return
        if opcode != OP_TEXT:
            return
        message = json.loads(payload)
        kind = message.get("type")
        if kind == "tts":
            state = message.get("state")
            if state == "start":
                self.listen_at = None  # half duplex: the microphone is off while speaking
            elif state == "stop":
                self.reply_over()
                self.spoke_at = None
                self.listen(now)
        elif kind == "alert":
            self.stats.errors += 1
        elif kind == "hello" and not self.hello.done():
            self.session_id = str(message.get("session_id", ""))
            self.hello.set_result(None)


async def open_device(index: int, n: int, port: int) -> SimDevice:
    mac = f"24:0a:c4:{index >> 16 & 255:02x}:{index >> 8 & 255:02x}:{index & 255:02x}"
    headers = {
        "Device-Id": mac,
        "Client-Id": f"00000000-0000-4000-8000-{index:012d}",
        "Protocol-Version": "1",
    }
    ws = await open_lean("127.0.0.1", port, "/xiaozhi/v1/", headers)
    device = SimDevice(ws, phase_s=(index * 5.0) / n)
    ws.send_text(HELLO)
    await asyncio.wait_for(device.hello, 10)
    device.listen(time.monotonic())
    return device


DEVICES = SessionBench(noun="devices", period_ms=FRAME_MS, open_client=open_device)

if __name__ == "__main__":
    main(DEVICES, __doc__, "1,50,100,200", "--devices")
