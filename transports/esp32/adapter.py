"""Thin asyncio adapter for one toy: the socket, the clock, the watchdogs; rules live in protocol.

Playback position is estimated with a clock: the device has no jitter buffer and reads its
socket only as fast as it plays (TCP back-pressure), so audio sent a bounded lead ahead of
real time is played at ``max(previous end, send time) + frame``. That estimate drives the gap
before the next ``RESPONSE.CREATED``, the heard position on ``INTERRUPT`` and the moment to
send ``SESSION.END``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from starlette.websockets import WebSocket, WebSocketState

from pipeline.audio import PCM16_24K, AudioSpec
from pipeline.session import CallSession
from transports.base import AgentUnavailable, CallRequest, Rejected, SessionOpener
from transports.esp32.opus import OpusPacketizer
from transports.esp32.protocol import (
    AuthSettings,
    DeviceState,
    EndOfSpeech,
    EndSession,
    Esp32Protocol,
    Interrupt,
    OutboundViolation,
    ProtocolViolation,
    UpstreamAudio,
)

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


class Esp32Call:
    """The :class:`~pipeline.ports.CallPort` of one toy."""

    transport = "esp32"
    wire_out = PCM16_24K

    def __init__(
        self,
        ws: WebSocket,
        proto: Esp32Protocol,
        options: Esp32Options,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.wire_in = AudioSpec("pcm16", options.upstream_rate_hz)
        self.chunk_ms = options.frame_ms
        self.lead_ms = options.lead_ms
        self.options = options
        self.proto = proto
        self._ws = ws
        self._clock = clock
        self._lock = asyncio.Lock()
        self._packetizer = OpusPacketizer(options.frame_ms, options.opus_complexity)
        self._response_turn: int | None = None
        self._play_end_s = 0.0
        self._response_started_s = 0.0
        self._response_sent_ms = 0.0
        self._failed_turns = 0
        #: what the device said it played when it sent INTERRUPT
        self.device_heard_ms: int | None = None
        self.deadline_s: float | None = clock() + options.greeting_timeout_s
        self.deadline_changed = asyncio.Event()
        self.gone = False
        self.closed = False
        self.close_code: int | None = None
        self.peer_closed = asyncio.Event()

    def now_ms(self) -> float:
        return self._clock() * 1000

    # -- sending ---------------------------------------------------------------------------

    async def _send(self, frame: str | bytes) -> None:
        if self.gone or self.closed:
            return
        try:
            if isinstance(frame, str):
                await self._ws.send_text(frame)
            else:
                await self._ws.send_bytes(frame)
        except Exception:
            self.gone = True

    async def send_text(self, build: Callable[[], str]) -> bool:
        """Build (with the protocol's self-checks) and send a control frame, in order."""
        async with self._lock:
            try:
                frame = build()
            except OutboundViolation as exc:
                log.error("outbound self-check blocked a frame: %s", exc)
                return False
            await self._send(frame)
            return True

    def _arm(self, seconds: float | None) -> None:
        self.deadline_s = None if seconds is None else self._clock() + seconds
        self.deadline_changed.set()

    # -- CallPort --------------------------------------------------------------------------

    async def commit_user_turn(self, turn_id: int) -> None:
        if await self.send_text(self.proto.committed):
            self._arm(self.options.commit_timeout_s)

    async def begin_response(self, turn_id: int) -> None:
        wait_ms = self.proto.created_wait_ms(self.now_ms())
        if wait_ms > 0:
            await asyncio.sleep(wait_ms / 1000)
        async with self._lock:
            try:
                frame = self.proto.created(self.now_ms())
            except OutboundViolation as exc:
                log.error("outbound self-check blocked CREATED: %s", exc)
                return
            self._packetizer.reset()
            self._response_turn = turn_id
            self._response_started_s = max(self._clock(), self._play_end_s)
            self._response_sent_ms = 0.0
            await self._send(frame)
        self._arm(self.options.packet_timeout_s)

    async def send_audio(self, turn_id: int, chunk: bytes, duration_ms: float) -> None:
        if turn_id != self._response_turn or not self.proto.response_open:
            return  # a late chunk of a closed response
        packet = self.proto.audio(self._packetizer.encode(chunk))
        now = self._clock()
        backlog_s = max(0.0, self._play_end_s - now)
        async with self._lock:
            try:
                await asyncio.wait_for(self._send(packet), backlog_s + self.options.writer_stall_s)
            except TimeoutError:
                # TE11: fail the pacer; the session closes the call with 1011
                raise ConnectionError("the device stopped reading its socket") from None
        frame_s = self.chunk_ms / 1000
        self._play_end_s = max(self._play_end_s, self._clock()) + frame_s
        self._response_sent_ms += self.chunk_ms
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
            heard_ms = self.played_ms()
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

    def played_ms(self) -> float:
        """Our clock's estimate of how much of the open response the device has played."""
        elapsed_ms = (self._clock() - self._response_started_s) * 1000
        return max(0.0, min(self._response_sent_ms, elapsed_ms))

    def is_playing(self) -> bool:
        return self._play_end_s > self._clock()

    def unacked_ms(self) -> float:
        return max(0.0, (self._play_end_s - self._clock()) * 1000)

    async def drain(self, timeout_s: float) -> None:
        await asyncio.sleep(min(timeout_s, self.unacked_ms() / 1000))

    async def close(self, code: int, reason: str) -> None:
        """1000 is the polite end (L1): SESSION.END after playback, then the close."""
        if self.closed:
            return
        if code == 1000 and not self.gone and self.proto.state is not DeviceState.ENDING:
            await asyncio.sleep(self.unacked_ms() / 1000 + self.options.session_end_delay_s)
            await self.send_text(self.proto.session_end)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.peer_closed.wait(), self.options.device_close_wait_s)
        async with self._lock:
            if self.closed:
                return
            self.closed = True
            self.close_code = code
            if self.gone or self._ws.application_state is not WebSocketState.CONNECTED:
                return
            try:
                await self._ws.close(code, reason[:120])
            except Exception:
                self.gone = True


async def _watchdog(call: Esp32Call, session: CallSession) -> None:
    """TE7-TE9: never leave the device waiting. One task per call, waking only on deadlines."""
    while True:
        deadline = call.deadline_s
        call.deadline_changed.clear()
        timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
        try:
            await asyncio.wait_for(call.deadline_changed.wait(), timeout)
            continue
        except TimeoutError:
            pass
        log.warning("watchdog: the agent went silent; answering RESPONSE.ERROR")
        call.deadline_s = None
        session.drop_turn()
        await call.answer_error()


async def serve_esp32(
    ws: WebSocket,
    device: Esp32Device,
    opener: SessionOpener,
    options: Esp32Options,
    subprotocol: str | None = None,
    on_agent_failure: Callable[[], None] | None = None,
) -> None:
    """Run one toy session from accept to teardown."""
    await ws.accept(subprotocol=subprotocol)
    proto = Esp32Protocol(options.upstream_rate_hz)
    call = Esp32Call(ws, proto, options)
    extra = {"call_id": device.label, "transport": "esp32"}
    await call.send_text(lambda: proto.auth(device.auth))
    request = CallRequest(
        transport="esp32",
        call_id=f"esp32-{uuid.uuid4().hex[:12]}",
        identity=device.identity,
        caller=device.label,
        params=device.params,
        supersede=True,
    )
    session: CallSession | None = None
    watchdog: asyncio.Task[None] | None = None
    reason = "socket closed"
    try:
        try:
            session = await opener.open(request, call)
        except (AgentUnavailable, Rejected) as exc:
            log.error("session refused: %s", exc, extra=extra)
            if on_agent_failure is not None and isinstance(exc, AgentUnavailable):
                on_agent_failure()
            await call.answer_error()
            await call.close(
                exc.close_code if isinstance(exc, Rejected) else 1011, "agent unavailable"
            )
            return
        if not session.has_open_turn and proto.state is DeviceState.OPEN:
            await call.send_text(lambda: proto.complete(call.now_ms(), 0.0))  # no greeting
            call.deadline_s = None
        watchdog = asyncio.create_task(_watchdog(call, session), name=f"{request.call_id}:watchdog")
        while not (call.closed or call.gone):
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                call.peer_closed.set()
                break
            data = message.get("bytes")
            if data is not None:
                events = proto.receive_binary(data, call.now_ms())
            else:
                events = proto.receive_text(message.get("text") or "")
            for event in events:
                if isinstance(event, UpstreamAudio):
                    session.push_audio(event.pcm16)
                elif isinstance(event, EndOfSpeech):
                    session.end_of_speech()
                elif isinstance(event, Interrupt):
                    call.device_heard_ms = event.audio_end_ms
                    session.interrupt()
                elif isinstance(event, EndSession):
                    reason = "device ended the session"
                    await call.close(1000, reason)
                elif isinstance(event, ProtocolViolation):
                    reason = event.reason
                    log.warning("closing: %s", event.reason, extra=extra)
                    await call.close(event.close_code, event.reason)
    except asyncio.CancelledError:
        reason = "server shutdown"
        raise
    except Exception:
        reason = "internal error"
        log.exception("toy session failed", extra=extra)
        await call.answer_error()
        await call.close(1011, reason)
    finally:
        if watchdog is not None:
            watchdog.cancel()
            await asyncio.gather(watchdog, return_exceptions=True)
        if session is not None:
            await opener.closed(session, session.end_reason or reason)
        if call.peer_closed.is_set():
            call.gone = True  # nothing can be said to a socket the device closed
        await call.close(1000, reason)
