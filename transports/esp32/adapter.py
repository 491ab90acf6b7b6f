"""The toy adapter: one Elato device's socket on one side, the sans-I/O core on the other.

The shape is every transport's (``transports/stream.py``); what is the toy's own is here:
the server speaks first (``auth``, then the greeting or a bare ``RESPONSE.COMPLETE``), the
microphone is the inline event, and a watchdog answers ``RESPONSE.ERROR`` whenever the agent
leaves the device waiting (spec TE7–TE9), because the firmware has no timeouts of its own.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable

from starlette.websockets import WebSocket

from transports.base import AgentUnavailable, CallRequest, Rejected, SessionOpener
from transports.esp32.port import Esp32Device, Esp32Options, Esp32Port
from transports.esp32.protocol import (
    DeviceState,
    EndOfSpeech,
    EndSession,
    Esp32Protocol,
    Event,
    Interrupt,
    ProtocolViolation,
    UpstreamAudio,
)
from transports.link import Link
from transports.stream import TransportStream

log = logging.getLogger("transports.esp32")


class Esp32Stream(TransportStream[Event]):
    transport = "esp32"
    inline = (UpstreamAudio,)
    log = log

    def __init__(
        self,
        ws: WebSocket,
        device: Esp32Device,
        opener: SessionOpener,
        options: Esp32Options,
        subprotocol: str | None = None,
        on_agent_failure: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(ws, opener, Link(ws))
        self.device = device
        self.proto = Esp32Protocol(options.upstream_rate_hz)
        self.port = Esp32Port(self.link, self.proto, options)
        self._subprotocol = subprotocol
        self._on_agent_failure = on_agent_failure
        self.call_id = f"esp32-{uuid.uuid4().hex[:12]}"

    @property
    def context(self) -> dict[str, str]:
        return {"call_id": self.device.label, "transport": self.transport}

    def parse(self, message: str | bytes) -> list[Event]:
        if isinstance(message, bytes):
            return self.proto.receive_binary(message, self.port.now_ms())
        return self.proto.receive_text(message)

    def handle(self, event: Event) -> Awaitable[None] | None:
        session = self.session
        if type(event) is UpstreamAudio:
            if session is not None:
                session.push_audio(event.pcm16)
        elif isinstance(event, EndOfSpeech):
            if session is not None:
                session.end_of_speech()
        elif isinstance(event, Interrupt):
            self.port.device_heard_ms = event.audio_end_ms
            if session is not None:
                session.interrupt()
        elif isinstance(event, EndSession):
            self.reason = "device ended the session"
            return self.port.close(1000, self.reason)
        elif isinstance(event, ProtocolViolation):
            self.reason = event.reason
            log.warning("closing: %s", event.reason, extra=self.context)
            return self.port.close(event.close_code, event.reason)
        return None

    async def begin(self) -> None:
        """Accept, say ``auth``, open the session; no greeting coming: close the slot."""
        port, proto = self.port, self.proto
        await self.ws.accept(subprotocol=self._subprotocol)
        await port.send_text(lambda: proto.auth(self.device.auth))
        request = CallRequest(
            transport=self.transport,
            call_id=self.call_id,
            identity=self.device.identity,
            caller=self.device.label,
            params=self.device.params,
            supersede=True,
        )
        try:
            session = await self.opener.open(request, port)
        except (AgentUnavailable, Rejected) as exc:
            log.error("session refused: %s", exc, extra=self.context)
            if self._on_agent_failure is not None and isinstance(exc, AgentUnavailable):
                self._on_agent_failure()
            await port.answer_error()
            code = exc.close_code if isinstance(exc, Rejected) else 1011
            await self.link.close(code, "agent unavailable")
            return
        self.session = session
        if not session.has_open_turn and proto.state is DeviceState.OPEN:
            await port.send_text(lambda: proto.complete(port.now_ms(), 0.0))  # no greeting
            port.deadline_s = None
        session.tasks.spawn(self._watchdog(), "watchdog")

    async def fail(self) -> None:
        await self.port.answer_error()
        await self.link.close(1011, self.reason)

    def peer_closed(self) -> None:
        super().peer_closed()
        self.port.peer_closed.set()  # a SESSION.END waiting for the device's close is done

    async def end(self) -> None:
        """The polite end (SESSION.END, then the close) unless the socket is already done."""
        await self.port.close(1000, self.reason)

    async def _watchdog(self) -> None:
        """TE7–TE9: never leave the device waiting; wakes only on deadlines."""
        port = self.port
        while True:
            deadline_s = port.deadline_s
            port.deadline_changed.clear()
            timeout_s = None if deadline_s is None else max(0.0, deadline_s - port.clock())
            try:
                # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation
                # that arrives as the event is set, and the call could not end
                async with asyncio.timeout(timeout_s):
                    await port.deadline_changed.wait()
                continue
            except TimeoutError:
                pass
            log.warning("watchdog: the agent went silent; answering RESPONSE.ERROR")
            port.deadline_s = None
            if self.session is not None:
                self.session.drop_turn()
            await port.answer_error()


async def serve_esp32(
    ws: WebSocket,
    device: Esp32Device,
    opener: SessionOpener,
    options: Esp32Options,
    subprotocol: str | None = None,
    on_agent_failure: Callable[[], None] | None = None,
) -> None:
    """Run one toy session from accept to teardown."""
    await Esp32Stream(ws, device, opener, options, subprotocol, on_agent_failure).run()
