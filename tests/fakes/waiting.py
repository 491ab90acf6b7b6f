"""Waiting in a fake server for what a test expects: woken by the fake's own change event,
and now and then regardless (a condition may also change outside the fake)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable


async def wait_until(
    ready: Callable[[], bool],
    change: asyncio.Event,
    timeout_s: float,
    what: str,
    poll_s: float = 0.05,
) -> None:
    """Return once ``ready()``; ``TimeoutError`` naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not ready():
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"timed out waiting for {what}")
        change.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(change.wait(), min(left, poll_s))
