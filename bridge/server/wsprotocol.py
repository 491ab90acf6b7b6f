"""uvicorn's sans-I/O WebSocket protocol with batched flow control and coalesced writes.

Stock uvicorn pauses the socket after *every* inbound message and resumes it on every
``receive()``: two ``epoll_ctl`` system calls per message. A Twilio call sends 50 messages a
second, so at a few hundred calls that bookkeeping costs more than the audio work itself
(bench/README.md has the profile). This subclass pauses only when the application has fallen
``HIGH_WATER`` messages behind and resumes once it is back under ``LOW_WATER``: memory per
connection stays bounded (``HIGH_WATER`` × the message size limit), the syscalls vanish.

Inbound, a transport adapter may also register a synchronous *fast handler* through the ASGI
scope extension ``bridge.fast_receive`` (see :data:`FAST_RECEIVE`). Text frames then go to it
straight from ``data_received``: a Twilio media frame is decoded and fed to the endpointer
without an ``asyncio.Queue`` hop, a future and a task wake-up per frame. The handler returns
``None`` when it handled the frame, or an ASGI receive event to queue for the application's
ordinary ``receive()`` (rare events: start, stop, DTMF). An exception in the handler is queued
as an event too, so it surfaces in the application's task like any other failure.

Frames themselves are parsed here in the common case: a complete, unfragmented, masked text
or binary frame on an open connection (what Twilio and the toys send all day) is unmasked
with websockets' own C ``apply_mask`` and delivered directly. The library's generator-based
parser costs several times more per small frame (bench/README.md). Every other frame
(control frames, fragments, anything oversized or malformed) is handed to websockets
unchanged, at a frame boundary; after the first unusual frame the fast parser switches
itself off for the connection so the library's error handling (1002, 1007, 1009) applies.

Outbound, every frame used to be its own ``write()`` system call; the playout sends bursts
(a ``media`` and its ``mark`` per chunk, several chunks per wake-up). Writes made during one
event-loop iteration are now joined into one ``write()`` at the end of that iteration: same
order, no added latency, a fraction of the system calls.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.protocol import State

try:
    from websockets.speedups import apply_mask
except ImportError:  # a pure-Python websockets build
    from websockets.frames import apply_mask  # type: ignore[attr-defined,no-redef]

from transports.base import FAST_ERROR, FAST_RECEIVE

HIGH_WATER = 16
LOW_WATER = 4

FastHandler = Callable[[str], "dict[str, Any] | None"]


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


_OP_TEXT = 0x1
_OP_BINARY = 0x2
_FIN = 0x80
_RSV = 0x70
_MASKED = 0x80


class BatchedWebSocketProtocol(WebSocketsSansIOProtocol):
    _fast_text: FastHandler | None = None
    #: None until the handshake is done; then our own frame parser is active until switched off
    _rx: bytearray | None = None
    _fast_frames_off = False

    def data_received(self, data: bytes) -> None:
        if self._rx is None or self._fast_frames_off:
            if not self._fast_frames_off and self._can_parse_frames():
                self._rx = bytearray()
                self._parse_frames(data)
                return
            super().data_received(data)
            return
        self._parse_frames(data)

    def _can_parse_frames(self) -> bool:
        """Only on an open connection whose library parser holds no partial frame."""
        conn = self.conn
        return (
            self.handshake_complete
            and not self.close_sent
            and conn.state is State.OPEN
            and not conn.reader.buffer
            and not self.frames
        )

    def _parse_frames(self, data: bytes) -> None:
        assert self._rx is not None
        buf = self._rx
        buf += data
        pos = 0
        end = len(buf)
        max_size = self.conn.max_message_size
        while end - pos >= 2:
            b0 = buf[pos]
            b1 = buf[pos + 1]
            length = b1 & 0x7F
            head = pos + 2
            if length == 126:
                if end - head < 2:
                    break
                length = int.from_bytes(buf[head : head + 2], "big")
                head += 2
            elif length == 127:
                if end - head < 8:
                    break
                length = int.from_bytes(buf[head : head + 8], "big")
                head += 8
            opcode = b0 & 0x0F
            usual = (
                b0 & (_FIN | _RSV) == _FIN
                and b1 & _MASKED
                and opcode in (_OP_TEXT, _OP_BINARY)
                and (max_size is None or length <= max_size)
            )
            if not usual:
                # Control frames, fragments, oversized or odd frames: the library decides.
                self._fast_frames_off = True
                rest = bytes(buf[pos:])
                self._rx = None
                if pos:
                    del buf[:pos]
                super().data_received(rest)
                return
            if end - head < 4 + length:
                break
            mask = bytes(buf[head : head + 4])
            payload = apply_mask(bytes(buf[head + 4 : head + 4 + length]), mask)
            pos = head + 4 + length
            self.curr_msg_data_type = "text" if opcode == _OP_TEXT else "bytes"
            self.frames = [payload]
            self.send_receive_event_to_app()
            if self.close_sent or self.transport.is_closing():
                break
        if pos:
            del buf[:pos]

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        extensions = self.scope.setdefault("extensions", {})  # type: ignore[typeddict-item]
        if extensions is not None:
            extensions[FAST_RECEIVE] = self._register_fast_text  # type: ignore[assignment]

    def _register_fast_text(self, handler: FastHandler | None) -> None:
        self._fast_text = handler

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
            fast = self._fast_text
            if fast is None:
                self.queue.put_nowait({"type": "websocket.receive", "text": text})
            else:
                try:
                    event = fast(text)
                except Exception as exc:  # surfaces in the application's receive()
                    event = {"type": "websocket.receive", FAST_ERROR: exc}
                if event is None:
                    return
                self.queue.put_nowait(event)  # type: ignore[arg-type]
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
