"""Capacity of the cascaded agent: N concurrent phone calls taking turns, on one core.

Each emulated Twilio call (the lean client of ``bench/twilio_load.py``, driven by one 20 ms
ticker; ``--groups`` staggers the calls' clocks as independent callers' are) repeats a 5 s
cycle: a question in speech ("What is the time now?", synthesized offline, 1.1 s, with no
pause of 100 ms inside it), then silence, while media frames keep flowing as Twilio's do.
Every question is answered by the cascade (``BRIDGE_AGENT=openai``) with the stages
``--stt``, ``--deepgram-model`` and ``--tts`` choose, against the providers' fakes
(``bench/fakes.py``) with ``--injected-ms`` before the chat's first token and before the first
audio; ``--agent echo`` runs the same calls against the echo agent, the baseline of what the
stages add. The bridge runs pinned to ``--server-core``; the fakes, this generator and its
ticker share the other core. The recogniser is ``bench/lean_deepgram.py`` (the test fake's
protocol cores behind a cheaper socket layer: the test fake's own server cannot carry more
than about 50 calls' audio on a shared core).

Per N it reports:

* the bridge's CPU, as CPU-ms per call-second (``bench/procstat.py``), and RSS per call;
* *overhead*: per turn committed in the measured window, the call record's latency (commit
  → first reply audio sent) less the providers' waits within it, as
  ``bench/turn_waits.py`` computes them (the fake OpenAI's reported waits, the streaming
  speech fake's injected delay); median and p95, and p95 against the single call's;
* the caller's latency (last voiced frame sent → first reply frame received), replies a
  caller never got (none within 2.5 s), and *gaps*: reply audio that reached the caller more
  than 10 ms after the audio before it had finished playing (``twilio_load``'s check);
* the bridge's event-loop lag (its ``/metrics`` histogram, sampled every 0.5 s) and the
  warnings it logged (a stalled or lost stream shows there);
* what ran beside it: the fakes' CPU, how busy each core was with anything at all (another
  process on the shared machine shows as the server core busier than the server), the
  hypervisor's steal, this generator's CPU and its ticker's p99 lag. A run whose load core is
  saturated is not to be trusted: the fakes answer late, and their lateness would be counted
  as the bridge's.

A level *meets the targets* with no failed call, no missed reply, no gap and an overhead p95
under 20 ms. ``--profile-calls N --profile FILE`` samples the bridge with py-spy (on PATH, or
``PY_SPY``) during the measured window of level N and prints where its time went::

    python -m bench.cascade_capacity --stt deepgram --deepgram-model nova-3 --tts deepgram \\
        --calls 1,50,100
    python -m bench.cascade_capacity --stt deepgram --deepgram-model flux --tts deepgram
    python -m bench.cascade_capacity --stt deepgram --tts elevenlabs
    python -m bench.cascade_capacity --stt openai --tts openai
    python -m bench.cascade_capacity --agent echo
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import statistics
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from bench.fakes import DEEPGRAM_MODELS, STT_CHOICES, TTS_CHOICES, Fakes, Stack, provider_fakes
from bench.harness import Window, measure
from bench.probes import (
    hot_spots,
    lag_histogram_diff,
    lag_percentile_ms,
    loop_lag_after,
    report_log,
    start_profile,
)
from bench.procstat import rss_bytes
from bench.server import BenchServer
from bench.turn_latency import question_ulaw
from bench.turn_waits import ServerTurn, Waits, server_turns
from bench.twilio_load import SimCall, percentile, write_json
from bench.wsclient import open_lean
from pipeline.g711 import rms_pcm16, ulaw_to_pcm16

FRAME_MS = 20
FRAME_BYTES = 160
CYCLE_MS = 5000
#: a question with no pause of 100 ms inside it: Flux's eager end of turn comes at its end
QUESTION = "What is the time now?"
#: what the fake recognisers call a voiced frame (tests/fakes/deepgram/audio.py)
VOICE_RMS = 400
OVERHEAD_TARGET_MS = 20.0


def cycle_frames(text: str) -> tuple[list[str], int]:
    """One cycle as base64 μ-law 20 ms frames (the question, then silence), and the index of
    the frame after the question's last voiced one."""
    ulaw = question_ulaw(text)
    ulaw += b"\xff" * (-len(ulaw) % FRAME_BYTES)
    frames = [ulaw[i : i + FRAME_BYTES] for i in range(0, len(ulaw), FRAME_BYTES)]
    voiced = [i for i, f in enumerate(frames) if rms_pcm16(ulaw_to_pcm16(f)) > VOICE_RMS]
    frames += [b"\xff" * FRAME_BYTES] * (CYCLE_MS // FRAME_MS - len(frames))
    return [base64.b64encode(f).decode() for f in frames], voiced[-1] + 1


@dataclass
class LevelResult:
    calls: int
    server_cpu_pct: float
    cpu_ms_per_call_s: float
    rss_per_call_mb: float
    overhead_turns: int
    overhead_p50_ms: float
    overhead_p95_ms: float
    caller_p50_ms: float
    caller_p95_ms: float
    replies: int
    missed: int
    gaps: int
    gap_ms: float
    failed_calls: int
    fakes_cpu_pct: float
    server_core_busy_pct: float
    load_core_busy_pct: float
    #: both cores' time the hypervisor gave to other machines (a noisy host)
    steal_pct: float
    generator_cpu_pct: float
    generator_lag_p99_ms: float
    #: the bridge's own event-loop lag (bucket bound of its p99; samples over 25 ms)
    loop_lag_p99_ms: float = float("nan")
    loop_lag_over_25ms: int = 0
    #: warnings and errors the bridge logged (a stalled or lost stream, a failed turn)
    server_warnings: int = 0

    def meets_targets(self) -> bool:
        return (
            self.failed_calls == 0
            and self.missed == 0
            and self.gaps == 0
            and self.overhead_turns > 0
            and self.overhead_p95_ms < OVERHEAD_TARGET_MS
        )


@dataclass(frozen=True, slots=True)
class Level:
    calls: int
    seconds: float
    warmup_s: float
    server_core: int
    load_core: int
    profile: Path | None = None
    #: the calls' 20 ms clocks are staggered over this many groups
    groups: int = 1


def in_window(turns: list[ServerTurn], window: Window) -> list[ServerTurn]:
    start_s = window.started_wall_s
    return [t for t in turns if start_s <= t.at_s <= start_s + window.wall_s]


async def run_level(
    level: Level, stack: Stack | None, injected_ms: float, lean_deepgram: bool
) -> LevelResult:
    frames, speech_end_index = cycle_frames(QUESTION)
    records = tempfile.TemporaryDirectory(prefix="bench-records-")
    records_url = f"sqlite:///{records.name}/calls.db"
    async with agent_fakes(stack, injected_ms, lean_deepgram) as fakes:
        agent_env = fakes.env if fakes is not None else {"BRIDGE_AGENT": "echo"}
        env = {**agent_env, "BRIDGE_RECORDS_URL": records_url}
        server = await asyncio.to_thread(BenchServer, level.server_core, env)
        try:
            await asyncio.sleep(0.5)
            rss_idle = rss_bytes(server.pid)
            calls: list[SimCall] = []
            for i in range(level.calls):
                ws = await open_lean("127.0.0.1", server.port, "/stream")
                phase = (i * len(frames)) // level.calls
                call = SimCall(ws, frames, speech_end_index, phase=phase, index=i)
                call.begin(i)
                calls.append(call)
            profiler = start_profile(server.pid, level.warmup_s, level.seconds, level.profile)
            lag_before = asyncio.create_task(loop_lag_after(server.port, level.warmup_s))
            window = await measure(
                calls,
                server.pid,
                rss_idle,
                FRAME_MS,
                level.warmup_s,
                level.seconds,
                watched=fakes.cpu_seconds if fakes is not None else None,
                cores=(level.server_core, level.load_core),
                groups=level.groups,
            )
            lag = lag_histogram_diff(await lag_before, await loop_lag_after(server.port, 0))
            for call in calls:
                call.ws.close()
            await asyncio.sleep(0.5)
        finally:
            server_log = server.log_text()
            await asyncio.to_thread(server.stop)  # SIGTERM: the drain flushes the records
    warnings = report_log(server_log)
    if profiler is not None:
        await asyncio.to_thread(profiler.wait)
    turns = in_window(server_turns(records_url), window)
    records.cleanup()
    result = summarize(level, fakes, window, calls, turns, injected_ms)
    result.loop_lag_p99_ms = lag_percentile_ms(lag, 99)
    result.loop_lag_over_25ms = sum(n for le, n in lag.items() if le > 0.025)
    result.server_warnings = warnings
    return result


def summarize(
    level: Level,
    fakes: Fakes | None,
    window: Window,
    calls: list[SimCall],
    turns: list[ServerTurn],
    injected_ms: float,
) -> LevelResult:
    if fakes is not None:
        waits = Waits(fakes.served, fakes.stack, injected_ms)
        overheads = [o for o in map(waits.overhead_ms, turns) if o is not None]
    else:  # the echo agent waits on nothing: commit to first audio is all the bridge's
        overheads = [t.latency_ms for t in turns]
    latencies = [x * 1000 for c in calls for x in c.stats.latencies_s]
    n = level.calls
    return LevelResult(
        calls=n,
        server_cpu_pct=window.server_cpu_pct(),
        cpu_ms_per_call_s=window.cpu_ms_per_peer_s(n),
        rss_per_call_mb=window.rss_per_peer_mb(n),
        overhead_turns=len(overheads),
        overhead_p50_ms=round(statistics.median(overheads), 1) if overheads else float("nan"),
        overhead_p95_ms=round(percentile(overheads, 95), 1),
        caller_p50_ms=round(percentile(latencies, 50), 1),
        caller_p95_ms=round(percentile(latencies, 95), 1),
        replies=len(latencies),
        missed=sum(c.stats.replies_missed for c in calls),
        gaps=sum(c.stats.gaps for c in calls),
        gap_ms=round(sum(c.stats.gap_ms for c in calls), 1),
        failed_calls=sum(1 for c in calls if c.failed),
        fakes_cpu_pct=window.watched_cpu_pct(),
        server_core_busy_pct=window.core_busy_pct(level.server_core),
        load_core_busy_pct=window.core_busy_pct(level.load_core),
        steal_pct=window.steal_pct(),
        generator_cpu_pct=window.generator_cpu_pct(),
        generator_lag_p99_ms=round(percentile(window.lags_ms, 99), 1),
    )


@asynccontextmanager
async def agent_fakes(
    stack: Stack | None, injected_ms: float, lean_deepgram: bool
) -> AsyncIterator[Fakes | None]:
    """The cascade's fakes; none for the echo agent."""
    if stack is None:
        yield None
        return
    async with provider_fakes(stack, injected_ms, lean_deepgram) as fakes:
        yield fakes


# -- the command line ---------------------------------------------------------------------


def table(results: list[LevelResult]) -> str:
    header = list(asdict(results[0]).keys()) if results else []
    rows = ["| " + " | ".join(header) + " |", "|" + "---:|" * len(header)]
    rows += ["| " + " | ".join(str(v) for v in asdict(r).values()) + " |" for r in results]
    return "\n".join(rows)


async def main_async(args: argparse.Namespace) -> None:
    os.sched_setaffinity(0, {args.load_core})
    stack = Stack(args.stt, args.deepgram_model, args.tts) if args.agent == "openai" else None
    name = stack.name if stack is not None else "echo"
    results: list[LevelResult] = []
    for n in [int(x) for x in args.calls.split(",")]:
        profile = args.profile if n == args.profile_calls else None
        level = Level(
            n, args.seconds, args.warmup, args.server_core, args.load_core, profile, args.groups
        )
        result = await run_level(level, stack, args.injected_ms, args.fake_deepgram == "lean")
        results.append(result)
        print(json.dumps({"stack": name, **asdict(result)}), flush=True)
        if profile is not None:
            print(hot_spots(profile), flush=True)
    print()
    print(table(results))
    base = next((r for r in results if r.calls == 1), None)
    for r in results:
        if base is not None and r is not base:
            ratio = r.overhead_p95_ms / base.overhead_p95_ms if base.overhead_p95_ms else 0
            print(f"{r.calls} calls: overhead p95 {ratio:.2f}× one call's")
    best = max((r.calls for r in results if r.meets_targets()), default=0)
    print(
        f"\n{name}: largest N meeting the targets (no failure, no missed reply, no gap, "
        f"overhead p95 < {OVERHEAD_TARGET_MS:g} ms): {best}"
    )
    if args.json:
        write_json(Path(args.json), {"stack": name, "levels": [asdict(r) for r in results]})


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--agent",
        default="openai",
        choices=("openai", "echo"),
        help="the cascade, or the echo agent as the baseline of what the stages add",
    )
    parser.add_argument("--stt", default="deepgram", choices=STT_CHOICES)
    parser.add_argument("--deepgram-model", default="nova-3", choices=DEEPGRAM_MODELS)
    parser.add_argument("--tts", default="deepgram", choices=TTS_CHOICES)
    parser.add_argument("--calls", default="1,50,100,200")
    parser.add_argument("--seconds", type=float, default=30.0, help="measured window per level")
    parser.add_argument("--warmup", type=float, default=10.0)
    parser.add_argument("--injected-ms", type=float, default=100.0)
    parser.add_argument(
        "--fake-deepgram",
        default="lean",
        choices=("lean", "tests"),
        help="bench/lean_deepgram.py, or tests/fakes/deepgram_server.py (about 50 calls at most)",
    )
    parser.add_argument("--server-core", type=int, default=0)
    parser.add_argument("--load-core", type=int, default=1, help="fakes and this generator")
    parser.add_argument(
        "--groups",
        type=int,
        default=4,
        help="stagger the calls' 20 ms clocks over this many groups (1: all in one burst)",
    )
    parser.add_argument("--profile", type=Path, help="py-spy raw output (with --profile-calls)")
    parser.add_argument("--profile-calls", type=int, default=0, help="the level to profile")
    parser.add_argument("--json", help="also write the results here")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
