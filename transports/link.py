"""The socket under a port: one ordered send path, and a close that happens exactly once.

Every transport's port writes through a :class:`Link`. Sends are serialised by one lock (a
Twilio ``clear`` must never split a ``media`` from its ``mark``; a toy's control frame never
lands between two halves of anything), and once a send fails the peer is taken as gone:
nothing more is written, and teardown follows from the adapter's receive loop.
"""

from __future__ import annotations

import asyncio
import logging

from starlette.websockets import WebSocket, WebSocketState

log = logging.getLogger("transports.link")

#: RFC 6455 allows 123 bytes of close reason; keep well inside it
MAX_CLOSE_REASON_CHARS = 120


class Link:
    def __init__(self, ws: WebSocket) -> None:
        self.ws = ws
        #: held for every write; a port may hold it across a build-and-send
        self.lock = asyncio.Lock()
        #: a send failed, or the peer closed: nothing can be said to it any more
        self.gone = False
        #: we closed the socket, with :attr:`close_code`
        self.closed = False
        self.close_code: int | None = None

    @property
    def open(self) -> bool:
        return not (self.gone or self.closed)

    async def send(self, *frames: str | bytes) -> None:
        """Send in order under the lock; nothing goes out after a close or a failed send."""
        async with self.lock:
            await self.send_locked(*frames)

    async def send_locked(self, *frames: str | bytes) -> None:
        """:meth:`send` for a caller that already holds :attr:`lock`."""
        for frame in frames:
            if not self.open:
                return
            try:
                if isinstance(frame, str):
                    await self.ws.send_text(frame)
                else:
                    await self.ws.send_bytes(frame)
            except Exception:  # the socket is gone: teardown follows from the reader
                self.gone = True

    async def close(self, code: int, reason: str) -> None:
        """Close the socket with ``code``, once; later calls (any code) do nothing."""
        async with self.lock:
            if self.closed:
                return
            self.closed = True
            self.close_code = code
            if self.gone or self.ws.application_state is not WebSocketState.CONNECTED:
                return
            try:
                await self.ws.close(code, reason[:MAX_CLOSE_REASON_CHARS])
            except Exception:  # the peer went away first; nothing left to tell it
                self.gone = True
