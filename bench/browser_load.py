"""Concurrent emulated talk pages (``/ws/browser``) at real-time pace against the echo agent.

Each page does what ``bridge/browser/static/`` does: it says ``hello``, then its microphone
never stops (the page is full duplex): PCM16 at 16 kHz, one 640-byte binary message every
20 ms, in a 5 s cycle of 2 s of recorded speech and 3 s of silence, as the Twilio bench's
calls. Replies (PCM16 16 kHz after a ``turn`` message) play on a virtual clock, and every
100 ms, once a reply has begun, the page reports ``played`` for the current reply as the
player worklet does (the pacer's bound on unheard audio rests on those reports); a ``clear``
is answered at once with the final position. The server runs pinned to core 0, this
generator on core 1, one 20 ms ticker driving every page.

    python -m bench.browser_load --pages 1,50,100,200 --seconds 20 --runs 3
"""

from __future__ import annotations

import asyncio
import json
import time
from functools import cache

from bench.sessions import SPEECH_MS, SessionBench, SimSession, main, speech_chunks
from bench.wsclient import OP_BINARY, OP_TEXT, LeanWebSocket, open_lean

FRAME_MS = 20
FRAME_BYTES = 640
CYCLE_MS = 5000
#: the page's player reports every 100 ms of playback time
REPORT_EVERY_TICKS = 100 // FRAME_MS


@cache
def mic_cycle() -> tuple[list[bytes], int]:
    """One cycle of 20 ms messages (speech, then silence); the index after the last voiced."""
    speech, speech_end = speech_chunks(FRAME_BYTES)
    silence = [bytes(FRAME_BYTES)] * ((CYCLE_MS - SPEECH_MS) // FRAME_MS)
    return speech + silence, speech_end


class SimPage(SimSession):
    def __init__(self, ws: LeanWebSocket, phase: int, report_phase: int) -> None:
        self.frames, self.speech_end = mic_cycle()
        self.position = phase
        self.ticks = report_phase
        self.hello: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        #: the reply the page is playing, and how much of it it was sent (ms)
        self.turn: int | None = None
        self.turn_ms = 0.0
        super().__init__(ws)

    def tick(self, now: float, measuring: bool) -> None:
        super().tick(now, measuring)
        ws = self.ws
        ws.send(OP_BINARY, self.frames[self.position])
        self.position += 1
        if self.position == self.speech_end:
            self.spoke(now)
        elif self.position == len(self.frames):
            self.position = 0
        self.ticks += 1
        if self.turn is not None and self.ticks % REPORT_EVERY_TICKS == 0:
            ws.send_text(f'{{"type":"played","turn":{self.turn},"ms":{self.played_ms(now):.1f}}}')

    def played_ms(self, now: float) -> float:
        return max(0.0, self.turn_ms - 1000 * self.unplayed_s(now))

    def on_message(self, opcode: int, payload: bytes) -> None:
        now = time.monotonic()
        if opcode == OP_BINARY:
            if self.turn is not None:
                duration_s = len(payload) / 32000
                self.turn_ms += duration_s * 1000
                self.reply_audio(now, duration_s)
            return
        if opcode != OP_TEXT:
            return
        message = json.loads(payload)
        kind = message.get("type")
        if kind == "turn":
            if message["turn"] != self.turn:
                self.turn = message["turn"]
                self.turn_ms = 0.0
        elif kind == "turn_end":
            self.reply_over(message.get("ok") is True)
        elif kind == "clear":
            # stop now; what is queued is dropped, and the bridge learns where we stopped
            played = self.played_ms(now)
            self.play_end = now
            self.turn_ms = played
            self.in_reply = False
            turn = message["turn"]
            self.ws.send_text(f'{{"type":"played","turn":{turn},"ms":{played:.1f},"final":true}}')
        elif kind == "hello" and not self.hello.done():
            self.hello.set_result(None)


async def open_page(index: int, n: int, port: int) -> SimPage:
    ws = await open_lean("127.0.0.1", port, "/ws/browser")
    cycle = len(mic_cycle()[0])
    page = SimPage(ws, phase=(index * cycle) // n, report_phase=index % REPORT_EVERY_TICKS)
    ws.send_text('{"type":"hello","persona":""}')
    await asyncio.wait_for(page.hello, 10)
    return page


PAGES = SessionBench(noun="pages", period_ms=FRAME_MS, open_client=open_page)

if __name__ == "__main__":
    main(PAGES, __doc__, "1,50,100,200", "--pages")
