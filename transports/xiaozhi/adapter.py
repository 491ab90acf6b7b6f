"""The xiaozhi adapter: one device's socket on one side, the sans-I/O core on the other.

The shape is every transport's (``transports/stream.py``); what is this device's own is
here: the device speaks first (its ``hello``) and the session opens only once ours has
answered it, because the greeting's ``tts start`` must not come before the device knows our
audio parameters. The microphone (Opus) is the inline event, decoded on the fast path.

A device whose hello says ``features.mcp`` brings tools: the session is opened with the
device's :class:`~transports.xiaozhi.device_tools.DeviceTools` as the call's own tools, and
their listing runs as a task of the call once the session is up. Typed text (``listen
detect`` with no wake word) is a user turn (:meth:`CallSession.typed_turn`).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from starlette.websockets import WebSocket

from transports.base import AgentUnavailable, CallRequest, Rejected, SessionOpener
from transports.link import Link
from transports.stream import TransportStream
from transports.xiaozhi.device_tools import DeviceTools
from transports.xiaozhi.opus import UplinkDecoder
from transports.xiaozhi.port import XiaozhiOptions, XiaozhiPort
from transports.xiaozhi.protocol import (
    Abort,
    Event,
    Hello,
    ListenStart,
    ListenStop,
    Mcp,
    Mode,
    ProtocolViolation,
    TypedText,
    UpstreamOpus,
    XiaozhiProtocol,
)

log = logging.getLogger("transports.xiaozhi")


@dataclass(frozen=True, slots=True)
class XiaozhiDevice:
    """An authenticated device, as the application describes it to the transport."""

    identity: str
    label: str
    protocol_version: int = 1
    params: Mapping[str, str] = field(default_factory=dict)


class XiaozhiStream(TransportStream[Event]):
    transport = "xiaozhi"
    inline = (UpstreamOpus,)
    log = log

    def __init__(
        self,
        ws: WebSocket,
        device: XiaozhiDevice,
        opener: SessionOpener,
        options: XiaozhiOptions,
        on_agent_failure: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(ws, opener, Link(ws))
        self.device = device
        self.proto = XiaozhiProtocol(device.protocol_version)
        self.port = XiaozhiPort(self.link, self.proto, options)
        self.options = options
        self.decoder = UplinkDecoder()
        self.session_id = uuid.uuid4().hex
        self.call_id = f"xiaozhi-{self.session_id[:12]}"
        self._on_agent_failure = on_agent_failure
        self._hello_by_s = 0.0
        #: the device's own tools (its hello said ``features.mcp``)
        self.device_tools: DeviceTools | None = None

    @property
    def context(self) -> dict[str, str]:
        return {"call_id": self.device.label, "transport": self.transport}

    def parse(self, message: str | bytes) -> list[Event]:
        if isinstance(message, bytes):
            return self.proto.receive_binary(message)
        return self.proto.receive_text(message)

    def handle(self, event: Event) -> Awaitable[None] | None:
        session = self.session
        if type(event) is UpstreamOpus:
            if session is not None:
                session.push_audio(self.decoder.decode(event.packet))
        elif isinstance(event, Hello):
            return self._open()
        elif isinstance(event, ListenStart):
            self.port.resumable = event.mode is Mode.REALTIME
        elif isinstance(event, ListenStop):
            if session is not None and event.mode is Mode.MANUAL:
                session.end_of_speech()
        elif isinstance(event, Abort):
            self.port.abort()
            if session is not None:
                session.interrupt()
            return self.port.send_text(self.proto.tts_stop)  # always answered, even idle
        elif isinstance(event, TypedText):
            if session is not None:
                session.typed_turn(event.text)
        elif isinstance(event, Mcp):
            if self.device_tools is not None:
                self.device_tools.receive(event.payload)
        elif isinstance(event, ProtocolViolation):
            self.reason = event.reason
            log.warning("closing: %s", event.reason, extra=self.context)
            return self.port.close(event.close_code, event.reason)
        return None  # wake words change nothing here

    async def begin(self) -> None:
        await self.ws.accept()
        self._hello_by_s = asyncio.get_running_loop().time() + self.options.hello_timeout_s

    def deadline_s(self) -> float | None:
        return None if self.proto.greeted else self._hello_by_s

    async def on_deadline(self) -> None:
        self.reason = "no hello"
        await self.port.close(1008, self.reason)

    async def _open(self) -> None:
        """Our hello, then the session (whose greeting may follow at once), then the
        device's tools."""
        await self.port.send_text(lambda: self.proto.hello(self.session_id))
        device = self.proto.device
        if device is not None and device.mcp:
            self.device_tools = DeviceTools(self._send_mcp, self.context)
        request = CallRequest(
            transport=self.transport,
            call_id=self.call_id,
            identity=self.device.identity,
            caller=self.device.label,
            params=self.device.params,
            supersede=True,
            tools=self.device_tools,
        )
        try:
            self.session = await self.opener.open(request, self.port)
            if self.device_tools is not None:
                self.session.tasks.spawn(self.device_tools.connect(), "mcp", supervised=False)
        except (AgentUnavailable, Rejected) as exc:
            log.error("session refused: %s", exc, extra=self.context)
            if self._on_agent_failure is not None and isinstance(exc, AgentUnavailable):
                self._on_agent_failure()
            code = exc.close_code if isinstance(exc, Rejected) else 1011
            await self.link.close(code, "agent unavailable")

    async def _send_mcp(self, payload: dict[str, Any]) -> None:
        await self.port.send_text(lambda: self.proto.mcp(payload, self.session_id))

    async def end(self) -> None:
        if self.device_tools is not None:
            self.device_tools.close()
        await self.port.close(1000, self.reason)


async def serve_xiaozhi(
    ws: WebSocket,
    device: XiaozhiDevice,
    opener: SessionOpener,
    options: XiaozhiOptions,
    on_agent_failure: Callable[[], None] | None = None,
) -> None:
    """Run one device's session from accept to teardown."""
    await XiaozhiStream(ws, device, opener, options, on_agent_failure).run()
