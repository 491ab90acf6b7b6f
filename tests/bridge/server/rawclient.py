"""A WebSocket client that writes exactly the bytes it is given, in the pieces it is given.

websockets' sans-I/O client does the handshake and reads the server's frames; what the client
sends is written straight to the socket, so a test can cut frames at any byte offset (each
piece its own ``write``, with a pause so the server reads it separately) or send frames a
well-behaved client never would.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from typing import Self

from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.protocol import State
from websockets.uri import parse_uri

READ_BYTES = 65536


class RawWebSocket:
    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        protocol: ClientProtocol,
    ) -> None:
        self._reader = reader
        self._writer = writer
        self.protocol = protocol
        self.frames: asyncio.Queue[Frame] = asyncio.Queue()
        self.response: Response | None = None
        self._pump: asyncio.Task[None] | None = None

    @classmethod
    async def open(cls, url: str, timeout_s: float = 5.0) -> Self:
        protocol = ClientProtocol(parse_uri(url), max_size=None)
        uri = parse_uri(url)
        reader, writer = await asyncio.open_connection(uri.host, uri.port)
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        client = cls(reader, writer, protocol)
        protocol.send_request(protocol.connect())
        client._flush()
        await asyncio.wait_for(client._handshake(), timeout_s)
        client._pump = asyncio.create_task(client._read(), name="raw-websocket-reader")
        return client

    async def _handshake(self) -> None:
        while self.response is None:
            data = await self._reader.read(READ_BYTES)
            if not data:
                raise ConnectionError("closed during the handshake")
            self.protocol.receive_data(data)
            for event in self.protocol.events_received():
                if isinstance(event, Response):
                    self.response = event
                elif isinstance(event, Frame):
                    await self.frames.put(event)
        if self.protocol.state is not State.OPEN:
            raise ConnectionError(f"upgrade refused: {self.response.status_code}")

    async def _read(self) -> None:
        while True:
            data = await self._reader.read(READ_BYTES)
            if not data:
                self.protocol.receive_eof()
                return
            self.protocol.receive_data(data)
            self._flush()  # pongs and the close echo
            for event in self.protocol.events_received():
                assert isinstance(event, Frame)
                await self.frames.put(event)

    def _flush(self) -> None:
        for data in self.protocol.data_to_send():
            if data:
                self._writer.write(data)

    # -- building frames (masked, as a client must) without sending them ------------------------

    def text_frame(self, text: str) -> bytes:
        self.protocol.send_text(text.encode())
        return b"".join(self.protocol.data_to_send())

    def binary_frame(self, data: bytes) -> bytes:
        self.protocol.send_binary(data)
        return b"".join(self.protocol.data_to_send())

    def ping_frame(self, data: bytes) -> bytes:
        self.protocol.send_ping(data)
        return b"".join(self.protocol.data_to_send())

    # -- sending ---------------------------------------------------------------------------------

    async def write(self, data: bytes) -> None:
        self._writer.write(data)
        await self._writer.drain()

    async def write_pieces(self, pieces: list[bytes], pause_s: float = 0.002) -> None:
        """Each piece its own write, with a pause so the server reads them one by one."""
        for piece in pieces:
            await self.write(piece)
            await asyncio.sleep(pause_s)

    # -- receiving --------------------------------------------------------------------------------

    async def next_frame(self, timeout_s: float = 5.0) -> Frame:
        return await asyncio.wait_for(self.frames.get(), timeout_s)

    async def next_data(self, timeout_s: float = 5.0) -> str | bytes:
        """The next text or binary message (the server sends them unfragmented)."""
        while True:
            frame = await self.next_frame(timeout_s)
            if frame.opcode is Opcode.TEXT:
                return bytes(frame.data).decode()
            if frame.opcode is Opcode.BINARY:
                return bytes(frame.data)
            if frame.opcode is Opcode.CLOSE:
                raise ConnectionError(f"closed: {self.protocol.close_rcvd}")

    async def wait_close_code(self, timeout_s: float = 5.0) -> int | None:
        """Read on until the server closes; its close code (None: no close frame)."""
        while True:
            frame = await self.next_frame(timeout_s)
            if frame.opcode is Opcode.CLOSE:
                rcvd = self.protocol.close_rcvd
                return None if rcvd is None else int(rcvd.code)

    async def close(self) -> None:
        if self._pump is not None:
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump
        self._writer.close()
        with contextlib.suppress(ConnectionError):
            await self._writer.wait_closed()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
