"""CPU time and resident memory of a process, read from /proc (Linux)."""

from __future__ import annotations

import os

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def core_busy_seconds(core: int) -> float:
    """Time core ``core`` has spent on anything but idling, by every process (Linux),
    including time the hypervisor took it for another machine (steal)."""
    ticks = _core_ticks(core)
    idle = ticks[3] + ticks[4]  # idle, iowait
    return (sum(ticks[:8]) - idle) / CLOCK_TICKS


def core_steal_seconds(core: int) -> float:
    """Time the hypervisor ran something else on core ``core`` while this machine wanted it."""
    return _core_ticks(core)[7] / CLOCK_TICKS


def _core_ticks(core: int) -> list[int]:
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith(f"cpu{core} "):
                return [int(v) for v in line.split()[1:]]
    raise ValueError(f"no core {core} in /proc/stat")
