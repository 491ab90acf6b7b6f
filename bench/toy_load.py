"""Concurrent emulated ESP32 toys at real-time pace against the echo agent.

Each toy behaves like the firmware's protocol: after every RESPONSE.COMPLETE/ERROR it waits
the 1000 ms hold, then streams its microphone (2 s of recorded speech, then silence) as
1024-byte s16le messages every 32 ms until the server sends AUDIO.COMMITTED. The server runs
pinned to core 0 and this generator on core 1, driving every toy from one 32 ms ticker. The
generator does not decode Opus (that is the toy's cost, not the server's); it counts packets,
each the server's 120 ms frame.

    python -m bench.toy_load --toys 1,50,100,200 --seconds 30
"""

from __future__ import annotations

import json
import time
from functools import cache

from bench.sessions import SessionBench, SimSession, main, speech_chunks
from bench.wsclient import OP_BINARY, OP_TEXT, LeanWebSocket, open_lean

MIC_CHUNK_BYTES = 1024
MIC_CHUNK_MS = 32
HOLD_MS = 1000
#: the server's Opus frame (``BRIDGE_ESP32_FRAME_MS``'s default)
REPLY_FRAME_S = 0.120
SILENCE = b"\x00" * MIC_CHUNK_BYTES


@cache
def mic_frames() -> tuple[list[bytes], int]:
    """2 s of speech in 1024-byte chunks; and the index after the last voiced chunk."""
    return speech_chunks(MIC_CHUNK_BYTES)


class SimToy(SimSession):
    def __init__(
        self, ws: LeanWebSocket, speech: list[bytes], speech_end: int, phase_s: float
    ) -> None:
        self.speech = speech
        self.speech_end = speech_end
        self.listen_at: float | None = None
        self.phase_s = phase_s
        self.position = 0
        super().__init__(ws)

    def tick(self, now: float, measuring: bool) -> None:
        super().tick(now, measuring)
        if self.listen_at is None or now < self.listen_at:
            return
        chunk = self.speech[self.position] if self.position < len(self.speech) else SILENCE
        self.ws.send(OP_BINARY, chunk)
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
        msg = json.loads(payload).get("msg")
        if msg in ("AUDIO.COMMITTED", "RESPONSE.CREATED"):
            self.listen_at = None  # the mic stops
        elif msg in ("RESPONSE.COMPLETE", "RESPONSE.ERROR"):
            self.reply_over(msg == "RESPONSE.COMPLETE")
            self.position = 0
            self.spoke_at = None
            self.listen_at = now + HOLD_MS / 1000 + self.phase_s
            self.phase_s = 0.0


async def open_toy(index: int, n: int, port: int) -> SimToy:
    speech, speech_end = mic_frames()
    mac = f"24:0A:C4:{index >> 16 & 255:02X}:{index >> 8 & 255:02X}:{index & 255:02X}"
    ws = await open_lean(
        "127.0.0.1", port, "/ws/esp32", {"X-Device-Mac": mac, "Sec-WebSocket-Protocol": "arduino"}
    )
    return SimToy(ws, speech, speech_end, phase_s=(index * 6.0) / n)


TOYS = SessionBench(noun="toys", period_ms=MIC_CHUNK_MS, open_client=open_toy)

if __name__ == "__main__":
    main(TOYS, __doc__, "1,50,100,200", "--toys")
