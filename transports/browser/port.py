"""The :class:`~pipeline.ports.CallPort` of one talk page.

Audio goes out as binary messages after a ``turn`` message naming the reply they belong to.
The page reports what it has played (``played``), so the bridge knows, as with Twilio's
marks, how much of a reply was heard: the pacer's bound on unheard audio, the goodbye's
drain and a barge-in's cut all rest on the page's word. On ``clear`` the page drops what it
has not played and answers with the exact position, which :meth:`BrowserPort.interrupt`
waits for (briefly: a page that stopped answering is taken at its last report).
"""

from __future__ import annotations

import asyncio
import contextlib

from pipeline.audio import PCM16_16K
from pipeline.tools.base import TransferFailed, TransferTarget
from transports.browser.protocol import BrowserProtocol, Played
from transports.link import Link

#: how long a barge-in waits for the page to say where it stopped
CLEAR_ANSWER_TIMEOUT_S = 0.5


class BrowserPort:
    transport = "browser"
    wire_in = PCM16_16K
    wire_out = PCM16_16K
    chunk_ms = 40
    #: the page's player buffers this far ahead; small, so a barge-in is heard to stop
    lead_ms = 300
    #: after a ``clear``, more audio of the same reply simply plays
    resumable = True

    def __init__(self, link: Link, proto: BrowserProtocol) -> None:
        self._link = link
        self._proto = proto
        self._announced: int | None = None
        #: per reply: audio sent, and audio the page said it played
        self._sent_ms: dict[int, float] = {}
        self._played_ms: dict[int, float] = {}
        self._reported = asyncio.Event()
        self._final: set[int] = set()
        #: what :meth:`post` is sending (the page's captions), cancelled at the close
        self._posting: set[asyncio.Task[None]] = set()

    async def send_text(self, text: str) -> None:
        await self._link.send(text)

    def post(self, text: str) -> None:
        """Send a caption (a transcript, a latency) without waiting: observers call this
        from synchronous hooks. In order with the audio, through the link's lock."""
        if not self._link.open:
            return
        task = asyncio.get_running_loop().create_task(self.send_text(text), name="page-caption")
        self._posting.add(task)
        task.add_done_callback(self._posting.discard)

    # -- what the page says ------------------------------------------------------------------

    def played(self, event: Played) -> None:
        if event.turn_id not in self._sent_ms:
            return  # not a reply of ours (or long forgotten)
        sent_ms = self._sent_ms[event.turn_id]
        self._played_ms[event.turn_id] = min(sent_ms, max(event.ms, self._played(event.turn_id)))
        if event.final:
            self._final.add(event.turn_id)
        self._reported.set()

    def _played(self, turn_id: int) -> float:
        return self._played_ms.get(turn_id, 0.0)

    # -- CallPort ----------------------------------------------------------------------------

    async def commit_user_turn(self, turn_id: int) -> None:
        pass

    async def begin_response(self, turn_id: int) -> None:
        pass

    async def send_audio(self, turn_id: int, chunk: bytes, duration_ms: float) -> None:
        async with self._link.lock:
            if turn_id != self._announced:
                self._announced = turn_id
                self._final.discard(turn_id)
                self._forget_old(turn_id)
                await self._link.send_locked(self._proto.turn(turn_id))
            self._sent_ms[turn_id] = self._sent_ms.get(turn_id, 0.0) + duration_ms
            await self._link.send_locked(chunk)

    async def end_response(self, turn_id: int, *, had_audio: bool, ok: bool) -> None:
        await self._link.send(self._proto.turn_end(turn_id, ok))

    async def interrupt(self, turn_id: int) -> float:
        """``clear``, then the page's word on where it stopped (or its last report)."""
        if turn_id not in self._sent_ms:
            return 0.0
        self._final.discard(turn_id)
        await self._link.send(self._proto.clear(turn_id))
        self._announced = None  # a resumed reply is announced again
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(CLEAR_ANSWER_TIMEOUT_S):
                while turn_id not in self._final and self._link.open:
                    self._reported.clear()
                    await self._reported.wait()
        heard_ms = self._played(turn_id)
        self._sent_ms[turn_id] = heard_ms  # what was not heard is gone from the page
        return heard_ms

    def is_playing(self) -> bool:
        return self.unacked_ms() > 0

    def unacked_ms(self) -> float:
        return sum(sent - self._played(turn) for turn, sent in self._sent_ms.items())

    async def drain(self, timeout_s: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                while self.unacked_ms() > 0 and self._link.open:
                    self._reported.clear()
                    await self._reported.wait()

    async def transfer(self, target: TransferTarget) -> None:
        """A talk page has no one to hand over to (the agent is never offered it)."""
        raise TransferFailed("a talk page cannot be transferred")

    async def close(self, code: int, reason: str) -> None:
        await self._link.close(code, reason)
        for task in list(self._posting):
            task.cancel()
        await asyncio.gather(*self._posting, return_exceptions=True)

    def _forget_old(self, current: int) -> None:
        """Keep only replies that can still be playing: the page plays one at a time."""
        for turn in [t for t in self._sent_ms if t != current]:
            if self._played(turn) >= self._sent_ms[turn] or turn < current - 4:
                del self._sent_ms[turn]
                self._played_ms.pop(turn, None)
