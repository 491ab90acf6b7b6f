"""The toy's network edge: a TCP socket with the device's window, the firmware's handshake,
and a close that cannot hang.

Buffering that remains between the server and the emulator's play clock: the kernel's
receive buffer (``tcp_rcvbuf_bytes``, which Linux doubles; the default mimics lwIP's window),
the bytes of one transport read, and at most a couple of parsed frames (``max_queue=1``:
websockets pauses reading once more than one frame waits). The server's own send buffer is on
its side, as with a real device.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from urllib.parse import urlsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.frames import Frame, Opcode
from websockets.protocol import Event
from websockets.typing import Origin, Subprotocol

from transports.esp32.emulator.device import DEVICE_ORIGIN, DEVICE_USER_AGENT

OPEN_TIMEOUT_S = 10.0
#: how long a close handshake may take before the socket is dropped
CLOSE_TIMEOUT_S = 2.0
HTTP_PORT = 80
HTTPS_PORT = 443


class DeviceConnection(ClientConnection):
    """Counts fragmented messages: the firmware ignores fragment events, so they are lost."""

    fragmented_messages: int = 0

    def process_event(self, event: Event) -> None:
        data_opcodes = (Opcode.TEXT, Opcode.BINARY)
        if isinstance(event, Frame) and event.opcode in data_opcodes and not event.fin:
            self.fragmented_messages += 1
        super().process_event(event)


async def open_device_socket(url: str, rcvbuf_bytes: int | None) -> socket.socket:
    """A TCP socket with the device's small receive window, so back-pressure is real.

    Linux autotunes loopback receive buffers to megabytes, which would hide a server that
    outruns playback; the window must be set before connecting to take effect.
    """
    parts = urlsplit(url)
    secure = parts.scheme == "wss"
    host = parts.hostname or "localhost"
    port = parts.port or (HTTPS_PORT if secure else HTTP_PORT)
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    last_error: OSError | None = None
    for family, kind, proto, _, address in infos:
        sock = socket.socket(family, kind, proto)
        try:
            sock.setblocking(False)
            if rcvbuf_bytes is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf_bytes)
            await loop.sock_connect(sock, address)
        except OSError as exc:
            sock.close()
            last_error = exc
            continue
        except BaseException:
            sock.close()
            raise
        return sock
    raise last_error or OSError(f"cannot resolve {host}")


async def device_handshake(
    url: str,
    sock: socket.socket,
    *,
    subprotocol: str | None,
    headers: dict[str, str],
) -> DeviceConnection:
    """Open the WebSocket like the firmware: its Origin and User-Agent, the subprotocol
    offered only, no compression, no pings, one parsed frame at a time."""
    offered = [Subprotocol(subprotocol)] if subprotocol else None
    try:
        ws = await connect(
            url,
            sock=sock,
            origin=Origin(DEVICE_ORIGIN),
            subprotocols=offered,
            additional_headers=headers,
            user_agent_header=DEVICE_USER_AGENT,
            compression=None,
            ping_interval=None,
            max_queue=1,
            max_size=None,
            open_timeout=OPEN_TIMEOUT_S,
            close_timeout=CLOSE_TIMEOUT_S,
            create_connection=DeviceConnection,
        )
    except BaseException:
        sock.close()
        raise
    assert isinstance(ws, DeviceConnection)
    return ws


async def close_draining(ws: ClientConnection) -> None:
    """Close handshake while draining: with ``max_queue=1`` an unread frame would pause
    reading and the server's close frame would never be seen."""
    closer = asyncio.create_task(ws.close(), name="fake-toy-close")
    try:
        async with asyncio.timeout(CLOSE_TIMEOUT_S * 2):
            with contextlib.suppress(ConnectionClosed):
                while True:
                    await ws.recv()
    except TimeoutError:
        pass
    finally:
        if not closer.done():
            closer.cancel()
        await asyncio.gather(closer, return_exceptions=True)
