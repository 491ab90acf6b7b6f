"""The measurement loop both load generators share.

One ticker drives every simulated peer at its real-time period. After a warm-up the peers'
stats are reset and the server's CPU time, this generator's CPU time and the ticker's own
lag are measured over the window, so a run can show whether the generator kept up; so are,
when asked, other processes' CPU time (the fakes a server talks to) and how busy each core
was with anything at all (what else ran on the shared machine).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from bench.procstat import core_busy_seconds, core_steal_seconds, cpu_seconds, rss_bytes
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
    #: CPU time of the watched processes (``measure(watched=...)``)
    watched_cpu_s: float = 0.0
    #: core -> its busy time, every process's (``measure(cores=...)``)
    cores_busy_s: dict[int, float] = field(default_factory=dict)
    #: core -> time the hypervisor took it (``measure(cores=...)``)
    cores_steal_s: dict[int, float] = field(default_factory=dict)
    #: wall-clock time the window began (``time.time()``)
    started_wall_s: float = 0.0

    def server_cpu_pct(self) -> float:
        return round(100 * self.server_cpu_s / self.wall_s, 1)

    def cpu_ms_per_peer_s(self, peers: int) -> float:
        return round(1000 * self.server_cpu_s / (peers * self.wall_s), 3)

    def rss_per_peer_mb(self, peers: int) -> float:
        return round((self.rss_loaded_bytes - self.rss_idle_bytes) / peers / 2**20, 3)

    def generator_cpu_pct(self) -> float:
        return round(100 * self.generator_cpu_s / self.wall_s, 1)

    def watched_cpu_pct(self) -> float:
        return round(100 * self.watched_cpu_s / self.wall_s, 1)

    def core_busy_pct(self, core: int) -> float:
        return round(100 * self.cores_busy_s.get(core, 0.0) / self.wall_s, 1)

    def steal_pct(self) -> float:
        return round(100 * sum(self.cores_steal_s.values()) / self.wall_s, 1)


async def measure(
    peers: Sequence[Simulated],
    server_pid: int,
    rss_idle_bytes: int,
    period_ms: float,
    warmup_s: float,
    seconds: float,
    watched: Callable[[], float] | None = None,
    cores: Sequence[int] = (),
    groups: int = 1,
) -> Window:
    """Tick every peer each ``period_ms`` for ``warmup_s + seconds``; measure the last part.

    ``watched`` gives the CPU seconds used so far by processes to account for besides the
    server; ``cores`` are the cores whose busy time (every process's) is measured too.
    ``groups`` > 1 staggers the peers: group ``g`` ticks ``g / groups`` of a period after the
    first, as independent callers' clocks would, instead of all peers' frames arriving in
    one burst per period."""
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    tick = 0
    step_ms = period_ms / groups
    cohorts = [peers[g::groups] for g in range(groups)]
    measuring = False
    cpu_start = gen_start = wall_start = watched_start = started_wall_s = 0.0
    busy_start: dict[int, float] = {}
    steal_start: dict[int, float] = {}
    lags_ms: list[float] = []
    while loop.time() < t0 + warmup_s + seconds:
        now = time.monotonic()
        if measuring:
            lags_ms.append((loop.time() - (t0 + tick * step_ms / 1000)) * 1000)
        elif loop.time() >= t0 + warmup_s:
            measuring = True
            for peer in peers:
                peer.reset_stats()
            cpu_start, gen_start, wall_start = cpu_seconds(server_pid), time.process_time(), now
            watched_start = watched() if watched is not None else 0.0
            busy_start = {core: core_busy_seconds(core) for core in cores}
            steal_start = {core: core_steal_seconds(core) for core in cores}
            started_wall_s = time.time()
        for peer in cohorts[tick % groups]:
            if peer.ws.closed.done():
                peer.failed = True
            else:
                peer.tick(now, measuring)
        tick += 1
        delay = t0 + tick * step_ms / 1000 - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
    return Window(
        wall_s=time.monotonic() - wall_start,
        server_cpu_s=cpu_seconds(server_pid) - cpu_start,
        generator_cpu_s=time.process_time() - gen_start,
        rss_idle_bytes=rss_idle_bytes,
        rss_loaded_bytes=rss_bytes(server_pid),
        lags_ms=lags_ms,
        watched_cpu_s=(watched() - watched_start) if watched is not None else 0.0,
        cores_busy_s={core: core_busy_seconds(core) - busy_start[core] for core in busy_start},
        cores_steal_s={core: core_steal_seconds(core) - steal_start[core] for core in steal_start},
        started_wall_s=started_wall_s,
    )
