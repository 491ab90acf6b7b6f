"""What the per-session load benches share (toys, talk pages, xiaozhi devices).

Each bench emulates one kind of client and hands this module a way to open one: the server is
started pinned to one core, N clients are opened and driven by the harness's ticker from the
other core, and a row per level gives the server's CPU, **CPU-ms per session-second**, the
**sessions per core** that follow from it (a core's 1000 CPU-ms per second over that cost: a
ceiling, the latency columns say where it stops being usable), memory, the latency from the
end of the client's speech to the first reply audio, playback gaps and failures. ``--runs R``
repeats the sweep R times, levels interleaved, and prints the median of every column.

A client plays replies on a virtual clock: each reply packet plays after the previous one, so
a packet that arrives more than 10 ms after the previous one ran out is a *gap*, and a reply
that has not begun 2.5 s after the end of the speech is *missed* (the session then counts as
failed, as does one whose socket closed).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from bench.harness import measure
from bench.probes import report_log
from bench.procstat import rss_bytes
from bench.server import BenchServer
from bench.twilio_load import FIXTURE, percentile, write_json
from bench.wsclient import LeanWebSocket
from pipeline.g711 import rms_pcm16
from pipeline.wav import read_wav

#: a 16 kHz PCM16 chunk louder than this is speech
VOICED_RMS = 300
SPEECH_MS = 2000
#: a reply packet arriving this late after the previous one ran out is a gap
GAP_TOLERANCE_S = 0.010
#: a reply that has not begun this long after the speech ended is missed
REPLY_DEADLINE_S = 2.5


def speech_chunks(chunk_bytes: int, speech_ms: int = SPEECH_MS) -> tuple[list[bytes], int]:
    """``speech_ms`` of the recorded fixture (PCM16, 16 kHz) from its first voiced chunk, in
    ``chunk_bytes`` pieces; and the index after the last voiced piece (the end of speech
    latency is measured from: the cut may end in a pause between words)."""
    pcm, rate = read_wav(FIXTURE)
    assert rate == 16000
    chunks = [pcm[i : i + chunk_bytes] for i in range(0, len(pcm) - chunk_bytes, chunk_bytes)]
    first = next(i for i, c in enumerate(chunks) if rms_pcm16(c) > VOICED_RMS)
    speech = chunks[first : first + speech_ms * 32 // chunk_bytes]
    last_voiced = max(i for i, c in enumerate(speech) if rms_pcm16(c) > VOICED_RMS)
    return speech, last_voiced + 1


@dataclass
class SessionStats:
    latencies_s: list[float] = field(default_factory=list)
    replies: int = 0
    errors: int = 0
    gaps: int = 0
    missed: int = 0
    packets: int = 0
    #: reply audio received, in seconds
    reply_s: float = 0.0


class SimSession:
    """A client's part every bench shares: the end of its speech, its replies' timing.

    Subclasses send on :meth:`tick` (calling :meth:`spoke` when the last voiced chunk went
    out) and read in :meth:`on_message` (calling :meth:`reply_audio` per reply packet and
    :meth:`reply_over` when the reply is done); the ticker calls :meth:`tick` of this class
    through theirs for the deadline. Their ``__init__`` calls this one's last: installing the
    handler delivers the frames that came with the handshake at once."""

    def __init__(self, ws: LeanWebSocket) -> None:
        self.ws = ws
        self.failed = False
        self.stats = SessionStats()
        self.spoke_at: float | None = None
        #: when what has been received so far ends playing (virtual clock)
        self.play_end = 0.0
        self.in_reply = False
        ws.on_message = self.on_message

    def reset_stats(self) -> None:
        self.stats = SessionStats()

    def on_message(self, opcode: int, payload: bytes) -> None:
        raise NotImplementedError

    def tick(self, now: float, measuring: bool) -> None:
        if self.spoke_at is not None and now - self.spoke_at > REPLY_DEADLINE_S:
            self.stats.missed += measuring
            self.spoke_at = None

    def spoke(self, now: float) -> None:
        self.spoke_at = now
        self.in_reply = False

    def reply_audio(self, now: float, duration_s: float) -> None:
        """A reply packet arrived: the latency of its reply's first, or a gap."""
        self.stats.packets += 1
        self.stats.reply_s += duration_s
        if self.spoke_at is not None:
            self.stats.latencies_s.append(now - self.spoke_at)
            self.spoke_at = None
            self.in_reply = True
        elif self.in_reply and now > self.play_end + GAP_TOLERANCE_S:
            self.stats.gaps += 1
        self.play_end = max(self.play_end, now) + duration_s

    def reply_over(self, ok: bool = True) -> None:
        self.in_reply = False
        self.stats.replies += ok
        self.stats.errors += not ok

    def unplayed_s(self, now: float) -> float:
        """Audio received but not yet played, in seconds."""
        return max(0.0, self.play_end - now)


#: opens client ``index`` of ``n`` against the server's port
Opener = Callable[[int, int, int], Awaitable[SimSession]]


@dataclass(frozen=True, slots=True)
class SessionBench:
    #: what one client is, for the table ("toys", "pages", "devices")
    noun: str
    period_ms: float
    open_client: Opener
    env: dict[str, str] = field(default_factory=lambda: {"BRIDGE_AGENT": "echo"})


@dataclass
class LevelResult:
    sessions: int
    server_cpu_pct: float
    cpu_ms_per_session_s: float
    sessions_per_core: int
    rss_per_session_mb: float
    p50_ms: float
    p95_ms: float
    replies: int
    #: share of the sessions' time that reply audio arrived for (how busy the downlink was)
    reply_audio_pct: float
    gaps: int
    errors: int
    failed: int
    generator_cpu_pct: float
    generator_lag_p99_ms: float
    steal_pct: float
    #: warnings and errors the server logged (each kind printed to stderr)
    server_warnings: int


HEADERS = {
    "server_cpu_pct": "server CPU %",
    "cpu_ms_per_session_s": "CPU-ms per session-s",
    "sessions_per_core": "sessions per core",
    "rss_per_session_mb": "RSS per session (MB)",
    "reply_audio_pct": "reply audio %",
    "generator_cpu_pct": "generator CPU %",
    "generator_lag_p99_ms": "generator lag p99 ms",
    "steal_pct": "steal %",
}


async def run_level(
    bench: SessionBench,
    n: int,
    seconds: float,
    warmup_s: float,
    server_core: int,
    groups: int = 1,
) -> LevelResult:
    server = BenchServer(core=server_core, env=bench.env)
    try:
        await asyncio.sleep(0.5)
        rss_idle = rss_bytes(server.pid)
        clients = [await bench.open_client(i, n, server.port) for i in range(n)]
        window = await measure(
            clients,
            server.pid,
            rss_idle,
            bench.period_ms,
            warmup_s,
            seconds,
            cores=(server_core,),
            groups=groups,
        )
        for client in clients:
            client.ws.close()
        stats = [c.stats for c in clients]
        latencies = [x * 1000 for s in stats for x in s.latencies_s]
        cpu_ms = window.cpu_ms_per_peer_s(n)
        return LevelResult(
            sessions=n,
            server_cpu_pct=window.server_cpu_pct(),
            cpu_ms_per_session_s=cpu_ms,
            sessions_per_core=int(1000 / cpu_ms) if cpu_ms > 0 else 0,
            rss_per_session_mb=window.rss_per_peer_mb(n),
            p50_ms=round(percentile(latencies, 50), 1),
            p95_ms=round(percentile(latencies, 95), 1),
            replies=sum(s.replies for s in stats),
            reply_audio_pct=round(100 * sum(s.reply_s for s in stats) / (n * window.wall_s), 1),
            gaps=sum(s.gaps for s in stats),
            errors=sum(s.errors for s in stats),
            failed=sum(1 for c in clients if c.failed or c.stats.missed),
            generator_cpu_pct=window.generator_cpu_pct(),
            generator_lag_p99_ms=round(percentile(window.lags_ms, 99), 1),
            steal_pct=window.steal_pct(),
            server_warnings=report_log(server.log_text()),
        )
    finally:
        server.stop()


def median(rows: Sequence[LevelResult]) -> LevelResult:
    """Every column's median over runs of one level."""
    values: dict[str, float] = {}
    for f in fields(LevelResult):
        value = statistics.median(getattr(r, f.name) for r in rows)
        values[f.name] = round(value, 3) if isinstance(value, float) else value
    return LevelResult(**values)  # type: ignore[arg-type]


def table(results: Sequence[LevelResult], noun: str) -> str:
    names = [f.name for f in fields(LevelResult)]
    header = [noun if n == "sessions" else HEADERS.get(n, n.replace("_", " ")) for n in names]
    rows = ["| " + " | ".join(header) + " |", "|" + "---:|" * len(header)]
    rows += ["| " + " | ".join(_cell(v) for v in asdict(r).values()) + " |" for r in results]
    return "\n".join(rows)


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


async def sweep(bench: SessionBench, args: argparse.Namespace) -> list[LevelResult]:
    """Every level, ``args.runs`` times interleaved; prints each run, returns the medians."""
    os.sched_setaffinity(0, {args.generator_core})
    levels = [int(x) for x in args.sessions.split(",")]
    runs: dict[int, list[LevelResult]] = {n: [] for n in levels}
    for run in range(args.runs):
        for n in levels:
            started = time.monotonic()
            result = await run_level(
                bench, n, args.seconds, args.warmup, args.server_core, args.groups
            )
            runs[n].append(result)
            row = {"run": run + 1, **asdict(result), "wall_s": round(time.monotonic() - started)}
            print(json.dumps(row), flush=True)
    medians = [median(runs[n]) for n in levels]
    print()
    if args.runs > 1:
        print(f"median of {args.runs} runs:")
    print(table(medians, bench.noun))
    if args.json:
        everything = {
            "runs": {str(n): [asdict(r) for r in rows] for n, rows in runs.items()},
            "medians": [asdict(r) for r in medians],
        }
        write_json(Path(args.json), everything)
    return medians


def parser(doc: str | None, levels: str, *aliases: str) -> argparse.ArgumentParser:
    """The benches' common options; ``aliases`` are other names of ``--sessions``."""
    p = argparse.ArgumentParser(
        description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--sessions", *aliases, dest="sessions", default=levels, help="levels of N")
    p.add_argument("--seconds", type=float, default=30.0, help="measured window per level")
    p.add_argument("--warmup", type=float, default=8.0)
    p.add_argument("--runs", type=int, default=1, help="sweeps, interleaved; medians printed")
    p.add_argument("--groups", type=int, default=1, help="stagger the clients' ticks")
    p.add_argument("--server-core", type=int, default=0)
    p.add_argument("--generator-core", type=int, default=1)
    p.add_argument("--json", help="also write every run and the medians here")
    return p


def main(bench: SessionBench, doc: str | None, levels: str, *aliases: str) -> None:
    asyncio.run(sweep(bench, parser(doc, levels, *aliases).parse_args()))
