"""Concurrent emulated ESP32 toys at real-time pace against the echo agent.

Each toy behaves like the firmware's protocol: after every RESPONSE.COMPLETE/ERROR it waits
the 1000 ms hold, then streams its microphone (2 s of recorded speech, then silence) as
1024-byte s16le messages every 32 ms until the server sends AUDIO.COMMITTED. The server runs
pinned to core 0 and this generator on core 1, driving every toy from one 32 ms ticker. The
generator does not decode Opus (that is the toy's cost, not the server's); it counts packets.

    python -m bench.toy_load --toys 1,50,100,200 --seconds 30
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bench.harness import measure
from bench.procstat import rss_bytes
from bench.server import BenchServer
from bench.twilio_load import FIXTURE, percentile, write_json
from bench.wsclient import OP_BINARY, OP_TEXT, LeanWebSocket, open_lean
from pipeline.g711 import rms_pcm16
from pipeline.wav import read_wav

MIC_CHUNK_BYTES = 1024
MIC_CHUNK_MS = 32
SPEECH_MS = 2000
HOLD_MS = 1000
VOICED_RMS = 300


def mic_frames() -> tuple[list[bytes], int]:
    """2 s of speech in 1024-byte chunks; and the index after the last voiced chunk."""
    pcm, rate = read_wav(FIXTURE)
    assert rate == 16000
    chunks = [
        pcm[i : i + MIC_CHUNK_BYTES] for i in range(0, len(pcm) - MIC_CHUNK_BYTES, MIC_CHUNK_BYTES)
    ]
    first = next(i for i, c in enumerate(chunks) if rms_pcm16(c) > VOICED_RMS)
    speech = chunks[first : first + SPEECH_MS // MIC_CHUNK_MS]
    last_voiced = max(i for i, c in enumerate(speech) if rms_pcm16(c) > VOICED_RMS)
    return speech, last_voiced + 1


SILENCE = b"\x00" * MIC_CHUNK_BYTES


@dataclass
class ToyStats:
    latencies_s: list[float] = field(default_factory=list)
    replies: int = 0
    packets: int = 0
    errors: int = 0


class SimToy:
    def __init__(
        self, ws: LeanWebSocket, speech: list[bytes], speech_end: int, phase_s: float
    ) -> None:
        self.ws = ws
        self.speech = speech
        self.speech_end = speech_end
        self.listen_at: float | None = None
        self.phase_s = phase_s
        self.position = 0
        self.spoke_at: float | None = None
        self.stats = ToyStats()
        self.failed = False
        ws.on_message = self.on_message

    def reset_stats(self) -> None:
        self.stats = ToyStats()

    def tick(self, now: float, measuring: bool) -> None:
        if self.listen_at is None or now < self.listen_at:
            return
        chunk = self.speech[self.position] if self.position < len(self.speech) else SILENCE
        self.ws.send(OP_BINARY, chunk)
        self.position += 1
        if self.position == self.speech_end:
            self.spoke_at = now

    def on_message(self, opcode: int, payload: bytes) -> None:
        now = time.monotonic()
        if opcode == OP_BINARY:
            self.stats.packets += 1
            if self.spoke_at is not None:
                self.stats.latencies_s.append(now - self.spoke_at)
                self.spoke_at = None
            return
        if opcode != OP_TEXT:
            return
        msg = json.loads(payload).get("msg")
        if msg in ("AUDIO.COMMITTED", "RESPONSE.CREATED"):
            self.listen_at = None  # the mic stops
        elif msg in ("RESPONSE.COMPLETE", "RESPONSE.ERROR"):
            self.stats.replies += msg == "RESPONSE.COMPLETE"
            self.stats.errors += msg == "RESPONSE.ERROR"
            self.position = 0
            self.spoke_at = None
            self.listen_at = now + HOLD_MS / 1000 + self.phase_s
            self.phase_s = 0.0


@dataclass
class ToyRunResult:
    toys: int
    server_cpu_pct: float
    cpu_ms_per_session_s: float
    rss_per_session_mb: float
    p50_ms: float
    p95_ms: float
    replies: int
    opus_packets: int
    errors: int
    failed_toys: int
    generator_cpu_pct: float


async def run_level(n: int, seconds: float, warmup_s: float, server_core: int) -> ToyRunResult:
    server = BenchServer(core=server_core, env={"BRIDGE_AGENT": "echo"})
    speech, speech_end = mic_frames()
    try:
        await asyncio.sleep(0.5)
        rss_idle = rss_bytes(server.pid)
        toys = []
        for i in range(n):
            mac = f"24:0A:C4:{i >> 16 & 255:02X}:{i >> 8 & 255:02X}:{i & 255:02X}"
            ws = await open_lean(
                "127.0.0.1",
                server.port,
                "/ws/esp32",
                {"X-Device-Mac": mac, "Sec-WebSocket-Protocol": "arduino"},
            )
            toys.append(SimToy(ws, speech, speech_end, phase_s=(i * 6.0) / n))
        window = await measure(toys, server.pid, rss_idle, MIC_CHUNK_MS, warmup_s, seconds)
        for toy in toys:
            toy.ws.close()
        latencies = [x * 1000 for t in toys for x in t.stats.latencies_s]
        return ToyRunResult(
            toys=n,
            server_cpu_pct=window.server_cpu_pct(),
            cpu_ms_per_session_s=window.cpu_ms_per_peer_s(n),
            rss_per_session_mb=window.rss_per_peer_mb(n),
            p50_ms=round(percentile(latencies, 50), 1),
            p95_ms=round(percentile(latencies, 95), 1),
            replies=sum(t.stats.replies for t in toys),
            opus_packets=sum(t.stats.packets for t in toys),
            errors=sum(t.stats.errors for t in toys),
            failed_toys=sum(t.failed for t in toys),
            generator_cpu_pct=window.generator_cpu_pct(),
        )
    finally:
        server.stop()


def table(results: list[ToyRunResult]) -> str:
    header = list(asdict(results[0]).keys())
    rows = [
        "| " + " | ".join(h.replace("_", " ") for h in header) + " |",
        "|" + "---:|" * len(header),
    ]
    rows += ["| " + " | ".join(str(v) for v in asdict(r).values()) + " |" for r in results]
    return "\n".join(rows)


async def main_async(args: argparse.Namespace) -> None:
    os.sched_setaffinity(0, {args.generator_core})
    results = []
    for n in [int(x) for x in args.toys.split(",")]:
        result = await run_level(n, args.seconds, args.warmup, args.server_core)
        results.append(result)
        print(json.dumps(asdict(result)), flush=True)
    print()
    print(table(results))
    if args.json:
        write_json(Path(args.json), [asdict(r) for r in results])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--toys", default="1,50,100,200")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--warmup", type=float, default=8.0)
    parser.add_argument("--server-core", type=int, default=0)
    parser.add_argument("--generator-core", type=int, default=1)
    parser.add_argument("--json")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
