"""Turn latency per agent: end of the caller's speech to the first reply audio at the caller.

Each emulated Twilio call (transports/twilio/emulator/, real time, real sockets) waits for
the greeting, then asks a question recorded in speech several times. The clock starts when
the last voiced frame of the question leaves the caller and stops when the first reply frame
arrives, so the figure includes the endpointer's silence window (``BRIDGE_VAD_SILENCE_MS``,
500 ms by default), recognition, the agent, synthesis and the network hops: what a caller
waits. ``--calls`` runs that many callers at once.

The OpenAI agents run against the loopback fakes the tests use (tests/fakes/openai_server.py,
tests/fakes/realtime_server.py) with a fixed injected provider delay per request. The bridge's own
overhead is the server-side latency of each turn (from committing the caller's turn to sending
the first reply audio, as the call records hold it) less the time within it that the bridge
waited on the provider, which the fake OpenAI (in its own process) reports per request. A
transcription started early, in the caller's pause, waits partly or wholly before the commit;
only what is left of it after the commit is provider time on the caller's clock. "Less
injected" subtracts the three injected delays, as if nothing had started early:

    python -m bench.turn_latency --agent local --calls 1 --turns 10
    python -m bench.turn_latency --agent local --calls 4 --turns 5
    python -m bench.turn_latency --agent openai --turns 20 --injected-ms 100
    python -m bench.turn_latency --agent openai --turns 20 --early-transcription-ms 0
    python -m bench.turn_latency --agent openai-realtime --turns 20 --injected-ms 100
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import statistics
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path

import numpy as np

from bench.server import BenchServer
from bench.twilio_load import percentile
from bridge.call_records.store import open_store
from bridge.call_records.url import parse_records_url
from bridge.settings import Settings
from pipeline.audio import ULAW_8K, AudioSpec, Converter
from transports.twilio.emulator.client import ULAW_SILENCE, FakeTwilio

ROOT = Path(__file__).resolve().parent.parent
FRAME_MS = 20
LEAD_MS = 300
REPLY_TIMEOUT_S = 20.0
GREETING_WAIT_S = 5.0
#: samples quieter than this at the end of the synthesized question are trailing silence
VOICED_AMPLITUDE = 500
FAKE_KEY = "sk-bench"
AGENTS = ("local", "echo", "openai", "openai-realtime")


def silence_window_ms(agent: str) -> int:
    """The turn-ending silence ``agent`` waits for at default settings: the bridge's endpointer,
    or the Realtime server's VAD."""
    defaults = Settings()
    if agent == "openai-realtime":
        return defaults.openai_realtime_silence_ms
    return defaults.vad_silence_ms


def question_ulaw(text: str) -> bytes:
    """The question in the offline voice, as Twilio would carry it (μ-law 8 kHz)."""
    from pipeline.agents.local.voice import PiperSpeaker

    speaker = PiperSpeaker.shared(deterministic=True)
    samples = np.frombuffer(speaker.synthesize(text), np.int16)
    voiced = np.flatnonzero(np.abs(samples) > VOICED_AMPLITUDE)
    samples = samples[: voiced[-1] + 1]  # the clock starts at the last voiced sample
    converter = Converter(AudioSpec("pcm16", speaker.rate_hz), ULAW_8K)
    return converter.process(samples.tobytes()) + converter.flush()


@dataclass(slots=True)
class Turn:
    latency_ms: float
    reply_ms: float


async def keep_line_alive(peer: FakeTwilio, stop: asyncio.Event) -> None:
    """Twilio sends silence frames all the time; so do we, except while speaking."""
    frame = ULAW_SILENCE * (FRAME_MS * 8)
    t0 = time.monotonic()
    index = 0
    while not stop.is_set() and not peer.is_closed:
        index += 1
        await asyncio.sleep(max(0.0, t0 + index * FRAME_MS / 1000 - time.monotonic()))
        await peer.send_media(frame)


async def one_call(url: str, question: bytes, turns: int) -> list[Turn]:
    peer = FakeTwilio(url)
    await peer.connect()
    await peer.begin()
    results: list[Turn] = []
    try:
        stop = asyncio.Event()
        idle = asyncio.create_task(keep_line_alive(peer, stop))
        with contextlib.suppress(TimeoutError):  # the greeting, if the agent has one
            await peer.wait_for_media(1, GREETING_WAIT_S)
            await peer.wait_quiet(quiet_s=1.0, timeout_s=REPLY_TIMEOUT_S)
        stop.set()
        await idle
        for _ in range(turns):
            await peer.silence(LEAD_MS)
            await peer.stream(question)
            voice_ended = time.monotonic()
            heard_before = len(peer.played)
            media_before = len(peer.timeline.media_times)
            stop = asyncio.Event()
            idle = asyncio.create_task(keep_line_alive(peer, stop))
            await peer.wait_for_media(media_before + 1, REPLY_TIMEOUT_S)
            first = peer.timeline.media_times[media_before]
            await peer.wait_quiet(quiet_s=1.0, timeout_s=REPLY_TIMEOUT_S)
            stop.set()
            await idle
            reply_ms = ULAW_8K.duration_ms(len(peer.played) - heard_before)
            results.append(Turn((first - voice_ended) * 1000, reply_ms))
    finally:
        await peer.close()
    return results


@dataclass(frozen=True, slots=True)
class ProviderRequest:
    """One request as the fake provider saw it (wall-clock seconds, as in the call records)."""

    endpoint: str
    client_request_id: str
    #: the fake's handler began: its HTTP parsing before that counts as the bridge's
    started_s: float
    #: when the bridge had what it needed to go on. Transcription: the whole (small) JSON
    #: body. Chat and speech: the first byte; the rest of the stream arrives while the bridge
    #: works, and what the bridge spends on it counts as its overhead (a conservative split).
    ready_s: float


def serve_fake_openai(conn: Connection, delay_s: float) -> None:
    """The fake OpenAI API, in its own process so it shares no interpreter lock with the
    callers: its work must not be mistaken for the bridge's."""
    from bridge.ops.heap import settle
    from tests.fakes.openai_server import ChatScript, FakeOpenAI

    fake = FakeOpenAI(api_key=FAKE_KEY).start()
    settle()  # as the bridge does: a full collection of the fake's heap would stall it
    # a first sentence of realistic length: a 60 ms "Hi!" would sit in the resampler and
    # the 40 ms chunker until the next sentence arrived, which real speech never does
    fake.default_reply = ChatScript("Sure, here is the answer you asked for. Have a nice day.")
    # one request per stage before the first audio: transcription, chat, speech
    fake.first_byte_delay_s = dict.fromkeys(("transcriptions", "chat", "speech"), delay_s)
    conn.send(fake.base_url)
    conn.recv()  # stop
    fake.stop()
    to_wall_s = time.time() - time.monotonic()
    served = []
    for r in fake.requests:
        ready = r.finished_at if r.endpoint == "transcriptions" else r.first_byte_at
        request_id = r.headers.get("x-client-request-id", "")
        started_s = r.started_at + to_wall_s
        served.append(
            ProviderRequest(r.endpoint, request_id, started_s, (ready or r.started_at) + to_wall_s)
        )
    conn.send(served)


@asynccontextmanager
async def fake_openai(delay_s: float) -> AsyncIterator[tuple[str, list[ProviderRequest]]]:
    """The fake's base URL; once the block ends, the list holds every request it served."""
    ctx = multiprocessing.get_context("spawn")
    here, there = ctx.Pipe()
    child = ctx.Process(target=serve_fake_openai, args=(there, delay_s), daemon=True)
    child.start()
    served: list[ProviderRequest] = []
    try:
        base_url = await asyncio.to_thread(here.recv)
        yield base_url, served
    finally:
        here.send("stop")
        served += await asyncio.to_thread(here.recv)
        child.join(10)


@asynccontextmanager
async def provider(
    agent: str, injected_ms: float
) -> AsyncIterator[tuple[dict[str, str], float, list[ProviderRequest]]]:
    """The fake provider an agent talks to, its settings, the delay injected per turn, and
    (for ``openai``, filled in once the block ends) the requests it served."""
    delay_s = injected_ms / 1000
    if agent == "openai":
        async with fake_openai(delay_s) as (base_url, served):
            env = {"BRIDGE_OPENAI_BASE_URL": base_url, "OPENAI_API_KEY": FAKE_KEY}
            yield env, 3 * delay_s, served
    elif agent == "openai-realtime":
        from tests.fakes.realtime_server import FakeRealtime, Reply

        realtime = FakeRealtime(api_key=FAKE_KEY, default_reply=Reply(audio_ms=1500), pace=1.0)
        realtime.response_delay_s = delay_s
        async with realtime:
            env = {"BRIDGE_OPENAI_REALTIME_URL": realtime.url, "OPENAI_API_KEY": FAKE_KEY}
            yield env, delay_s, []
    else:
        yield {}, 0.0, []


@dataclass(frozen=True, slots=True)
class ServerTurn:
    call_id: str
    turn_id: int
    #: wall-clock time the caller's turn was committed
    at_s: float
    #: from committing the caller's turn to sending the first reply audio
    latency_ms: float


def server_turns(records_url: str) -> list[ServerTurn]:
    """Every answered user turn's server-side latency, from the call records."""
    target = parse_records_url(records_url)
    assert target is not None
    store = open_store(target, create=False)
    try:
        found: list[ServerTurn] = []
        for summary in store.recent_calls(10_000):
            call = store.call(summary.call.call_id)
            for t in call[1] if call else []:
                if t.user_speech_ms is not None and t.latency_ms is not None:
                    found.append(ServerTurn(t.call_id, t.turn_id, t.at_s, t.latency_ms))
        return found
    finally:
        store.close()


def provider_wait_ms(turn: ServerTurn, served: list[ProviderRequest]) -> float | None:
    """How long, between the commit and the first reply audio, the bridge was waiting on the
    provider: the union of its requests' waits, cut to that span (None: the turn's requests
    are unknown). Requests are the call's by their ids; an early transcription may have begun
    before the commit, and is counted only from it."""
    prefix = f"{turn.call_id}-{turn.turn_id}-"
    if not {f"{prefix}chat", f"{prefix}tts0"} <= {r.client_request_id for r in served}:
        return None
    start_s, end_s = turn.at_s, turn.at_s + turn.latency_ms / 1000
    spans = sorted(
        (max(r.started_s, start_s), min(r.ready_s, end_s))
        for r in served
        if r.client_request_id.startswith(f"{turn.call_id}-")
    )
    waited_s = 0.0
    reach_s = start_s
    for begin_s, until_s in spans:
        begin_s = max(begin_s, reach_s)
        if until_s > begin_s:
            waited_s += until_s - begin_s
            reach_s = until_s
    return waited_s * 1000


def transcribed_early(turn: ServerTurn, served: list[ProviderRequest]) -> bool:
    """Whether ``turn``'s transcript was ready before the turn was committed."""
    stt = f"{turn.call_id}-{turn.turn_id}-stt"
    return any(r.client_request_id == stt and r.ready_s <= turn.at_s for r in served)


async def run(args: argparse.Namespace) -> dict[str, object]:
    cores = {int(c) for c in args.server_cores.split(",")}
    question = question_ulaw(args.question)
    records = tempfile.TemporaryDirectory(prefix="bench-records-")
    records_url = f"sqlite:///{records.name}/calls.db"
    async with provider(args.agent, args.injected_ms) as (provider_env, injected_s, served):
        env = {
            "BRIDGE_AGENT": args.agent,
            "BRIDGE_RECORDS_URL": records_url,
            **provider_env,
        }
        if args.early_transcription_ms is not None:
            env["BRIDGE_EARLY_TRANSCRIPTION_MS"] = str(args.early_transcription_ms)
        server = await asyncio.to_thread(BenchServer, cores, env)
        try:
            url = f"ws://127.0.0.1:{server.port}/stream"
            per_call = await asyncio.gather(
                *(one_call(url, question, args.turns) for _ in range(args.calls))
            )
        finally:
            server.stop()  # SIGTERM: the drain flushes the call records
    latencies = [t.latency_ms for call in per_call for t in call]
    silence_ms = silence_window_ms(args.agent)
    # speech-to-speech agents detect turns themselves: the bridge has no commit time for them
    turns = server_turns(records_url)
    records.cleanup()
    # The bridge's own overhead: from committing the caller's turn to sending the first reply
    # audio (the records' per-turn latency), less the time it waited on the provider. The
    # fake reports that wait per request; "less injected" only subtracts the fixed delays
    # after the commit (a third of them was spent before it when transcription began early),
    # so it also holds the fake's own request handling.
    early = [transcribed_early(t, served) for t in turns]
    less_injected = [
        t.latency_ms - injected_s * 1000 * (2 / 3 if was_early else 1)
        for t, was_early in zip(turns, early, strict=True)
    ]
    if args.agent == "openai":
        waits = [provider_wait_ms(t, served) for t in turns]
        overheads = [t.latency_ms - w for t, w in zip(turns, waits, strict=True) if w is not None]
    else:
        overheads = less_injected if injected_s == 0 else []
    return {
        "agent": args.agent,
        "calls": args.calls,
        "turns": len(latencies),
        "server_cores": sorted(cores),
        "question": args.question,
        "median_ms": round(statistics.median(latencies), 1),
        "p95_ms": round(percentile(latencies, 95), 1),
        "max_ms": round(max(latencies), 1),
        "reply_ms_median": round(statistics.median(t.reply_ms for c in per_call for t in c)),
        "silence_window_ms": silence_ms,
        "injected_ms_per_turn": round(injected_s * 1000),
        "transcribed_early_turns": sum(early),
        **summary("server_latency", [t.latency_ms for t in turns]),
        **summary("less_injected", less_injected),
        **summary("bridge_overhead", overheads),
    }


def summary(name: str, values_ms: list[float]) -> dict[str, object]:
    """``name``'s count, median and p95, or Nones when there is nothing to measure."""
    if not values_ms:
        return {f"{name}_turns": 0, f"{name}_median_ms": None, f"{name}_p95_ms": None}
    return {
        f"{name}_turns": len(values_ms),
        f"{name}_median_ms": round(statistics.median(values_ms), 1),
        f"{name}_p95_ms": round(percentile(values_ms, 95), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agent", default="local", choices=AGENTS)
    parser.add_argument(
        "--injected-ms", type=float, default=100.0, help="fake provider delay per request"
    )
    parser.add_argument(
        "--early-transcription-ms",
        type=int,
        help="BRIDGE_EARLY_TRANSCRIPTION_MS for the server (0: off; default: the setting's)",
    )
    parser.add_argument("--calls", type=int, default=1, help="callers at once")
    parser.add_argument("--turns", type=int, default=10, help="questions per caller")
    parser.add_argument("--question", default="What time is it?")
    parser.add_argument("--server-cores", default="0", help="CPU cores for the server")
    parser.add_argument("--json", type=Path, help="also write the result here")
    args = parser.parse_args()
    os.sched_setaffinity(0, {1})
    result = asyncio.run(run(args))
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
