"""Clients that take their time over the request headers (slowloris), over real sockets."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass

UPGRADE_LINES = (
    "Host: 127.0.0.1",
    "Upgrade: websocket",
    "Connection: Upgrade",
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
    "Sec-WebSocket-Version: 13",
)


@dataclass
class SlowResult:
    #: seconds from connecting to the server closing the connection (None: it never did)
    closed_after_s: float | None
    #: what the server sent before closing (nothing, for a connection cut off mid-headers)
    received: bytes


async def slow_upgrade(
    port: int, path: str, line_every_s: float, give_up_s: float, *, first: str | None = None
) -> SlowResult:
    """Open an upgrade to ``path`` and send one header line every ``line_every_s``, never the
    blank line that ends the headers; stop at ``give_up_s`` or when the server closes."""
    started = time.monotonic()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    lines = [first or f"GET {path} HTTP/1.1", *UPGRADE_LINES]
    lines += [f"X-Slow-{index}: {'x' * 20}" for index in range(10_000)]
    received = b""
    try:
        for line in lines:
            remaining_s = give_up_s - (time.monotonic() - started)
            if remaining_s <= 0:
                return SlowResult(None, received)
            writer.write(f"{line}\r\n".encode())
            await writer.drain()
            try:
                data = await asyncio.wait_for(reader.read(4096), min(line_every_s, remaining_s))
            except TimeoutError:
                continue
            if not data:
                return SlowResult(time.monotonic() - started, received)
            received += data
        return SlowResult(None, received)
    except ConnectionError:
        return SlowResult(time.monotonic() - started, received)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def silent_connection(port: int, give_up_s: float) -> SlowResult:
    """Connect and send nothing at all."""
    started = time.monotonic()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        data = await asyncio.wait_for(reader.read(4096), give_up_s)
        return SlowResult(time.monotonic() - started, data)
    except TimeoutError:
        return SlowResult(None, b"")
    except ConnectionError:
        return SlowResult(time.monotonic() - started, b"")
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
