"""What the capacity bench reads from the bridge besides its CPU: its event-loop lag, the
warnings it logged, and (with py-spy) where its time went."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
import urllib.request
from collections import Counter
from pathlib import Path

# -- the bridge's event-loop lag (its /metrics histogram, sampled every 0.5 s) -------------


async def loop_lag_after(port: int, delay_s: float) -> dict[float, int]:
    """``bridge_event_loop_lag_seconds`` buckets (upper bound -> count) after ``delay_s``."""
    await asyncio.sleep(delay_s)
    text = await asyncio.to_thread(_get, f"http://127.0.0.1:{port}/metrics")
    buckets: dict[float, int] = {}
    for match in re.finditer(r'bridge_event_loop_lag_seconds_bucket\{le="([^"]+)"\} (\S+)', text):
        buckets[float(match[1])] = int(float(match[2]))
    return buckets


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        body: bytes = response.read()
        return body.decode()


def lag_histogram_diff(before: dict[float, int], after: dict[float, int]) -> dict[float, int]:
    """Samples per bucket (not cumulative) taken between the two scrapes."""
    cumulative = {le: after[le] - before.get(le, 0) for le in sorted(after)}
    out: dict[float, int] = {}
    below = 0
    for le, count in cumulative.items():
        out[le] = count - below
        below = count
    return out


def lag_percentile_ms(lag: dict[float, int], pct: float) -> float:
    """The bucket bound under which ``pct`` % of the lag samples fell."""
    total = sum(lag.values())
    seen = 0
    for le in sorted(lag):
        seen += lag[le]
        if total and seen >= pct / 100 * total:
            return le * 1000
    return float("nan")


def report_log(text: str, top: int = 8) -> int:
    """The server's warnings and errors, counted by message (ids and numbers left out);
    returns how many there were."""
    kinds: Counter[str] = Counter()
    for line in text.splitlines():
        if "INSECURE" in line or "insecure-dev" in line:
            continue  # start-up notices of a loopback bench
        if "WARNING" in line or "ERROR" in line or "Traceback" in line:
            kinds[re.sub(r"[0-9a-f]{6,}|\d+(\.\d+)?", "#", line)[:160]] += 1
    for kind, count in kinds.most_common(top):
        print(f"  server log ×{count}: {kind}", file=sys.stderr)
    return sum(kinds.values())


# -- profiling ----------------------------------------------------------------------------


def start_profile(
    pid: int, warmup_s: float, seconds: float, output: Path | None
) -> subprocess.Popen[bytes] | None:
    """py-spy on the server for the measured window (it starts after the warm-up)."""
    if output is None:
        return None
    spy = shutil.which("py-spy") or os.environ.get("PY_SPY", "")
    if not spy:
        raise SystemExit("--profile needs py-spy on PATH (or PY_SPY=/path/to/py-spy)")
    duration = str(int(seconds))
    command = [spy, "record", "--pid", str(pid), "--duration", duration, "--rate", "200"]
    command += ["--nonblocking", "--format", "raw", "--output", str(output)]
    # started now, it waits out the warm-up first
    wrapper = ["sh", "-c", f'sleep {warmup_s} && exec "$@"', "py-spy", *command]
    return subprocess.Popen(wrapper, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def hot_spots(raw: Path, top: int = 25) -> str:
    """The frames py-spy saw most, by their own samples and with what they called."""
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        samples += n
        frames = stack.split(";")
        own[frames[-1]] += n
        for frame in set(frames):
            total[frame] += n
    if not samples:
        return "no samples"
    lines = [f"{samples} samples (busy only); own time:"]
    lines += [f"  {100 * n / samples:5.1f}%  {f}" for f, n in own.most_common(top)]
    lines.append("including callees:")
    lines += [f"  {100 * n / samples:5.1f}%  {f}" for f, n in total.most_common(top * 2)]
    return "\n".join(lines)
