"""The :class:`~pipeline.ports.CallPort` of one xiaozhi device: ``tts`` brackets, Opus, a clock.

A reply goes out as ``tts start``, one Opus packet (60 ms, as our ``hello`` announced) per
binary message, then ``tts stop`` once the audio has had time to play: the device returns
to listening on ``tts stop`` and drops whatever it still holds, so stopping early would cut
the reply's tail. It holds about 40 packets and drops the overflow, so the playout paces in
real time with a small lead, and the toy's playback clock says what it has played.

``abort`` (the device's button or wake word) stops the reply at once: the port closes the
bracket itself, so no packet of the stopped reply can follow, and the session's
``interrupt`` then hears what was played. Half-duplex devices cannot talk over a reply, so a
stop is always final; in ``realtime`` mode (full duplex, the device's AEC) a barge-in by
speech may be judged harmless and the reply resumed: a fresh ``tts start`` reopens it.

The agent's words are the device's subtitles (``pipeline/captions.py``): each sentence's
caption waits for the reply's audio to reach its position and goes out as ``tts
sentence_start`` right before the packet it starts in, under the same lock, so it is never
early by more than a packet, never after ``tts stop``, and a stopped reply's unsent
captions are dropped. Each reply also gets one ``llm`` message after its ``tts start``:
the face its first sentence calls for (``emotion.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from pipeline.audio import PCM16_16K, PCM16_24K
from pipeline.tools.base import TransferFailed, TransferTarget
from transports.esp32.playback import ClockedPlayback, PlaybackClock
from transports.link import Link
from transports.xiaozhi.emotion import emotion_of
from transports.xiaozhi.opus import OpusPacketizer
from transports.xiaozhi.protocol import DOWNLINK_FRAME_MS, XiaozhiProtocol

log = logging.getLogger("transports.xiaozhi")

#: captions kept per turn, and turns with captions kept (bounded, whatever the agent does)
MAX_CAPTIONS = 64
MAX_CAPTION_TURNS = 4


@dataclass(frozen=True, slots=True)
class XiaozhiOptions:
    #: audio sent ahead of real time: well inside the device's ~40-packet (2.4 s) queue
    lead_ms: int = 400
    #: the device's own limit is 10 s; ours a little less, so it never waits on us in vain
    hello_timeout_s: float = 10.0
    #: after the last playback: the device sees ``tts stop``, then the close
    close_delay_s: float = 0.3
    writer_stall_s: float = 10.0
    opus_complexity: int = 5


class XiaozhiPort(ClockedPlayback):
    transport = "xiaozhi"
    wire_in = PCM16_16K
    wire_out = PCM16_24K
    chunk_ms = DOWNLINK_FRAME_MS
    #: only a full-duplex (``realtime``) device can be talked over, and only then can a stop
    #: be undone; the adapter sets it from each ``listen start``
    resumable = False

    def __init__(
        self,
        link: Link,
        proto: XiaozhiProtocol,
        options: XiaozhiOptions,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.lead_ms = options.lead_ms
        self.options = options
        self.proto = proto
        self.clock = clock
        self._link = link
        self._packetizer = OpusPacketizer(DOWNLINK_FRAME_MS, options.opus_complexity)
        self._response_turn: int | None = None
        self._playback = PlaybackClock()
        #: what had played when the device aborted (the session's interrupt reads it)
        self._aborted_heard_ms: float | None = None
        self._posting: set[asyncio.Task[None]] = set()
        #: each turn's captions waiting for their audio: (position in the turn, words)
        self._captions: dict[int, deque[tuple[float, str]]] = {}
        #: audio of the current reply sent so far
        self._sent_ms = 0.0

    async def send_text(self, build: Callable[[], str]) -> None:
        """Build and send a control message in order with the audio (state changes with it)."""
        async with self._link.lock:
            await self._link.send_locked(build())

    def post(self, text: str) -> None:
        """Send a control message without waiting (observers call this from sync hooks)."""
        if not self._link.open:
            return
        task = asyncio.get_running_loop().create_task(
            self.send_text(lambda: text), name="xiaozhi-post"
        )
        self._posting.add(task)
        task.add_done_callback(self._posting.discard)

    # -- CallPort --------------------------------------------------------------------------

    async def commit_user_turn(self, turn_id: int) -> None:
        """Nothing on the wire: the device learns of the answer from ``tts start``."""

    def caption(self, turn_id: int, at_ms: float, text: str) -> None:
        """Show ``text`` as ``sentence_start`` once ``at_ms`` of ``turn_id`` is sent."""
        if turn_id not in self._captions:
            if len(self._captions) >= MAX_CAPTION_TURNS:
                del self._captions[min(self._captions)]
            self._captions[turn_id] = deque(maxlen=MAX_CAPTIONS)
        self._captions[turn_id].append((at_ms, text))

    async def begin_response(self, turn_id: int) -> None:
        """``tts start``, then the reply's face (``llm``), read from its first caption."""
        for old in [t for t in self._captions if t < turn_id]:
            del self._captions[old]
        waiting = self._captions.get(turn_id)
        emotion, emoji = emotion_of(waiting[0][1] if waiting else "")
        async with self._link.lock:
            self._packetizer.reset()
            self._response_turn = turn_id
            self._aborted_heard_ms = None
            self._sent_ms = 0.0
            self._playback.start_response(self.clock())
            await self._link.send_locked(self.proto.tts_start(), self.proto.llm(emotion, emoji))

    async def send_audio(self, turn_id: int, chunk: bytes, duration_ms: float) -> None:
        if turn_id != self._response_turn:
            return  # a late chunk of a stopped reply
        if not self.proto.speaking:  # a resumed reply (full duplex): reopen the bracket
            await self.send_text(self.proto.tts_start)
        frames = self._due_captions(turn_id, self._sent_ms + duration_ms)
        frames.append(self.proto.audio(self._packetizer.encode(chunk)))
        backlog_s = self._playback.unplayed_ms(self.clock()) / 1000
        async with self._link.lock:
            try:
                await asyncio.wait_for(
                    self._link.send_locked(*frames), backlog_s + self.options.writer_stall_s
                )
            except TimeoutError:
                raise ConnectionError("the device stopped reading its socket") from None
        self._sent_ms += duration_ms
        self._playback.sent(self.clock(), self.chunk_ms)

    def _due_captions(self, turn_id: int, before_ms: float) -> list[str | bytes]:
        """``sentence_start`` of each caption whose words start before ``before_ms``."""
        waiting = self._captions.get(turn_id)
        due: list[str | bytes] = []
        while waiting and waiting[0][0] < before_ms:
            due.append(self.proto.sentence_start(waiting.popleft()[1]))
        return due

    async def end_response(self, turn_id: int, *, had_audio: bool, ok: bool) -> None:
        """``tts stop`` once the reply has played (the device listens again on it); a failed
        turn is also told as an ``alert``: a device has no spoken apology."""
        if not ok:
            await self.send_text(lambda: self.proto.alert("error", "agent failed", "sad"))
        self._captions.pop(turn_id, None)  # words whose audio never came: not shown
        if turn_id != self._response_turn:
            return
        await asyncio.sleep(self.unacked_ms() / 1000)
        if turn_id == self._response_turn and self.proto.speaking:
            await self.send_text(self.proto.tts_stop)
        if turn_id == self._response_turn:
            self._response_turn = None

    def abort(self) -> None:
        """The device said ``abort``: nothing more of this reply may go out (sync, first)."""
        if self._response_turn is not None:
            self._aborted_heard_ms = self._playback.played_ms(self.clock())
            self._captions.pop(self._response_turn, None)
        self._response_turn = None
        self._playback.play_end_s = 0.0

    async def interrupt(self, turn_id: int) -> float:
        """Stop the reply now: ``tts stop`` (the device drops its queue); what was heard."""
        heard_ms = self._aborted_heard_ms
        if heard_ms is None:
            heard_ms = self._playback.played_ms(self.clock()) if self._response_turn else 0.0
        self._aborted_heard_ms = None
        if self.resumable:  # the reply may go on from the start of the packet it stopped in
            self._sent_ms = heard_ms - heard_ms % self.chunk_ms
        elif self._response_turn is not None:
            self._captions.pop(self._response_turn, None)
            self._response_turn = None
        self._playback.play_end_s = 0.0
        if self.proto.speaking:
            await self.send_text(self.proto.tts_stop)
        return heard_ms

    async def transfer(self, target: TransferTarget) -> None:
        """A device has no one to hand over to (the agent is never offered it)."""
        raise TransferFailed("a xiaozhi device cannot be transferred")

    async def close(self, code: int, reason: str) -> None:
        """A polite end lets the last words play and says ``tts stop`` before the close."""
        if code == 1000 and self._link.open:
            await asyncio.sleep(self.unacked_ms() / 1000 + self.options.close_delay_s)
            if self.proto.speaking:
                await self.send_text(self.proto.tts_stop)
        for task in list(self._posting):
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*self._posting, return_exceptions=True)
        await self._link.close(code, reason)
