"""Paced, turn-stamped outbound audio for one call.

Agent audio is converted once (agent format -> wire format), cut into ``chunk_ms`` chunks
and queued. A single pacer task per call sends the queue to the transport a bounded lead
ahead of real time: enough to ride out jitter, small enough that barge-in stops playback
quickly and a device's keepalives never wait behind seconds of audio. The pacer wakes in
batches (it tops the lead up, then sleeps until half of it has played), so a call that is
speaking costs a few wake-ups per second, not one per chunk.

Every queued item carries its turn id. Cancelling a turn drops its queued audio and any
late audio that still arrives for it.

A turn can also be held (the caller made a sound; is it an interruption?): the pacer sends
nothing more of it, and what was sent but not heard goes back to the front of the queue
(:meth:`Playout.rewind`), so a false alarm resumes the reply exactly where the caller stopped
hearing it. The last ``max_unacked_ms`` and a lead of sent audio are kept for that.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from pipeline.audio import AudioSpec, Converter, Reframer
from pipeline.ports import AudioTap, CallPort

_AUDIO: Final = 0
_END: Final = 1


@dataclass(frozen=True, slots=True)
class PlayoutConfig:
    #: most audio queued ahead of the pacer before agent writes wait (memory bound per call)
    max_queue_ms: int = 2_000
    #: hard cap on audio the far end has not confirmed (Twilio marks); the spec allows 2 s
    max_unacked_ms: int = 2_000


class Playout:
    def __init__(
        self,
        port: CallPort,
        agent_out: AudioSpec,
        config: PlayoutConfig | None = None,
        clock: Callable[[], float] = time.monotonic,
        on_first_audio: Callable[[int], None] | None = None,
    ) -> None:
        self._port = port
        self._cfg = config or PlayoutConfig()
        self._clock = clock
        self._on_first_audio = on_first_audio
        self._converter = Converter(agent_out, port.wire_out)
        self._wire = port.wire_out
        self._chunk_ms = port.chunk_ms
        self._reframer = Reframer(port.wire_out.bytes_for_ms(port.chunk_ms))
        self._queue: deque[tuple[int, int, bytes, float]] = deque()
        self._queued_ms = 0.0
        self._live: set[int] = set()
        self._opened: set[int] = set()
        self._writing_turn: int | None = None
        #: a turn the pacer must not send (while a sound is judged)
        self._held: int | None = None
        #: recently sent chunks of ``_sent_turn`` (chunk, ms), and the turn position of the
        #: first of them, so unheard audio can be sent again
        self._sent: deque[tuple[bytes, float]] = deque()
        self._sent_turn: int | None = None
        self._sent_from_ms = 0.0
        self._sent_ms = 0.0
        self._play_end_s = 0.0
        self._wake = asyncio.Event()
        self._space = asyncio.Event()
        self._space.set()
        self._idle = asyncio.Event()
        self._idle.set()
        #: no chunk is on its way to the port (a hold waits for the one that is)
        self._settled = asyncio.Event()
        self._settled.set()
        self.chunks_sent = 0
        self.chunks_dropped = 0
        #: sees every chunk sent with its scheduled play time (a recording); usually None
        self.tap: AudioTap | None = None

    # -- producer side (agent) -------------------------------------------------------------

    def open_turn(self, turn_id: int) -> None:
        self._live.add(turn_id)

    def is_live(self, turn_id: int) -> bool:
        return turn_id in self._live

    async def audio(self, turn_id: int, pcm: bytes) -> None:
        """Queue agent audio for ``turn_id``; waits while the queue holds ``max_queue_ms``.

        The wait comes before a write, never inside it: the queue holds at most
        ``max_queue_ms`` plus one write. Agents write what their source gives them (a TTS
        stream's chunks); a greeting written whole from ``Agent.start`` is queued at once, so
        the call starts listening without waiting for it to play.
        """
        while self._queued_ms >= self._cfg.max_queue_ms and turn_id in self._live:
            self._space.clear()
            await self._space.wait()
        if turn_id not in self._live:
            return
        self._switch_turn(turn_id)
        wire = self._converter.process(pcm)
        for chunk in self._reframer.push(wire):
            self._enqueue(_AUDIO, turn_id, chunk)
        if turn_id not in self._opened and self._queue:
            # The turn's first audio: let the pacer send it now. An agent reading a stream
            # that has arrived whole would otherwise queue all of it (resampling each
            # piece) before the pacer ran, and the caller would wait for that.
            await asyncio.sleep(0)

    def end_turn(self, turn_id: int, ok: bool = True) -> None:
        """Flush the tail of ``turn_id`` and queue its end marker."""
        if turn_id not in self._live:
            return
        if self._writing_turn == turn_id:
            tail = self._reframer.push(self._converter.flush())
            rest = self._reframer.take_rest()
            for chunk in tail:
                self._enqueue(_AUDIO, turn_id, chunk)
            if rest:
                self._enqueue(_AUDIO, turn_id, rest)
            self._writing_turn = None
        self._queue.append((_END, turn_id, b"", 1.0 if ok else 0.0))
        self._kick()

    def hold(self, turn_id: int) -> None:
        """Send nothing more of ``turn_id`` until :meth:`resume` (or its cancel)."""
        if turn_id in self._live:
            self._held = turn_id

    async def settled(self) -> None:
        """Wait for a chunk already on its way to the port (taken before a hold) to be sent,
        so a stop that follows is really the last word: nothing of the turn comes after it."""
        await self._settled.wait()

    def rewind(self, turn_id: int, heard_ms: float) -> float:
        """The far end stopped playing held ``turn_id`` after ``heard_ms`` of it: queue again
        what was sent after that (from the start of the chunk it stopped in). Returns the
        position the turn will resume from."""
        if turn_id != self._held or turn_id != self._sent_turn:
            return heard_ms
        resume_ms = self._sent_from_ms
        heard = 0  # chunks wholly heard
        for _, duration_ms in self._sent:
            if resume_ms + duration_ms > heard_ms:
                break
            resume_ms += duration_ms
            heard += 1
        while len(self._sent) > heard:
            chunk, duration_ms = self._sent.pop()
            self._sent_ms -= duration_ms
            self._queue.appendleft((_AUDIO, turn_id, chunk, duration_ms))
            self._queued_ms += duration_ms
        self._play_end_s = self._clock()  # the far end's buffer was emptied
        return resume_ms

    def resume(self, turn_id: int) -> None:
        """Go on sending ``turn_id`` (a false alarm)."""
        if self._held == turn_id:
            self._held = None
            self._kick()

    def cancel(self, turn_id: int) -> int:
        """Drop everything queued for ``turn_id``; returns the number of chunks dropped."""
        self._live.discard(turn_id)
        if self._held == turn_id:
            self._held = None
        if self._writing_turn == turn_id:
            self._converter.reset()
            self._reframer.take_rest()
            self._writing_turn = None
        kept = deque(item for item in self._queue if item[1] != turn_id)
        dropped = sum(1 for item in self._queue if item[1] == turn_id and item[0] == _AUDIO)
        self._queue = kept
        self._queued_ms = sum(item[3] for item in kept if item[0] == _AUDIO)
        self.chunks_dropped += dropped
        self._opened.discard(turn_id)
        self._space.set()
        self._kick()
        return dropped

    def has_pending(self, turn_id: int | None = None) -> bool:
        if turn_id is None:
            return bool(self._queue)
        return any(item[1] == turn_id for item in self._queue)

    async def wait_idle(self) -> None:
        await self._idle.wait()

    @property
    def queued_ms(self) -> float:
        """Audio waiting in the queue, not yet sent (bounded by ``max_queue_ms``)."""
        return self._queued_ms

    def heard_ms(self, turn_id: int, unheard_ms: float) -> float | None:
        """How much of ``turn_id`` the far end has played, given ``unheard_ms`` of what was
        sent still unplayed there (the port's own count); None once another turn is sent."""
        if turn_id != self._sent_turn:
            return None
        return max(0.0, self._sent_from_ms + self._sent_ms - unheard_ms)

    def backlog_ms(self) -> float:
        """Our own clock's estimate of sent-but-unplayed audio."""
        return max(0.0, (self._play_end_s - self._clock()) * 1000)

    def _switch_turn(self, turn_id: int) -> None:
        if self._writing_turn not in (None, turn_id):
            # A previous turn ended without end_turn (should not happen): start clean.
            self._converter.reset()
            self._reframer.take_rest()
        self._writing_turn = turn_id

    def _enqueue(self, kind: int, turn_id: int, chunk: bytes) -> None:
        duration_ms = self._wire.duration_ms(len(chunk))
        self._queue.append((kind, turn_id, chunk, duration_ms))
        self._queued_ms += duration_ms
        self._kick()

    def _remember_sent(self, turn_id: int, chunk: bytes, duration_ms: float) -> None:
        """Keep the turn's recent audio: what the far end may not have played yet."""
        if turn_id != self._sent_turn:
            self._sent.clear()
            self._sent_turn, self._sent_from_ms, self._sent_ms = turn_id, 0.0, 0.0
        self._sent.append((chunk, duration_ms))
        self._sent_ms += duration_ms
        keep_ms = self._cfg.max_unacked_ms + self._port.lead_ms
        while self._sent_ms - self._sent[0][1] >= keep_ms:
            _, dropped_ms = self._sent.popleft()
            self._sent_ms -= dropped_ms
            self._sent_from_ms += dropped_ms

    def _kick(self) -> None:
        self._idle.clear()
        self._wake.set()

    # -- consumer side (pacer task) --------------------------------------------------------

    async def run(self) -> None:
        """The pacer: the only code that sends call audio to the transport."""
        port = self._port
        lead_ms = port.lead_ms
        while True:
            if not self._queue:
                self._idle.set()
                self._wake.clear()
                await self._wake.wait()
                continue
            kind, turn_id, chunk, value = self._queue[0]
            if turn_id == self._held:
                self._wake.clear()
                await self._wake.wait()
                continue
            if kind == _END:
                self._queue.popleft()
                had_audio = turn_id in self._opened
                self._opened.discard(turn_id)
                self._live.discard(turn_id)
                await port.end_response(turn_id, had_audio=had_audio, ok=value > 0)
                continue
            if turn_id not in self._live:
                self._queue.popleft()
                self._queued_ms -= value
                self.chunks_dropped += 1
                continue
            backlog_ms = self.backlog_ms()
            if backlog_ms >= lead_ms or port.unacked_ms() >= self._cfg.max_unacked_ms:
                await asyncio.sleep(max(backlog_ms - lead_ms / 2, self._chunk_ms / 2) / 1000)
                continue
            self._queue.popleft()
            self._queued_ms -= value
            if self._queued_ms < self._cfg.max_queue_ms:
                self._space.set()
            if turn_id not in self._opened:
                self._opened.add(turn_id)
                await port.begin_response(turn_id)
                if self._on_first_audio is not None:
                    self._on_first_audio(turn_id)
            if turn_id not in self._live:  # cancelled while begin_response waited
                self.chunks_dropped += 1
                self._opened.discard(turn_id)
                await port.end_response(turn_id, had_audio=False, ok=True)
                continue
            self._settled.clear()
            try:
                await port.send_audio(turn_id, chunk, value)
            finally:
                self._settled.set()
            self._remember_sent(turn_id, chunk, value)
            self.chunks_sent += 1
            play_at_s = max(self._play_end_s, self._clock())
            self._play_end_s = play_at_s + value / 1000
            if self.tap is not None:
                self.tap.outbound(chunk, play_at_s)
