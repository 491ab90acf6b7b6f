"""A lean WebSocket client protocol for load generation (RFC 6455, client side, no TLS).

The load generator must stay cheaper than the server it measures, so this client does the
minimum: a plain asyncio Protocol, frames parsed in place, and client frames masked with an
all-zero key (valid per RFC 6455 §5.3, and it spares the per-byte XOR).
"""

from __future__ import annotations

import asyncio
import base64
import os
import struct
from collections.abc import Callable

OP_TEXT = 0x1
OP_BINARY = 0x2
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA
ZERO_MASK = b"\x00\x00\x00\x00"


def encode_frame(opcode: int, payload: bytes) -> bytes:
    n = len(payload)
    head = bytes([0x80 | opcode])
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 65536:
        head += bytes([0x80 | 126]) + struct.pack("!H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack("!Q", n)
    return head + ZERO_MASK + payload


class LeanWebSocket(asyncio.Protocol):
    """Calls ``on_message(opcode, payload)`` for each complete server frame."""

    def __init__(self, host: str, path: str, headers: dict[str, str] | None = None) -> None:
        self.host = host
        self.path = path
        self.headers = headers or {}
        self.transport: asyncio.Transport | None = None
        self.opened: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self.closed: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
        self._on_message: Callable[[int, bytes], None] | None = None
        self._early: list[tuple[int, bytes]] = []  # frames that arrived before a handler
        self._buffer = bytearray()
        self._handshaken = False
        self.close_code: int | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [
            f"GET {self.path} HTTP/1.1",
            f"Host: {self.host}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {key}",
            "Sec-WebSocket-Version: 13",
            *(f"{k}: {v}" for k, v in self.headers.items()),
        ]
        transport.write(("\r\n".join(lines) + "\r\n\r\n").encode())

    def data_received(self, data: bytes) -> None:
        buf = self._buffer
        buf += data
        if not self._handshaken:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            status = int(bytes(buf[9:12]))
            del buf[: end + 4]
            self._handshaken = True
            if not self.opened.done():
                self.opened.set_result(status)
            if status != 101:
                self._finish(None)
                return
        pos = 0
        size = len(buf)
        while size - pos >= 2:
            opcode = buf[pos] & 0x0F
            length = buf[pos + 1] & 0x7F
            head = 2
            if length == 126:
                if size - pos < 4:
                    break
                length = struct.unpack_from("!H", buf, pos + 2)[0]
                head = 4
            elif length == 127:
                if size - pos < 10:
                    break
                length = struct.unpack_from("!Q", buf, pos + 2)[0]
                head = 10
            if size - pos < head + length:
                break
            payload = bytes(buf[pos + head : pos + head + length])
            pos += head + length
            if opcode == OP_PING:
                self.send(OP_PONG, payload)
            elif opcode == OP_CLOSE:
                self.close_code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
                self.send(OP_CLOSE, payload[:2])
                self._finish(self.close_code)
            elif self._on_message is None:
                self._early.append((opcode, payload))
            else:
                self._on_message(opcode, payload)
        if pos:
            del buf[:pos]

    @property
    def on_message(self) -> Callable[[int, bytes], None] | None:
        return self._on_message

    @on_message.setter
    def on_message(self, handler: Callable[[int, bytes], None]) -> None:
        """Install the handler; frames that came with the handshake are delivered now."""
        self._on_message = handler
        early, self._early = self._early, []
        for opcode, payload in early:
            handler(opcode, payload)

    def send(self, opcode: int, payload: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(encode_frame(opcode, payload))

    def send_text(self, text: str) -> None:
        self.send(OP_TEXT, text.encode())

    def close(self, code: int = 1000) -> None:
        self.send(OP_CLOSE, struct.pack("!H", code))
        if self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._finish(self.close_code)
        if not self.opened.done():
            self.opened.set_exception(ConnectionError("connection lost during handshake"))

    def _finish(self, code: int | None) -> None:
        if not self.closed.done():
            self.closed.set_result(code)
        if self.transport is not None:
            self.transport.close()


async def open_lean(
    host: str, port: int, path: str, headers: dict[str, str] | None = None
) -> LeanWebSocket:
    loop = asyncio.get_running_loop()
    _, protocol = await loop.create_connection(
        lambda: LeanWebSocket(f"{host}:{port}", path, headers), host, port
    )
    status = await asyncio.wait_for(protocol.opened, 10)
    if status != 101:
        raise ConnectionError(f"upgrade refused: HTTP {status}")
    return protocol
