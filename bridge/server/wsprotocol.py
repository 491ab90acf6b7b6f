"""uvicorn's sans-I/O WebSocket protocol with batched flow control and coalesced writes.

Stock uvicorn pauses the socket after *every* inbound message and resumes it on every
``receive()``: two ``epoll_ctl`` system calls per message. A Twilio call sends 50 messages a
second, so at a few hundred calls that bookkeeping costs more than the audio work itself
(bench/README.md has the profile). This subclass pauses only when the application has fallen
``HIGH_WATER`` messages behind and resumes once it is back under ``LOW_WATER``: memory per
connection stays bounded (``HIGH_WATER`` × the message size limit), the syscalls vanish.

Inbound, the protocol offers the fast-receive hook (:mod:`transports.fast_receive`): it puts
itself, a :class:`~transports.fast_receive.FastReceive`, into the ASGI scope's extensions,
and a registered handler gets every text (``str``) and binary (``bytes``) message straight
from ``data_received``, without an ``asyncio.Queue`` hop, a future and a task wake-up per
frame. The handler returns None when it handled the message, or an ASGI receive event to
queue for the application's ordinary ``receive()``; an exception it raises is queued as an
event carrying it under ``ERROR_KEY``, so it surfaces in the application's task.

Frames themselves are split by :mod:`bridge.server.frames` in the common case (complete,
unfragmented, masked text or binary frames on an open connection). At the first other frame
the rest of the stream goes to websockets unchanged, at a frame boundary, and stays there, so
the library's handling of control frames and errors (1002, 1009) applies.

Outbound, every frame used to be its own ``write()`` system call; the playout sends bursts
(a ``media`` and its ``mark`` per chunk, several chunks per wake-up). Writes made during one
event-loop iteration are now joined into one ``write()`` at the end of that iteration: same
order, no added latency, a fraction of the system calls.

The upgrade's handshake deadline (:mod:`bridge.server.handshakes`) is handed over by the HTTP
protocol and finished here once the 101 or the denial has been written.

This subclasses a private uvicorn class; :data:`RELIED_ON` is checked on import
(:mod:`bridge.server.uvicorn_layout`).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.config import Config
from websockets.protocol import Protocol as WebSocketsConnection
from websockets.protocol import State
from websockets.streams import StreamReader

from bridge.server.frames import OP_TEXT, UsualFrames
from bridge.server.handshakes import Handshake
from bridge.server.uvicorn_layout import require_layout, require_uvicorn_version, unsupported
from transports.fast_receive import ERROR_KEY, EXTENSION, FastHandler, FastReceive

try:
    from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
except ImportError as exc:  # pragma: no cover - depends on the installed uvicorn
    raise unsupported(
        "bridge/server/wsprotocol.py",
        ["uvicorn.protocols.websockets.websockets_sansio_impl.WebSocketsSansIOProtocol"],
    ) from exc

#: what this module uses of uvicorn's class: the methods it calls or overrides, and the
#: attributes they must assign
RELIED_ON_METHODS = (
    "connection_made",
    "connection_lost",
    "data_received",
    "handle_connect",
    "handle_parser_exception",
    "send_receive_event_to_app",
    "send",
    "receive",
)
RELIED_ON = {
    "__init__": (
        "config",
        "conn",
        "queue",
        "read_paused",
        "frames",
        "curr_msg_data_type",
        "handshake_complete",
        "close_sent",
        "transport",
        "logger",
        "loop",
    ),
    "handle_connect": ("scope",),
    "connection_made": ("transport",),
}
require_layout(
    WebSocketsSansIOProtocol,
    RELIED_ON_METHODS,
    RELIED_ON,
    what="bridge/server/wsprotocol.py (subclass of uvicorn's WebSocketsSansIOProtocol)",
)
require_uvicorn_version()  # the layout is there from 0.50.0, the behaviour we need from 0.52.1
require_layout(Config, (), {"__init__": ("ws_max_size",)}, what="bridge/server/wsprotocol.py")
require_layout(
    WebSocketsConnection,
    ("send_close",),
    {"__init__": ("state", "reader")},
    what="bridge/server/wsprotocol.py (websockets' sans-I/O connection)",
    package="websockets",
)
require_layout(
    StreamReader,
    (),
    {"__init__": ("buffer",)},
    what="bridge/server/wsprotocol.py (websockets' stream reader)",
    package="websockets",
)

HIGH_WATER = 16
LOW_WATER = 4
#: websockets' close code for a text message that is not UTF-8
INVALID_DATA = 1007


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


def _ends_handshake(message: Any) -> bool:
    """Whether sending ``message`` before the 101 completes our answer to the upgrade."""
    kind = message["type"]
    return kind in ("websocket.accept", "websocket.close") or (
        kind == "websocket.http.response.body" and not message.get("more_body")
    )


class BatchedWebSocketProtocol(WebSocketsSansIOProtocol, FastReceive):
    _fast: FastHandler | None = None
    #: None until the connection is open and the library holds no partial frame
    _usual: UsualFrames | None = None
    #: set at the first unusual frame: the library parses the rest of the connection
    _library_only = False
    _handshake: Handshake | None = None

    # -- the fast-receive hook (transports.fast_receive.FastReceive) ---------------------------

    def register(self, handler: FastHandler | None) -> None:
        self._fast = handler

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        extensions = self.scope.setdefault("extensions", {})  # type: ignore[typeddict-item]
        if extensions is not None:
            extensions[EXTENSION] = self  # type: ignore[assignment]

    # -- inbound -------------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        usual = self._usual
        if usual is None:
            if self._library_only or not self._can_split_frames():
                super().data_received(data)
                return
            usual = self._usual = UsualFrames(self.config.ws_max_size)
        frames, rest = usual.feed(data)
        deliver = self._deliver
        for opcode, payload in frames:
            deliver(opcode == OP_TEXT, payload)
        if rest is not None:
            # Control frames, fragments, oversized or odd frames: the library decides.
            self._usual = None
            self._library_only = True
            if not self.transport.is_closing():
                super().data_received(rest)

    def _can_split_frames(self) -> bool:
        """Only on an open connection whose library parser holds no partial frame."""
        conn = self.conn
        return (
            self.handshake_complete
            and not self.close_sent
            and conn.state is State.OPEN
            and not conn.reader.buffer
            and not self.frames
        )

    def send_receive_event_to_app(self) -> None:
        """uvicorn's handlers call this once the library has assembled a message."""
        data = self.frames[0] if len(self.frames) == 1 else b"".join(self.frames)
        self.frames = []
        self._deliver(self.curr_msg_data_type == "text", data)

    def _deliver(self, is_text: bool, data: bytes) -> None:
        if self.close_sent:
            return  # past our close: discarded, as uvicorn does
        message: str | bytes
        if is_text:
            try:
                message = data.decode()
            except UnicodeDecodeError:
                self.logger.warning("invalid UTF-8 in a text frame; closing 1007")
                self.conn.send_close(INVALID_DATA)
                self.handle_parser_exception()
                return
        else:
            message = data
        fast = self._fast
        if fast is None:
            event: Any = (
                {"type": "websocket.receive", "text": message}
                if is_text
                else {"type": "websocket.receive", "bytes": message}
            )
        else:
            try:
                event = fast(message)
            except Exception as exc:  # surfaces in the application's receive()
                event = {"type": "websocket.receive", ERROR_KEY: exc}
            if event is None:
                return
        self.queue.put_nowait(event)
        if not self.read_paused and self.queue.qsize() >= HIGH_WATER:
            self.read_paused = True
            self.transport.pause_reading()

    async def receive(self):  # type: ignore[no-untyped-def]
        message = await self.queue.get()
        if self.read_paused and self.queue.qsize() <= LOW_WATER:
            self.read_paused = False
            self.transport.resume_reading()
        return message

    # -- outbound ------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport, so no isinstance check
        wrapped = CoalescingTransport(transport, self.loop)  # type: ignore[arg-type]
        super().connection_made(wrapped)  # type: ignore[arg-type]

    async def send(self, message):  # type: ignore[no-untyped-def]
        await super().send(message)
        if self._handshake is not None and _ends_handshake(message):
            self._finish_handshake()
        # uvicorn before 0.55 answers a denial response (401/429/503 before the 101) but
        # forgets that the handshake is then over, and logs "returned without completing
        # handshake" at ERROR.
        if message["type"] == "websocket.http.response.body" and not message.get("more_body"):
            self.handshake_complete = True

    # -- the handshake deadline (bridge.server.handshakes.TakesHandshake) -----------------------

    def take_handshake(self, handshake: Handshake) -> None:
        if self.handshake_complete:  # refused while parsing the upgrade request
            handshake.finish()
        else:
            self._handshake = handshake

    def _finish_handshake(self) -> None:
        handshake, self._handshake = self._handshake, None
        if handshake is not None:
            handshake.finish()

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self._finish_handshake()
