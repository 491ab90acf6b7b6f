"""The Twilio adapter: a Media Stream's socket on one side, the sans-I/O core on the other.

The shape is every transport's (``transports/stream.py``); what is Twilio's own is here:
the stream must ``start`` within a deadline, ``start`` must carry a token bound to its CallSid
when tokens are enforced (``binding.py``), media and mark echoes are the inline events.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any

from starlette.websockets import WebSocket

from transports.base import AgentUnavailable, CallRequest, Rejected, SessionOpener, mask_phone
from transports.link import Link
from transports.stream import TransportStream
from transports.twilio import binding
from transports.twilio.binding import BindingError
from transports.twilio.port import TwilioOptions, TwilioPort
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

#: a live stream that sent no media for this long is dead (Twilio sends it every 20 ms)
STREAM_DEAD_AFTER_S = 2.0


class TwilioStream(TransportStream[Event]):
    transport = "twilio"
    inline = (Media, MarkPlayed)
    log = log

    def __init__(self, ws: WebSocket, opener: SessionOpener, options: TwilioOptions) -> None:
        super().__init__(ws, opener, Link(ws))
        self.options = options
        self.proto = TwilioProtocol()
        self.port = TwilioPort(self.link, self.proto, options)
        self._start_by_s = 0.0

    @property
    def context(self) -> dict[str, Any]:
        return {"call_id": self.proto.call_sid, "transport": self.transport}

    def parse(self, message: str | bytes) -> list[Event]:
        if isinstance(message, str):
            return self.proto.receive_text(message)
        return self.proto.receive_binary()

    def handle(self, event: Event) -> Awaitable[None] | None:
        session = self.session
        if type(event) is Media:
            if session is not None:
                session.push_audio(event.payload)
        elif type(event) is MarkPlayed:
            self.port.mark_played()
        elif isinstance(event, Dtmf):
            if session is not None:
                session.dtmf(event.digit)
        elif isinstance(event, Start):
            return self._open(event)
        elif isinstance(event, Stop):
            self.reason = "stop"
            return self.link.close(1000, self.reason)
        elif isinstance(event, ProtocolViolation):
            self.reason = event.reason
            return self.link.close(event.close_code, event.reason)
        return None

    async def begin(self) -> None:
        await self.ws.accept()
        self._start_by_s = asyncio.get_running_loop().time() + self.options.start_timeout_s

    def deadline_s(self) -> float | None:
        return self._start_by_s if self.session is None else None

    async def on_deadline(self) -> None:
        self.reason = "no start before deadline"
        await self.link.close(1008, self.reason)

    async def _open(self, start: Start) -> None:
        extra = {"call_id": start.call_sid, "transport": self.transport}
        if not self._bound(start):
            self.reason = "stream token rejected"
            await self.link.close(1008, self.reason)
            return
        if not start.media_format_ok:
            log.error("unexpected mediaFormat; continuing as mu-law/8000/1", extra=extra)
        # the stream token has done its job; agents and call records never see it
        params = {k: v for k, v in start.custom_parameters.items() if k != binding.PARAMETER}
        self.port.call_params = params
        request = CallRequest(
            transport=self.transport,
            call_id=start.call_sid,
            identity=start.call_sid,
            caller=mask_phone(params.get("from", "")),
            callee=params.get("to", ""),
            params={**params, "accountSid": start.account_sid, "streamSid": start.stream_sid},
            # Twilio sends media every 20 ms, silence included: a stream quiet this long
            # is gone, and a second one for its CallSid may take over
            dead_after_s=STREAM_DEAD_AFTER_S,
        )
        try:
            self.session = await self.opener.open(request, self.port)
        except Rejected as exc:
            log.warning("stream rejected: %s", exc.reason, extra=extra)
            await self.link.close(exc.close_code, exc.reason)
        except AgentUnavailable as exc:
            log.error("agent unavailable: %s", exc, extra=extra)
            await self.link.close(1000, "agent unavailable")

    def _bound(self, start: Start) -> bool:
        """True when no token is required, or ``start`` carries one minted for its CallSid."""
        tokens = self.options.stream_tokens
        if tokens is None:
            return True
        token = start.custom_parameters.get(binding.PARAMETER)
        try:
            tokens.verify(token, start.call_sid, self.options.clock())
        except BindingError as exc:
            log.warning(
                "stream rejected: %s (account %s, stream %s)",
                exc.reason,
                start.account_sid,
                start.stream_sid,
                extra={"call_id": start.call_sid, "transport": self.transport},
            )
            return False
        return True


async def serve_twilio(ws: WebSocket, opener: SessionOpener, options: TwilioOptions) -> None:
    """Run one Twilio Media Stream from accept to teardown."""
    await TwilioStream(ws, opener, options).run()
