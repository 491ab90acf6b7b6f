"""A recording fake :class:`~pipeline.ports.CallPort`: the far end of a call, in memory.

It plays what it is sent on the session's clock (a virtual one in the core's tests), the way
a phone or a toy would: a chunk sent while nothing plays starts now, one sent while audio
plays starts when that ends. From that clock it answers what the session asks of a port:
how much of a turn was heard when it was interrupted, whether audio is still playing, how
much is unconfirmed. Every call the session makes is recorded with its time, so tests assert
on what the far end saw and when.

Faults a test can inject: ``stall_sends()`` (a reader that stops reading: ``send_audio``
waits until ``resume_sends()``) and ``confirm_playback=False`` (a far end that never
confirms, like Twilio marks that never come back).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from pipeline.audio import ULAW_8K, AudioSpec
from pipeline.tools.base import TransferFailed, TransferTarget


@dataclass(frozen=True, slots=True)
class PortCall:
    """One call the session made on the port."""

    at_s: float
    name: str
    turn_id: int | None = None
    detail: object = None


@dataclass(slots=True)
class Sent:
    """One chunk of audio and when the far end plays it."""

    turn_id: int
    chunk: bytes
    duration_ms: float
    sent_at_s: float
    starts_s: float

    @property
    def ends_s(self) -> float:
        return self.starts_s + self.duration_ms / 1000


@dataclass
class RecordingPort:
    clock: Callable[[], float]
    wire_in: AudioSpec = ULAW_8K
    wire_out: AudioSpec = ULAW_8K
    chunk_ms: int = 40
    lead_ms: int = 400
    transport: str = "fake"
    resumable: bool = True
    #: False: playback is never confirmed (``unacked_ms`` keeps growing)
    confirm_playback: bool = True
    calls: list[PortCall] = field(default_factory=list)
    transfer_error: str = ""
    transferred_to: str = ""
    sent: list[Sent] = field(default_factory=list)
    close_code: int | None = None
    #: told when the session closes the port (a transport's socket then goes away)
    on_close: Callable[[int, str], None] | None = None
    _play_end_s: float = 0.0
    _sends_open: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self._sends_open.set()

    # -- what tests read -------------------------------------------------------------------

    def names(self) -> list[str]:
        return [c.name for c in self.calls]

    def first(self, name: str) -> PortCall:
        return next(c for c in self.calls if c.name == name)

    def audio_of(self, turn_id: int) -> list[Sent]:
        return [s for s in self.sent if s.turn_id == turn_id]

    def played_ms(self, turn_id: int, now_s: float | None = None) -> float:
        """How much of ``turn_id`` the far end has played by ``now_s`` (default: now)."""
        now_s = self.clock() if now_s is None else now_s
        return sum(
            max(0.0, min(now_s, s.ends_s) - s.starts_s) * 1000 for s in self.audio_of(turn_id)
        )

    def stall_sends(self) -> None:
        self._sends_open.clear()

    def resume_sends(self) -> None:
        self._sends_open.set()

    def _record(self, name: str, turn_id: int | None = None, detail: object = None) -> None:
        self.calls.append(PortCall(self.clock(), name, turn_id, detail))

    # -- CallPort --------------------------------------------------------------------------

    async def commit_user_turn(self, turn_id: int) -> None:
        self._record("commit", turn_id)

    async def begin_response(self, turn_id: int) -> None:
        self._record("begin", turn_id)

    async def send_audio(self, turn_id: int, chunk: bytes, duration_ms: float) -> None:
        await self._sends_open.wait()
        now_s = self.clock()
        starts_s = max(now_s, self._play_end_s)
        sent = Sent(turn_id, chunk, duration_ms, now_s, starts_s)
        self.sent.append(sent)
        self._play_end_s = sent.ends_s
        self._record("audio", turn_id, duration_ms)

    async def end_response(self, turn_id: int, *, had_audio: bool, ok: bool) -> None:
        self._record("end", turn_id, (had_audio, ok))

    async def interrupt(self, turn_id: int) -> float:
        """The far end stops at once: what was not played yet is never played."""
        now_s = self.clock()
        heard_ms = self.played_ms(turn_id, now_s)
        for s in self.sent:
            if s.ends_s > now_s:
                s.duration_ms = max(0.0, (now_s - s.starts_s) * 1000)
        self._play_end_s = min(self._play_end_s, now_s)
        self._record("interrupt", turn_id, heard_ms)
        return heard_ms

    def is_playing(self) -> bool:
        return self._play_end_s > self.clock()

    def unacked_ms(self) -> float:
        if not self.confirm_playback:
            return sum(s.duration_ms for s in self.sent)
        return max(0.0, (self._play_end_s - self.clock()) * 1000)

    async def drain(self, timeout_s: float) -> None:
        self._record("drain", detail=timeout_s)
        await asyncio.sleep(min(timeout_s, self.unacked_ms() / 1000))

    async def transfer(self, target: TransferTarget) -> None:
        """Records the hand-over; ``transfer_error`` set: it fails with that."""
        self._record("transfer", detail=target.name)
        if self.transfer_error:
            raise TransferFailed(self.transfer_error)
        self.transferred_to = target.name

    async def close(self, code: int, reason: str) -> None:
        self._record("close", detail=(code, reason))
        if self.close_code is None:
            self.close_code = code
            if self.on_close is not None:
                self.on_close(code, reason)
