"""Thin asyncio adapter: a Starlette WebSocket on one side, the sans-I/O core on the other."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.websockets import WebSocket, WebSocketState

from pipeline.audio import ULAW_8K
from pipeline.session import CallSession
from transports.base import (
    FAST_ERROR,
    FAST_EVENTS,
    FAST_RECEIVE,
    AgentUnavailable,
    CallRequest,
    Rejected,
    SessionOpener,
    mask_phone,
)
from transports.twilio import binding
from transports.twilio.binding import BindingError, StreamTokens
from transports.twilio.protocol import (
    Dtmf,
    Event,
    MarkPlayed,
    Media,
    ProtocolViolation,
    Start,
    Stop,
    TwilioProtocol,
)

log = logging.getLogger("transports.twilio")


#: ends a call at Twilio (REST), given its CallSid; must never raise
CallCompleter = Callable[[str], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class TwilioOptions:
    chunk_ms: int = 40
    lead_ms: int = 400
    start_timeout_s: float = 5.0
    #: when set, ``start`` must carry a stream token minted for its CallSid (else 1008)
    stream_tokens: StreamTokens | None = None
    #: when set, an agent hang-up also completes the call through Twilio's REST API, after
    #: the goodbye was heard and before the stream closes (the TwiML continues after
    #: ``</Connect>``, see bridge/twiml.py)
    complete_call: CallCompleter | None = None
    #: wall clock for stream-token expiry
    clock: Callable[[], float] = time.time


class TwilioCall:
    """The :class:`~pipeline.ports.CallPort` of one Twilio stream."""

    transport = "twilio"
    wire_in = ULAW_8K
    wire_out = ULAW_8K

    def __init__(self, ws: WebSocket, proto: TwilioProtocol, options: TwilioOptions) -> None:
        self.chunk_ms = options.chunk_ms
        self.lead_ms = options.lead_ms
        self._complete_call = options.complete_call
        self._ws = ws
        self._proto = proto
        self._lock = asyncio.Lock()
        self._all_played = asyncio.Event()
        self._all_played.set()
        #: a send failed: the peer is gone
        self.gone = False
        #: we closed the socket (with :attr:`close_code`)
        self.closed = False
        self.close_code: int | None = None

    async def _send(self, *frames: str) -> None:
        """The one ordered send path of the call (O4): a clear never splits a media+mark."""
        async with self._lock:
            await self._write(frames)

    async def _write(self, frames: tuple[str, ...]) -> None:
        """Send under the lock; nothing goes out after stop, close, or a failed send."""
        for frame in frames:
            if self.gone or self.closed or not self._proto.can_send:
                return
            try:
                await self._ws.send_text(frame)
            except Exception:  # the socket is gone: teardown follows from the reader
                self.gone = True

    async def commit_user_turn(self, turn_id: int) -> None:
        pass

    async def begin_response(self, turn_id: int) -> None:
        pass

    async def send_audio(self, turn_id: int, chunk: bytes, duration_ms: float) -> None:
        if not self._proto.can_send:
            return
        media, mark = self._proto.media_frames(turn_id, chunk, duration_ms)
        self._all_played.clear()
        await self._send(media, mark)

    async def end_response(self, turn_id: int, *, had_audio: bool, ok: bool) -> None:
        pass

    async def interrupt(self, turn_id: int) -> float:
        async with self._lock:
            frame = self._proto.clear_frame() if self._proto.can_send else None
            if frame is not None:
                await self._write((frame,))
        self._all_played.set()
        return self._proto.heard_ms(turn_id)

    def is_playing(self) -> bool:
        return self._proto.pending_marks > 0

    def unacked_ms(self) -> float:
        return self._proto.pending_ms

    def mark_played(self) -> None:
        if self._proto.pending_marks == 0:
            self._all_played.set()

    async def drain(self, timeout_s: float) -> None:
        try:
            await asyncio.wait_for(self._all_played.wait(), timeout_s)
        except TimeoutError:
            log.warning("marks not echoed within %.1fs; closing anyway", timeout_s)

    async def close(self, code: int, reason: str) -> None:
        """The pipeline ends the call: 1000 after an agent hang-up (goodbye heard), or 1011.

        A hang-up of a live stream is first completed through the REST API when configured,
        so Twilio does not go on to the TwiML after ``</Connect>``. A failure (1011) does go
        on to it: that is what the apology is for.
        """
        call_sid = self._proto.call_sid
        if (
            code == 1000
            and self._complete_call is not None
            and call_sid
            and self._proto.can_send
            and not (self.closed or self.gone)
        ):
            await self._complete_call(call_sid)
        await self.shut(code, reason)

    async def shut(self, code: int, reason: str) -> None:
        """Close the socket with ``code`` (once); the adapter's own closes come here."""
        async with self._lock:
            if self.closed:
                return
            self.closed = True
            self.close_code = code
            if self.gone or self._ws.application_state is not WebSocketState.CONNECTED:
                return
            try:
                await self._ws.close(code, reason[:120])
            except Exception:  # the peer went away first; nothing left to tell it
                self.gone = True


class TwilioStream:
    """The receive side of one stream: parses frames and feeds the session.

    Media and mark echoes are handled synchronously in :meth:`fast_text` when the server
    offers the fast-receive extension (no queue hop per frame); anything else, and anything
    that arrives while earlier events still wait in the queue, goes through :meth:`run`'s
    ordinary ``receive()`` loop so the order of events is never changed.
    """

    def __init__(self, ws: WebSocket, opener: SessionOpener, options: TwilioOptions) -> None:
        self.ws = ws
        self.opener = opener
        self.options = options
        self.proto = TwilioProtocol()
        self.call = TwilioCall(ws, self.proto, options)
        self.session: CallSession | None = None
        self.reason = "socket closed"
        self._queued = 0  # events handed to the queue and not yet processed

    def fast_text(self, text: str) -> dict[str, Any] | None:
        events = self.proto.receive_text(text)
        session = self.session
        if (
            self._queued == 0
            and session is not None
            and all(type(e) is Media or type(e) is MarkPlayed for e in events)
        ):
            for event in events:
                if type(event) is Media:
                    session.push_audio(event.payload)  # type: ignore[union-attr]
                else:
                    self.call.mark_played()
            return None
        self._queued += 1
        return {"type": "websocket.receive", FAST_EVENTS: events}

    async def run(self) -> None:
        ws, call, proto = self.ws, self.call, self.proto
        await ws.accept()
        register = ws.scope.get("extensions", {}).get(FAST_RECEIVE)
        if callable(register):
            register(self.fast_text)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.options.start_timeout_s
        try:
            while not (call.closed or call.gone):
                if self.session is None:
                    try:
                        message = await asyncio.wait_for(ws.receive(), deadline - loop.time())
                    except TimeoutError:
                        self.reason = "no start before deadline"
                        await call.shut(1008, self.reason)
                        break
                else:
                    message = await ws.receive()
                if message["type"] == "websocket.disconnect":
                    break
                if FAST_ERROR in message:
                    raise message[FAST_ERROR]
                if FAST_EVENTS in message:
                    self._queued -= 1
                    events = message[FAST_EVENTS]
                elif (text := message.get("text")) is not None:
                    events = proto.receive_text(text)
                else:
                    events = proto.receive_binary()
                await self._handle(events)
        except asyncio.CancelledError:
            self.reason = "server shutdown"
            raise
        except Exception:
            self.reason = "internal error"
            log.exception("stream failed", extra={"call_id": proto.call_sid, "transport": "twilio"})
            await call.shut(1011, self.reason)
        finally:
            if callable(register):
                register(None)
            if self.session is not None:
                await self.opener.closed(self.session, self.session.end_reason or self.reason)
            await call.shut(1000, self.reason)

    async def _handle(self, events: list[Event]) -> None:
        call, session = self.call, self.session
        for event in events:
            if isinstance(event, Media):
                if session is not None:
                    session.push_audio(event.payload)
            elif isinstance(event, MarkPlayed):
                call.mark_played()
            elif isinstance(event, Dtmf):
                if session is not None:
                    session.dtmf(event.digit)
            elif isinstance(event, Start):
                if not await self._bound(event):
                    return
                self.session = session = await _open(self.opener, call, event)
            elif isinstance(event, Stop):
                self.reason = "stop"
                await call.shut(1000, self.reason)
            elif isinstance(event, ProtocolViolation):
                self.reason = event.reason
                await call.shut(event.close_code, event.reason)

    async def _bound(self, start: Start) -> bool:
        """True when no token is required, or ``start`` carries one minted for its CallSid."""
        tokens = self.options.stream_tokens
        if tokens is None:
            return True
        token = start.custom_parameters.get(binding.PARAMETER)
        try:
            tokens.verify(token, start.call_sid, self.options.clock())
        except BindingError as exc:
            self.reason = "stream token rejected"
            log.warning(
                "stream rejected: %s (account %s, stream %s)",
                exc.reason,
                start.account_sid,
                start.stream_sid,
                extra={"call_id": start.call_sid, "transport": "twilio"},
            )
            await self.call.shut(1008, self.reason)
            return False
        return True


async def serve_twilio(ws: WebSocket, opener: SessionOpener, options: TwilioOptions) -> None:
    """Run one Twilio Media Stream from accept to teardown."""
    await TwilioStream(ws, opener, options).run()


async def _open(opener: SessionOpener, call: TwilioCall, start: Start) -> CallSession | None:
    extra = {"call_id": start.call_sid, "transport": "twilio"}
    if not start.media_format_ok:
        log.error("unexpected mediaFormat; continuing as mu-law/8000/1", extra=extra)
    # the stream token has done its job; agents and call records never see it
    params = {k: v for k, v in start.custom_parameters.items() if k != binding.PARAMETER}
    request = CallRequest(
        transport="twilio",
        call_id=start.call_sid,
        identity=start.call_sid,
        caller=mask_phone(params.get("from", "")),
        callee=params.get("to", ""),
        params={**params, "accountSid": start.account_sid, "streamSid": start.stream_sid},
    )
    try:
        return await opener.open(request, call)
    except Rejected as exc:
        log.warning("stream rejected: %s", exc.reason, extra=extra)
        await call.shut(exc.close_code, exc.reason)
    except AgentUnavailable as exc:
        log.error("agent unavailable: %s", exc, extra=extra)
        await call.shut(1000, "agent unavailable")
    return None
