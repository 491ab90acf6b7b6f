"""The talk page adapter: one browser's socket on one side, the sans-I/O core on the other.

The shape is every transport's (``transports/stream.py``); what is the page's own is here:
the page speaks first (``hello``, naming the persona) and must within a deadline; the
microphone and the page's playback reports are the inline events.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any

from starlette.websockets import WebSocket

from transports.base import AgentUnavailable, CallRequest, Rejected, SessionOpener
from transports.browser.port import BrowserPort
from transports.browser.protocol import (
    Audio,
    BrowserProtocol,
    Bye,
    Event,
    Hello,
    Played,
    ProtocolViolation,
)
from transports.link import Link
from transports.stream import TransportStream

log = logging.getLogger("transports.browser")


@dataclass(frozen=True, slots=True)
class BrowserVisitor:
    """Who opened the page, as the route admitted them."""

    #: for logs and records: the address, or the name a token was minted for
    label: str
    #: the persona a token fixed, if any (the page's choice is then ignored)
    persona: str = ""
    #: the personas the page may pick (empty: any the bridge knows)
    personas: frozenset[str] = field(default_factory=frozenset)
    hello_timeout_s: float = 10.0


class BrowserStream(TransportStream[Event]):
    transport = "browser"
    inline = (Audio, Played)
    log = log

    def __init__(self, ws: WebSocket, opener: SessionOpener, visitor: BrowserVisitor) -> None:
        super().__init__(ws, opener, Link(ws))
        self.visitor = visitor
        self.proto = BrowserProtocol()
        self.port = BrowserPort(self.link, self.proto)
        self.call_id = f"web-{uuid.uuid4().hex[:12]}"
        self._hello_by_s = 0.0

    @property
    def context(self) -> dict[str, Any]:
        return {"call_id": self.call_id, "transport": self.transport}

    def parse(self, message: str | bytes) -> list[Event]:
        if isinstance(message, bytes):
            return self.proto.receive_binary(message)
        return self.proto.receive_text(message)

    def handle(self, event: Event) -> Awaitable[None] | None:
        session = self.session
        if type(event) is Audio:
            if session is not None:
                session.push_audio(event.pcm16)
        elif type(event) is Played:
            self.port.played(event)
        elif isinstance(event, Hello):
            return self._open(event)
        elif isinstance(event, Bye):
            self.reason = "the person left"
            return self.link.close(1000, self.reason)
        elif isinstance(event, ProtocolViolation):
            self.reason = event.reason
            log.warning("closing: %s", event.reason, extra=self.context)
            return self.link.close(event.close_code, event.reason)
        return None

    async def begin(self) -> None:
        await self.ws.accept()
        self._hello_by_s = asyncio.get_running_loop().time() + self.visitor.hello_timeout_s

    def deadline_s(self) -> float | None:
        return self._hello_by_s if self.session is None else None

    async def end(self) -> None:
        await self.port.close(1000, self.reason)

    async def on_deadline(self) -> None:
        self.reason = "no hello before deadline"
        await self.link.close(1008, self.reason)

    async def _open(self, hello: Hello) -> None:
        visitor = self.visitor
        persona = visitor.persona or hello.persona
        if persona and visitor.personas and persona not in visitor.personas:
            self.reason = "unknown persona"
            await self.link.close(1008, f"unknown persona {persona!r:.40}")
            return
        request = CallRequest(
            transport=self.transport,
            call_id=self.call_id,
            identity=self.call_id,
            caller=visitor.label,
            params={"persona": persona} if persona else {},
        )
        # before the session: a greeting's first audio must find the page told its rate
        await self.port.send_text(self.proto.hello(self.call_id, persona))
        try:
            session = await self.opener.open(request, self.port)
        except (Rejected, AgentUnavailable) as exc:
            log.error("session refused: %s", exc, extra=self.context)
            code = exc.close_code if isinstance(exc, Rejected) else 1011
            await self.link.close(code, "agent unavailable")
            return
        self.session = session


async def serve_browser(ws: WebSocket, opener: SessionOpener, visitor: BrowserVisitor) -> None:
    """Run one talk page's session from accept to teardown."""
    await BrowserStream(ws, opener, visitor).run()
