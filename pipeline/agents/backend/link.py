"""The bridge's side of the backend's WebSocket: connect, open the stream, send, reconnect.

Two loops, each a task of the call (started by the agent), shaped like the Realtime link:

* :meth:`BackendLink.run` connects, sends ``connected`` and ``start`` (a new stream on each
  connection), and hands every frame to a listener, synchronously. A dropped socket is
  reconnected with backoff; the call may make ``reconnects`` attempts after its first, in all
  (refusals and drops alike), so a backend that keeps failing ends the call in seconds, not
  never. 401/403 is an operator error (wrong credentials): never retried. A backend that
  closes with 1000 ended the call itself, as a Twilio app closing its stream does.
* :meth:`BackendLink.send_loop` sends control messages (mark echoes, ``dtmf``) ahead of the
  caller's audio, which waits in a bounded drop-oldest buffer because :meth:`put_audio` runs
  in the transport's receive loop and must never wait. Audio goes out in 20 ms ``media``
  frames, as Twilio sends it.

Control messages are built when they are sent, from the stream then open, so their
``sequenceNumber`` follows the order on the wire; they are forgotten when the socket drops
(their marks name audio of that stream).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from pipeline.agents.backend.config import BackendConfig
from pipeline.agents.backend.messages import FRAME_BYTES, Message, TwilioStream
from pipeline.agents.providers.websocket import describe
from pipeline.call_logger import CallLog

#: how long closing the socket may take when the call ends
CLOSE_TIMEOUT_S = 0.5

#: a control message, built from the stream open when it is sent
Control = Callable[[TwilioStream], Message]


class LinkListener(Protocol):
    def on_frame(self, frame: str | bytes, stream: TwilioStream) -> None:
        """One frame from the backend; must not wait (it runs in the read loop)."""

    def on_lost(self) -> None:
        """The socket dropped; the link reconnects if its budget allows."""

    def on_ended(self) -> None:
        """The backend closed the stream normally: it ended the call."""

    def on_give_up(self, kind: str) -> None:
        """No (more) connections: ``kind`` names why, for metrics; the link stops."""


class BackendRefused(Exception):
    """401/403: the backend rejected our credentials; retrying cannot help."""


class BackendLink:
    def __init__(
        self,
        config: BackendConfig,
        new_stream: Callable[[], TwilioStream],
        log: CallLog,
    ) -> None:
        self.config = config
        self.log = log
        self._new_stream = new_stream
        self._audio = bytearray()
        self._max_audio_bytes = max(FRAME_BYTES, config.inbox_ms * 8)
        self.dropped_bytes = 0
        self._control: deque[Control] = deque()
        self._wake = asyncio.Event()
        self._ws: ClientConnection | None = None
        self.stream: TwilioStream | None = None
        self._connected = asyncio.Event()
        #: connections made so far (1 + reconnects that succeeded)
        self.connections = 0

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def put_audio(self, ulaw: bytes) -> bool:
        """Buffer caller μ-law; True when older audio had to be dropped to make room."""
        self._audio += ulaw
        over = len(self._audio) - self._max_audio_bytes
        if over > 0:
            del self._audio[:over]
            self.dropped_bytes += over
        self._wake.set()
        return over > 0

    def send(self, control: Control) -> None:
        """Queue a control message; it goes out ahead of buffered audio (only while up)."""
        if self._connected.is_set():
            self._control.append(control)
            self._wake.set()

    async def _open(self) -> ClientConnection:
        try:
            return await connect(
                self.config.url,
                additional_headers=dict(self.config.headers),
                open_timeout=self.config.connect_timeout_s,
                max_size=self.config.max_frame_bytes,
                ping_interval=20,
                ping_timeout=20,
                close_timeout=1,
            )
        except InvalidStatus as exc:
            if exc.response.status_code in (401, 403):
                raise BackendRefused(f"HTTP {exc.response.status_code}") from None
            raise

    async def run(self, listener: LinkListener) -> None:
        retries_left = self.config.reconnects
        backoff_s = self.config.first_backoff_s
        while True:
            try:
                ws = await self._open()
            except BackendRefused as exc:
                self.log.error(
                    "operator error: the backend refused us (%s); check BRIDGE_BACKEND_URL "
                    "and BRIDGE_BACKEND_HEADERS",
                    exc,
                )
                listener.on_give_up("backend_refused")
                return
            except (OSError, TimeoutError, InvalidHandshake) as exc:
                if retries_left <= 0:
                    self.log.error("giving up on the backend: %s", describe(exc))
                    listener.on_give_up("backend_unavailable")
                    return
                retries_left -= 1
                self.log.warning("backend connect failed: %s; retrying", describe(exc))
                await asyncio.sleep(backoff_s)
                backoff_s = min(backoff_s * 2, self.config.max_backoff_s)
                continue
            self.connections += 1
            if await self._serve(ws, listener):
                listener.on_ended()
                return
            listener.on_lost()
            if retries_left <= 0:
                self.log.error("the backend dropped the call and no reconnect is left")
                listener.on_give_up("backend_dropped")
                return
            retries_left -= 1
            self.log.warning("backend connection lost (close code %s); reconnecting", ws.close_code)
            await asyncio.sleep(backoff_s)
            backoff_s = min(backoff_s * 2, self.config.max_backoff_s)

    async def _serve(self, ws: ClientConnection, listener: LinkListener) -> bool:
        """One connection: a new stream, then every frame to ``listener``. True when the
        backend closed it normally (it ended the call)."""
        stream = self._new_stream()
        try:
            await ws.send(dumps(stream.connected()))
            await ws.send(dumps(stream.start()))
            self._ws, self.stream = ws, stream
            self._connected.set()
            self._wake.set()
            async for frame in ws:
                listener.on_frame(frame, stream)
        except ConnectionClosed:
            pass
        except BaseException:
            self._connected.clear()  # the call ends: close() says stop on this socket
            raise
        self._ws = None
        self._connected.clear()
        self._control.clear()
        return ws.close_code == 1000

    async def send_loop(self) -> None:
        while True:
            await self._connected.wait()
            ws, stream = self._ws, self.stream
            if ws is None or stream is None:
                self._connected.clear()
                continue
            if self._control:
                message = self._control.popleft()(stream)
            elif len(self._audio) >= FRAME_BYTES:
                frame = bytes(self._audio[:FRAME_BYTES])
                del self._audio[:FRAME_BYTES]
                message = stream.media(frame)
            else:
                self._wake.clear()
                await self._wake.wait()
                continue
            try:
                await ws.send(dumps(message))
            except ConnectionClosed:
                if self._ws is ws:  # wait for the runner to reconnect
                    self._connected.clear()

    async def close(self) -> None:
        """Say ``stop`` and close the socket, briefly; call once both loops are cancelled."""
        ws, stream, self._ws = self._ws, self.stream, None
        if ws is None:
            return
        with contextlib.suppress(Exception):
            if stream is not None:
                await asyncio.wait_for(ws.send(dumps(stream.stop())), CLOSE_TIMEOUT_S)
            await asyncio.wait_for(ws.close(), CLOSE_TIMEOUT_S)


def dumps(message: dict[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"))
