"""The backend's audio and marks reach the caller in order, in turns, and marks come back.

Frames are handled synchronously in the link's read loop, and :meth:`AgentOutput.audio` may
wait while the playout is full, so the handlers only queue what arrived and one task (the
**speaker**, :meth:`Replies.run`) hands it over in arrival order.

**Turns.** A Twilio stream has no turns; the bridge needs them (a toy brackets each reply with
RESPONSE.CREATED/COMPLETE, barge-in and records count them). The speaker opens a turn when
audio arrives with none open and ends it when nothing follows a mark for ``mark_gap_s`` (a
backend marks the end of what it said) or any audio for ``audio_gap_s`` (one that never
marks), or at ``clear``.

**Marks.** A mark is echoed once the audio queued before it has been played to our caller, as
Twilio does: a mark takes its place in the turn (the ms of the turn's audio before it), and a
second task (the **echoer**, :meth:`Replies.echo_loop`) takes the marks in order and waits on
:meth:`AgentOutput.played` until the caller has heard the turn up to that place (confirmed by
Twilio's marks on a phone line, the device's clock otherwise), so a backend that marks every
chunk learns how far the caller got, within ~20 ms plus the far end's confirmation step. A
mark after a turn's last audio waits for that audio to be heard. A ``clear`` (or our own
stop of the reply) echoes every pending mark at once, as Twilio does.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from pipeline.agents.backend.config import BackendConfig
from pipeline.agents.base import AgentOutput
from pipeline.audio import ULAW_8K


@dataclass(frozen=True, slots=True)
class _Failed:
    """The connection dropped (``hang_up`` False) or is gone for good (True); ``apologise``
    False: the backend ended the call itself, nothing failed."""

    kind: str
    hang_up: bool
    apologise: bool = True


_Item = bytes | str | _Failed


class Replies:
    def __init__(self, config: BackendConfig, echo: Callable[[str], None]) -> None:
        self._config = config
        #: sends one mark echo to the backend (through the link)
        self._echo = echo
        self._queue: asyncio.Queue[_Item] = asyncio.Queue()
        #: marks handed to the echoer and not yet echoed, in order: (name, turn they follow,
        #: their place in it in ms; None: after its end)
        self._marks: deque[tuple[str, int | None, float | None]] = deque()
        #: ms of audio handed over for the open turn
        self._turn_ms = 0.0
        self._marks_ready = asyncio.Event()
        self.turn: int | None = None
        self._last_turn: int | None = None
        self._after_mark = False
        #: the last failure was apologised for already (a drop mid-reply, then giving up)
        self._apologised = False

    # -- from the read loop (synchronous) --------------------------------------------------

    def media(self, ulaw: bytes) -> None:
        if ulaw:
            self._queue.put_nowait(ulaw)

    def mark(self, name: str) -> None:
        self._queue.put_nowait(name)

    def clear(self) -> list[str]:
        """Drop the audio not yet handed over, close the turn; the marks to echo now."""
        names: list[str] = []
        while not self._queue.empty():
            item = self._queue.get_nowait()
            if isinstance(item, str):
                names.append(item)
            elif isinstance(item, _Failed):
                self._queue.put_nowait(item)  # keep it: it is not audio
                break
        names = [name for name, _, _ in self._marks] + names
        self._marks.clear()
        if self.turn is not None:
            self._last_turn, self.turn = self.turn, None
        return names

    def forget_marks(self) -> None:
        """The stream they name is gone (a dropped socket): they can never be echoed."""
        self._marks.clear()

    def failed(self, kind: str, hang_up: bool) -> None:
        self._queue.put_nowait(_Failed(kind, hang_up))

    def ended(self, reason: str) -> None:
        """The backend ended the call: hang up once what it said before has been heard."""
        self._queue.put_nowait(_Failed(reason, hang_up=True, apologise=False))

    # -- the speaker -----------------------------------------------------------------------

    async def run(self, out: AgentOutput) -> None:
        while True:
            try:
                async with asyncio.timeout(self._gap_s()):
                    item = await self._queue.get()
            except TimeoutError:
                self._end_turn(out)
                continue
            if isinstance(item, bytes):
                if self.turn is None:
                    self.turn = out.begin_turn()
                    self._apologised = False
                    self._turn_ms = 0.0
                self._after_mark = False
                self._turn_ms += ULAW_8K.duration_ms(len(item))
                await out.audio(self.turn, item)
            elif isinstance(item, str):
                self._after_mark = True
                if self.turn is not None:
                    self._marks.append((item, self.turn, self._turn_ms))
                else:  # after the turn's end: once all of it has been heard
                    self._marks.append((item, self._last_turn, None))
                self._marks_ready.set()
            else:
                await self._fail(out, item)

    def _gap_s(self) -> float | None:
        if self.turn is None:
            return None
        return self._config.mark_gap_s if self._after_mark else self._config.audio_gap_s

    def _end_turn(self, out: AgentOutput) -> None:
        if self.turn is not None:
            out.end_turn(self.turn)
            self._last_turn, self.turn = self.turn, None

    async def _fail(self, out: AgentOutput, failure: _Failed) -> None:
        """What the caller was hearing becomes an apology; giving up apologises (once) and
        ends the call politely."""
        if not failure.apologise:
            self._end_turn(out)
            out.hang_up(failure.kind)
            return
        turn, self.turn = self.turn, None
        if turn is None and failure.hang_up and not self._apologised:
            turn = out.begin_turn()
        if turn is not None:
            self._apologised = True
            self._last_turn = turn
            await out.fail_turn(turn, failure.kind)
        if failure.hang_up:
            out.hang_up(failure.kind)

    # -- the echoer ------------------------------------------------------------------------

    async def echo_loop(self, out: AgentOutput) -> None:
        while True:
            if not self._marks:
                self._marks_ready.clear()
                await self._marks_ready.wait()
                continue
            mark = self._marks[0]
            name, turn, position_ms = mark
            if turn is not None:
                await out.played(turn, position_ms)
            if self._marks and self._marks[0] is mark:  # not echoed by a clear
                self._marks.popleft()
                self._echo(name)
