"""Concurrent emulated Twilio calls at real-time pace against the echo agent.

Each call repeats a cycle: 2 s of recorded speech, then 3 s of silence (Twilio keeps sending
frames during silence). The server runs as its own process pinned to core 0; this generator
pins itself to core 1 and drives every call from one 20 ms ticker, so its own cost stays far
below the server's. Per N it prints server CPU, CPU-ms per call-second, RSS per call,
latency from the end of the caller's speech to the first reply audio, playback gaps (a reply
chunk arriving after the previous one finished playing) and failed calls.

    python -m bench.twilio_load --calls 1,50,100,200,300 --seconds 20
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bench.harness import measure
from bench.procstat import rss_bytes
from bench.server import BenchServer
from bench.wsclient import LeanWebSocket, open_lean
from pipeline.audio import ULAW_8K, AudioSpec, Converter
from pipeline.g711 import rms_pcm16, ulaw_to_pcm16
from pipeline.wav import read_wav

FRAME_MS = 20
VOICED_RMS = 300
SPEECH_MS = 2000
SILENCE_MS = 3000
FIXTURE = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "hello_16k.wav"
#: a reply chunk arriving this late after the previous one ran out counts as a gap
GAP_TOLERANCE_S = 0.010
#: a reply that has not started this long after the speech ended counts as missed
REPLY_DEADLINE_S = 2.5


def speech_frames() -> tuple[list[str], int]:
    """One cycle as base64 μ-law 20 ms frames: 2 s of speech, then 3 s of silence.

    Also returns the index of the frame after the last voiced one: the end of speech that
    latency is measured from (the 2 s cut may end in a pause between words).
    """
    pcm, rate = read_wav(FIXTURE)
    conv = Converter(AudioSpec("pcm16", rate), ULAW_8K)
    frames = [f for f in _cut(conv.process(pcm) + conv.flush())]
    voiced = [rms_pcm16(ulaw_to_pcm16(f)) > VOICED_RMS for f in frames]
    first = voiced.index(True)
    speech = frames[first : first + SPEECH_MS // FRAME_MS]
    last_voiced = max(i for i, f in enumerate(speech) if rms_pcm16(ulaw_to_pcm16(f)) > VOICED_RMS)
    cycle = speech + [b"\xff" * 160] * (SILENCE_MS // FRAME_MS)
    return [base64.b64encode(f).decode() for f in cycle], last_voiced + 1


def _cut(ulaw: bytes) -> list[bytes]:
    return [ulaw[i : i + 160] for i in range(0, len(ulaw) - 159, 160)]


@dataclass
class CallStats:
    latencies_s: list[float] = field(default_factory=list)
    gaps: int = 0
    gap_ms: float = 0.0
    replies_missed: int = 0


class SimCall:
    """One emulated Twilio stream; sends on ticks, plays replies on a virtual clock."""

    def __init__(
        self, ws: LeanWebSocket, frames: list[str], speech_end_index: int, phase: int, index: int
    ) -> None:
        self.ws = ws
        self.frames = frames
        self.speech_end_index = speech_end_index
        self.position = phase
        self.sid = f"MZbench{index:06d}"
        self.seq = 1
        self.stats = CallStats()
        self.failed = False
        self.speech_end: float | None = None
        self.play_end = 0.0
        self.in_reply = False
        self.echo_due: deque[tuple[float, str]] = deque()
        ws.on_message = self.on_message

    def begin(self, index: int) -> None:
        self.ws.send_text(
            json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"})
        )
        start = {
            "accountSid": "ACbench",
            "streamSid": self.sid,
            "callSid": f"CAbench{index:06d}",
            "tracks": ["inbound"],
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
            "customParameters": {},
        }
        self.ws.send_text(
            json.dumps(
                {"event": "start", "sequenceNumber": "1", "start": start, "streamSid": self.sid}
            )
        )

    def tick(self, now: float, measuring: bool) -> None:
        self.seq += 1
        seq = self.seq
        payload = self.frames[self.position]
        self.ws.send_text(
            f'{{"event":"media","sequenceNumber":"{seq}","media":{{"track":"inbound","chunk":"{seq}",'
            f'"timestamp":"{seq * FRAME_MS}","payload":"{payload}"}},"streamSid":"{self.sid}"}}'
        )
        self.position += 1
        if self.position == self.speech_end_index:
            self.speech_end = now
            self.in_reply = False
        elif self.position == len(self.frames):
            self.position = 0
        if self.speech_end is not None and now - self.speech_end > REPLY_DEADLINE_S:
            if measuring:
                self.stats.replies_missed += 1
            self.speech_end = None
        due = self.echo_due
        while due and due[0][0] <= now:
            name = due.popleft()[1]
            self.ws.send_text(
                f'{{"event":"mark","streamSid":"{self.sid}","mark":{{"name":"{name}"}}}}'
            )

    def on_message(self, opcode: int, payload: bytes) -> None:
        now = time.monotonic()
        if payload.startswith(b'{"event":"media"'):
            start = payload.index(b'"payload":"') + 11
            end = payload.index(b'"', start)
            duration_s = (end - start) * 3 / 4 / 8000
            if self.speech_end is not None:
                self.stats.latencies_s.append(now - self.speech_end)
                self.speech_end = None
                self.in_reply = True
            elif self.in_reply and now > self.play_end + GAP_TOLERANCE_S:
                self.stats.gaps += 1
                self.stats.gap_ms += (now - self.play_end) * 1000
            self.play_end = max(self.play_end, now) + duration_s
        elif payload.startswith(b'{"event":"mark"'):
            name = json.loads(payload)["mark"]["name"]
            self.echo_due.append((max(self.play_end, now), name))

    def reset_stats(self) -> None:
        self.stats = CallStats()


@dataclass
class RunResult:
    calls: int
    server_cpu_pct: float
    cpu_ms_per_call_s: float
    rss_per_call_mb: float
    p50_ms: float
    p95_ms: float
    replies: int
    gaps: int
    failed_calls: int
    generator_cpu_pct: float
    generator_lag_p99_ms: float


def percentile(values: list[float], pct: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


async def run_level(
    n: int, seconds: float, warmup_s: float, server_core: int, env: dict[str, str]
) -> RunResult:
    server = BenchServer(core=server_core, env=env)
    frames, speech_end_index = speech_frames()
    try:
        await asyncio.sleep(0.5)
        rss_idle = rss_bytes(server.pid)
        calls: list[SimCall] = []
        cycle = len(frames)
        for i in range(n):
            ws = await open_lean("127.0.0.1", server.port, "/stream")
            call = SimCall(ws, frames, speech_end_index, phase=(i * cycle) // n, index=i)
            call.begin(i)
            calls.append(call)
        window = await measure(calls, server.pid, rss_idle, FRAME_MS, warmup_s, seconds)
        for call in calls:
            call.ws.close()
        latencies = [x * 1000 for c in calls for x in c.stats.latencies_s]
        failed = sum(1 for c in calls if c.failed or c.stats.replies_missed)
        return RunResult(
            calls=n,
            server_cpu_pct=window.server_cpu_pct(),
            cpu_ms_per_call_s=window.cpu_ms_per_peer_s(n),
            rss_per_call_mb=window.rss_per_peer_mb(n),
            p50_ms=round(percentile(latencies, 50), 1),
            p95_ms=round(percentile(latencies, 95), 1),
            replies=len(latencies),
            gaps=sum(c.stats.gaps for c in calls),
            failed_calls=failed,
            generator_cpu_pct=window.generator_cpu_pct(),
            generator_lag_p99_ms=round(percentile(window.lags_ms, 99), 1),
        )
    finally:
        server.stop()


def table(results: list[RunResult]) -> str:
    header = (
        "calls",
        "server CPU %",
        "CPU-ms per call-s",
        "RSS per call (MB)",
        "p50 ms",
        "p95 ms",
        "replies",
        "gaps",
        "failed",
        "generator CPU %",
        "generator lag p99 ms",
    )
    rows = ["| " + " | ".join(header) + " |", "|" + "---:|" * len(header)]
    for r in results:
        values = asdict(r)
        rows.append("| " + " | ".join(str(v) for v in values.values()) + " |")
    return "\n".join(rows)


def write_json(path: Path, data: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2))


def capacity(results: list[RunResult], slack_ms: float = 150.0) -> int:
    """Largest N whose p95 stays within ``slack_ms`` of the single-call p95, with no failure."""
    base = next((r.p95_ms for r in results if r.calls == 1), None)
    ok = [
        r.calls
        for r in results
        if base is not None and r.failed_calls == 0 and r.p95_ms <= base + slack_ms
    ]
    return max(ok, default=0)


async def main_async(args: argparse.Namespace) -> None:
    os.sched_setaffinity(0, {args.generator_core})
    env = {"BRIDGE_AGENT": "echo", "BRIDGE_WS_IMPL": args.ws}
    results: list[RunResult] = []
    for n in [int(x) for x in args.calls.split(",")]:
        result = await run_level(n, args.seconds, args.warmup, args.server_core, env)
        results.append(result)
        print(json.dumps(asdict(result)), flush=True)
    print()
    print(table(results))
    best = capacity(results)
    print(f"\nlargest N per core with p95 within 150 ms of 1 call and no failed call: {best}")
    if args.json:
        write_json(Path(args.json), [asdict(r) for r in results])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", default="1,50,100,200,300,400")
    parser.add_argument("--seconds", type=float, default=20.0, help="measured window per level")
    parser.add_argument("--warmup", type=float, default=6.0)
    parser.add_argument("--server-core", type=int, default=0)
    parser.add_argument("--generator-core", type=int, default=1)
    parser.add_argument("--ws", default="batched", help="BRIDGE_WS_IMPL for the server")
    parser.add_argument("--json", help="also write the results here")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
