"""The measurement loop both load generators share.

One ticker drives every simulated peer at its real-time period. After a warm-up the peers'
stats are reset and the server's CPU time, this generator's CPU time and the ticker's own
lag are measured over the window, so a run can show whether the generator kept up.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from bench.procstat import cpu_seconds, rss_bytes
from bench.wsclient import LeanWebSocket


class Simulated(Protocol):
    """A simulated peer (a call or a toy) driven by the ticker."""

    ws: LeanWebSocket
    failed: bool

    def tick(self, now: float, measuring: bool) -> None: ...

    def reset_stats(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Window:
    wall_s: float
    server_cpu_s: float
    generator_cpu_s: float
    rss_idle_bytes: int
    rss_loaded_bytes: int
    lags_ms: list[float]

    def server_cpu_pct(self) -> float:
        return round(100 * self.server_cpu_s / self.wall_s, 1)

    def cpu_ms_per_peer_s(self, peers: int) -> float:
        return round(1000 * self.server_cpu_s / (peers * self.wall_s), 3)

    def rss_per_peer_mb(self, peers: int) -> float:
        return round((self.rss_loaded_bytes - self.rss_idle_bytes) / peers / 2**20, 3)

    def generator_cpu_pct(self) -> float:
        return round(100 * self.generator_cpu_s / self.wall_s, 1)


async def measure(
    peers: Sequence[Simulated],
    server_pid: int,
    rss_idle_bytes: int,
    period_ms: float,
    warmup_s: float,
    seconds: float,
) -> Window:
    """Tick every peer each ``period_ms`` for ``warmup_s + seconds``; measure the last part."""
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    tick = 0
    measuring = False
    cpu_start = gen_start = wall_start = 0.0
    lags_ms: list[float] = []
    while loop.time() < t0 + warmup_s + seconds:
        now = time.monotonic()
        if measuring:
            lags_ms.append((loop.time() - (t0 + tick * period_ms / 1000)) * 1000)
        elif loop.time() >= t0 + warmup_s:
            measuring = True
            for peer in peers:
                peer.reset_stats()
            cpu_start, gen_start, wall_start = cpu_seconds(server_pid), time.process_time(), now
        for peer in peers:
            if peer.ws.closed.done():
                peer.failed = True
            else:
                peer.tick(now, measuring)
        tick += 1
        delay = t0 + tick * period_ms / 1000 - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
    return Window(
        wall_s=time.monotonic() - wall_start,
        server_cpu_s=cpu_seconds(server_pid) - cpu_start,
        generator_cpu_s=time.process_time() - gen_start,
        rss_idle_bytes=rss_idle_bytes,
        rss_loaded_bytes=rss_bytes(server_pid),
        lags_ms=lags_ms,
    )
