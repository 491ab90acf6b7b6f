"""uvicorn's sans-I/O WebSocket protocol with batched flow control and coalesced writes.

Stock uvicorn pauses the socket after *every* inbound message and resumes it on every
``receive()``: two ``epoll_ctl`` system calls per message. A Twilio call sends 50 messages a
second, so at a few hundred calls that bookkeeping costs more than the audio work itself
(bench/README.md has the profile). This subclass pauses only when the application has fallen
``HIGH_WATER`` messages behind and resumes once it is back under ``LOW_WATER``: memory per
connection stays bounded (``HIGH_WATER`` × the message size limit), the syscalls vanish.

Outbound, every frame used to be its own ``write()`` system call; the playout sends bursts
(a ``media`` and its ``mark`` per chunk, several chunks per wake-up). Writes made during one
event-loop iteration are now joined into one ``write()`` at the end of that iteration: same
order, no added latency, a fraction of the system calls.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

HIGH_WATER = 16
LOW_WATER = 4


class CoalescingTransport:
    """Wraps a transport: writes within one loop iteration leave as one ``write()``."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []
        self._scheduled = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        self._pending.append(bytes(data))
        if not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self.flush)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        self._scheduled = False
        if not self._pending:
            return
        data = self._pending[0] if len(self._pending) == 1 else b"".join(self._pending)
        self._pending.clear()
        if not self._transport.is_closing():
            self._transport.write(data)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class BatchedWebSocketProtocol(WebSocketsSansIOProtocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport, so no isinstance check
        wrapped = CoalescingTransport(transport, self.loop)  # type: ignore[arg-type]
        super().connection_made(wrapped)  # type: ignore[arg-type]

    def send_receive_event_to_app(self) -> None:
        data = self.frames[0] if len(self.frames) == 1 else b"".join(self.frames)
        self.frames = []
        if self.close_sent:
            return
        if self.curr_msg_data_type == "text":
            try:
                text = data.decode()
            except UnicodeDecodeError:
                self.logger.warning("invalid UTF-8 in a text frame; closing 1007")
                self.conn.send_close(1007)
                self.handle_parser_exception()
                return
            self.queue.put_nowait({"type": "websocket.receive", "text": text})
        else:
            self.queue.put_nowait({"type": "websocket.receive", "bytes": data})
        if not self.read_paused and self.queue.qsize() >= HIGH_WATER:
            self.read_paused = True
            self.transport.pause_reading()

    async def send(self, message):  # type: ignore[no-untyped-def]
        await super().send(message)
        # uvicorn answers a denial response (401/429/503 before the 101) but forgets that the
        # handshake is then over, and logs "returned without completing handshake" at ERROR.
        if message["type"] == "websocket.http.response.body" and not message.get("more_body"):
            self.handshake_complete = True

    async def receive(self):  # type: ignore[no-untyped-def]
        message = await self.queue.get()
        if self.read_paused and self.queue.qsize() <= LOW_WATER:
            self.read_paused = False
            self.transport.resume_reading()
        return message
