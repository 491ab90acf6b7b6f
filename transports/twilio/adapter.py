"""Thin asyncio adapter: a Starlette WebSocket on one side, the sans-I/O core on the other."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from starlette.websockets import WebSocket, WebSocketState

from pipeline.audio import ULAW_8K
from pipeline.session import CallSession
from transports.base import AgentUnavailable, CallRequest, Rejected, SessionOpener, mask_phone
from transports.twilio.protocol import (
    Dtmf,
    MarkPlayed,
    Media,
    ProtocolViolation,
    Start,
    Stop,
    TwilioProtocol,
)

log = logging.getLogger("transports.twilio")


@dataclass(frozen=True, slots=True)
class TwilioOptions:
    chunk_ms: int = 40
    lead_ms: int = 400
    start_timeout_s: float = 5.0


class TwilioCall:
    """The :class:`~pipeline.ports.CallPort` of one Twilio stream."""

    transport = "twilio"
    wire_in = ULAW_8K
    wire_out = ULAW_8K

    def __init__(self, ws: WebSocket, proto: TwilioProtocol, options: TwilioOptions) -> None:
        self.chunk_ms = options.chunk_ms
        self.lead_ms = options.lead_ms
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


async def serve_twilio(ws: WebSocket, opener: SessionOpener, options: TwilioOptions) -> None:
    """Run one Twilio Media Stream from accept to teardown."""
    await ws.accept()
    proto = TwilioProtocol()
    call = TwilioCall(ws, proto, options)
    session: CallSession | None = None
    reason = "socket closed"
    loop = asyncio.get_running_loop()
    deadline = loop.time() + options.start_timeout_s
    try:
        while not (call.closed or call.gone):
            if session is None:
                try:
                    message = await asyncio.wait_for(ws.receive(), deadline - loop.time())
                except TimeoutError:
                    reason = "no start before deadline"
                    await call.close(1008, reason)
                    break
            else:
                message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                break
            text = message.get("text")
            events = proto.receive_text(text) if text is not None else proto.receive_binary()
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
                    session = await _open(opener, call, event)
                elif isinstance(event, Stop):
                    reason = "stop"
                    await call.close(1000, reason)
                elif isinstance(event, ProtocolViolation):
                    reason = event.reason
                    await call.close(event.close_code, event.reason)
    except asyncio.CancelledError:
        reason = "server shutdown"
        raise
    except Exception:
        reason = "internal error"
        log.exception("stream failed", extra={"call_id": proto.call_sid, "transport": "twilio"})
        await call.close(1011, reason)
    finally:
        if session is not None:
            await opener.closed(session, session.end_reason or reason)
        await call.close(1000, reason)


async def _open(opener: SessionOpener, call: TwilioCall, start: Start) -> CallSession | None:
    extra = {"call_id": start.call_sid, "transport": "twilio"}
    if not start.media_format_ok:
        log.error("unexpected mediaFormat; continuing as mu-law/8000/1", extra=extra)
    params = start.custom_parameters
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
        await call.close(exc.close_code, exc.reason)
    except AgentUnavailable as exc:
        log.error("agent unavailable: %s", exc, extra=extra)
        await call.close(1000, "agent unavailable")
    return None
