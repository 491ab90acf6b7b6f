"""Event-loop lag: how late a periodic sleep wakes up.

Every call shares one event loop, so anything that holds it (a slow codec step, a blocking
call in an agent) delays every call's audio. A sleep that wakes late measures exactly that
delay, for the cost of one wake-up per interval.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

DEFAULT_INTERVAL_S = 0.5


async def monitor_loop_lag(
    observe: Callable[[float], None], interval_s: float = DEFAULT_INTERVAL_S
) -> None:
    """Run until cancelled, calling ``observe(lag_s)`` after every sleep."""
    loop = asyncio.get_running_loop()
    while True:
        due_s = loop.time() + interval_s
        await asyncio.sleep(interval_s)
        observe(max(0.0, loop.time() - due_s))
