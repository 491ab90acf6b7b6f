"""The :class:`~pipeline.ports.CallPort` of one toy: response brackets, Opus, the clock.

A reply goes out as ``RESPONSE.CREATED``, one Opus packet per binary message, then
``RESPONSE.COMPLETE`` (or ``ERROR``). The protocol core (``protocol.py``) keeps the device's
promises (the listen hold, no nesting); the playback clock (``playback.py``) says what the
device has played. A watchdog deadline (spec TE7–TE9) is armed whenever the device waits on
us, so the adapter can answer ``RESPONSE.ERROR`` before the device hangs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from pipeline.audio import PCM16_24K, AudioSpec
from pipeline.tools.base import TransferFailed, TransferTarget
from transports.esp32.opus import OpusPacketizer
from transports.esp32.playback import ClockedPlayback, PlaybackClock
from transports.esp32.protocol import AuthSettings, DeviceState, Esp32Protocol, OutboundViolation
from transports.link import Link

log = logging.getLogger("transports.esp32")


@dataclass(frozen=True, slots=True)
class Esp32Options:
    frame_ms: int = 120
    lead_ms: int = 500
    upstream_rate_hz: int = 16000
    greeting_timeout_s: float = 15.0  # TE9
    commit_timeout_s: float = 15.0  # TE7
    packet_timeout_s: float = 10.0  # TE8
    writer_stall_s: float = 10.0  # TE11
    session_end_delay_s: float = 0.5  # L1: 300-800 ms after the end of playback
    device_close_wait_s: float = 3.0
    max_failed_turns: int = 3
    opus_complexity: int = 5


@dataclass(frozen=True, slots=True)
class Esp32Device:
    """An authenticated device, as the application describes it to the transport."""

    identity: str
    label: str
    auth: AuthSettings = field(default_factory=AuthSettings)
    params: dict[str, str] = field(default_factory=dict)


class Esp32Port(ClockedPlayback):
    transport = "esp32"
    wire_out = PCM16_24K
    #: a stopped response is closed (COMPLETE) and the toy then listens; besides, it never
    #: sends its microphone while it speaks, so only its INTERRUPT button stops a reply
    resumable = False

    def __init__(
        self,
        link: Link,
        proto: Esp32Protocol,
        options: Esp32Options,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.wire_in = AudioSpec("pcm16", options.upstream_rate_hz)
        self.chunk_ms = options.frame_ms
        self.lead_ms = options.lead_ms
        self.options = options
        self.proto = proto
        self.clock = clock
        self._link = link
        self._packetizer = OpusPacketizer(options.frame_ms, options.opus_complexity)
        self._response_turn: int | None = None
        self._playback = PlaybackClock()
        self._failed_turns = 0
        #: what the device said it played when it sent INTERRUPT
        self.device_heard_ms: int | None = None
        #: the watchdog's deadline (None: the device waits on nothing)
        self.deadline_s: float | None = clock() + options.greeting_timeout_s
        self.deadline_changed = asyncio.Event()
        #: set by the adapter when the device closed its side
        self.peer_closed = asyncio.Event()

    def now_ms(self) -> float:
        return self.clock() * 1000

    async def send_text(self, build: Callable[[], str]) -> bool:
        """Build (with the protocol's self-checks) and send a control frame, in order."""
        async with self._link.lock:
            try:
                frame = build()
            except OutboundViolation as exc:
                log.error("outbound self-check blocked a frame: %s", exc)
                return False
            await self._link.send_locked(frame)
            return True

    def _arm(self, seconds: float | None) -> None:
        self.deadline_s = None if seconds is None else self.clock() + seconds
        self.deadline_changed.set()

    # -- CallPort --------------------------------------------------------------------------

    async def commit_user_turn(self, turn_id: int) -> None:
        if await self.send_text(self.proto.committed):
            self._arm(self.options.commit_timeout_s)

    async def begin_response(self, turn_id: int) -> None:
        wait_ms = self.proto.created_wait_ms(self.now_ms())
        if wait_ms > 0:
            await asyncio.sleep(wait_ms / 1000)
        async with self._link.lock:
            try:
                frame = self.proto.created(self.now_ms())
            except OutboundViolation as exc:
                log.error("outbound self-check blocked CREATED: %s", exc)
                return
            self._packetizer.reset()
            self._response_turn = turn_id
            self._playback.start_response(self.clock())
            await self._link.send_locked(frame)
        self._arm(self.options.packet_timeout_s)

    async def send_audio(self, turn_id: int, chunk: bytes, duration_ms: float) -> None:
        if turn_id != self._response_turn or not self.proto.response_open:
            return  # a late chunk of a closed response
        packet = self.proto.audio(self._packetizer.encode(chunk))
        backlog_s = self._playback.unplayed_ms(self.clock()) / 1000
        async with self._link.lock:
            try:
                await asyncio.wait_for(
                    self._link.send_locked(packet), backlog_s + self.options.writer_stall_s
                )
            except TimeoutError:
                # TE11: fail the pacer; the session closes the call with 1011
                raise ConnectionError("the device stopped reading its socket") from None
        self._playback.sent(self.clock(), self.chunk_ms)
        self._arm(self.options.packet_timeout_s)

    async def end_response(self, turn_id: int, *, had_audio: bool, ok: bool) -> None:
        if self.proto.response_open and turn_id == self._response_turn:
            build = self.proto.complete if ok else self.proto.error
            unplayed = self.unacked_ms()
            await self.send_text(lambda: build(self.now_ms(), unplayed))
            self._response_turn = None
            self._arm(None)
        elif self.proto.state in (DeviceState.COMMITTED, DeviceState.OPEN):
            await self.answer_error()  # nothing was said: the device must not wait
        # Only agent failures count; an empty turn (a mumble) is not the agent's fault.
        self._failed_turns = 0 if ok else self._failed_turns + 1
        if self._failed_turns >= self.options.max_failed_turns:
            log.warning("%d failed turns in a row; closing", self._failed_turns)
            await self.close(1011, "repeated agent failures")

    async def interrupt(self, turn_id: int) -> float:
        """Stop the reply now (RESPONSE.COMPLETE) or answer a pending commit (ERROR)."""
        heard_ms = 0.0
        if self.proto.response_open:
            heard_ms = self._playback.played_ms(self.clock())
            unplayed = self.unacked_ms()
            await self.send_text(lambda: self.proto.complete(self.now_ms(), unplayed))
            self._response_turn = None
        elif self.proto.state is DeviceState.COMMITTED:
            await self.send_text(lambda: self.proto.error(self.now_ms()))
        self._arm(None)
        if self.device_heard_ms is not None:
            heard_ms = min(heard_ms, float(self.device_heard_ms))
            self.device_heard_ms = None
        return heard_ms

    async def answer_error(self) -> None:
        """Close whatever the device is waiting on with RESPONSE.ERROR (spec I4, I6)."""
        if self.proto.response_open or self.proto.state in (
            DeviceState.COMMITTED,
            DeviceState.OPEN,
        ):
            unplayed = self.unacked_ms() if self.proto.response_open else 0.0
            await self.send_text(lambda: self.proto.error(self.now_ms(), unplayed))
        self._response_turn = None
        self._arm(None)

    async def transfer(self, target: TransferTarget) -> None:
        """A toy has no one to hand over to (the agent is never offered it)."""
        raise TransferFailed("a toy cannot be transferred")

    async def close(self, code: int, reason: str) -> None:
        """1000 is the polite end (L1): SESSION.END after playback, then the close."""
        link = self._link
        if code == 1000 and link.open and self.proto.state is not DeviceState.ENDING:
            await asyncio.sleep(self.unacked_ms() / 1000 + self.options.session_end_delay_s)
            await self.send_text(self.proto.session_end)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.options.device_close_wait_s):
                    await self.peer_closed.wait()
        await link.close(code, reason)
