"""Turn latency per agent: end of the caller's speech to the first reply audio at the caller.

Each emulated Twilio call (transports/twilio/emulator/, real time, real sockets) waits for
the greeting, then asks a question recorded in speech several times. The clock starts when
the last voiced frame of the question leaves the caller and stops when the first reply frame
arrives, so the figure includes the turn-ending silence (the endpointer's
``BRIDGE_VAD_SILENCE_MS``, 500 ms by default; with a streaming recogniser, its own),
recognition, the agent, synthesis and the network hops: what a caller waits. ``--calls`` runs
that many callers at once.

The OpenAI agents run against the loopback fakes the tests use, each in a process of its own
(``bench/fakes.py``), with a fixed delay injected before each provider's first answer. The
cascade (``--agent openai``) takes its stages from ``--stt``, ``--deepgram-model`` and
``--tts``; the chat is always the fake OpenAI. With Flux, the fake sends ``EagerEndOfTurn``
100 ms and ``EndOfTurn`` 200 ms of audio after the last voiced frame, so the chat, started
on the eager event, has waited out its delay by the time the turn is committed.

The bridge's own overhead is the server-side latency of each turn (from committing the
caller's turn to sending the first reply audio, as the call records hold it) less the time
within it that the bridge waited on providers: each request to the fake OpenAI as the fake
reports it (a request begun before the commit, such as an early transcription or an eager
chat, counts only from the commit), plus the injected first-audio delay of a streaming speech
stage (Aura, ElevenLabs), whose fake reports nothing. ``bench/turn_waits.py`` has the details.
"Less injected" subtracts only the injected delays within the span, so it also holds the
fakes' own request handling:

    python -m bench.turn_latency --agent local --calls 1 --turns 10
    python -m bench.turn_latency --agent local --calls 4 --turns 5
    python -m bench.turn_latency --agent openai --turns 20 --injected-ms 100
    python -m bench.turn_latency --agent openai --turns 20 --early-transcription-ms 0
    python -m bench.turn_latency --agent openai --stt deepgram --deepgram-model flux \
        --tts deepgram --turns 40
    python -m bench.turn_latency --agent openai --stt deepgram --deepgram-model nova-3 \
        --tts deepgram --turns 40
    python -m bench.turn_latency --agent openai --stt deepgram --tts elevenlabs --turns 40
    python -m bench.turn_latency --agent openai-realtime --turns 20 --injected-ms 100
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.fakes import (
    DEEPGRAM_MODELS,
    FAKE_KEY,
    FLUX_EOT_MS,
    STT_CHOICES,
    TTS_CHOICES,
    Fakes,
    Stack,
    provider_fakes,
)
from bench.server import BenchServer
from bench.turn_waits import Waits, server_turns
from bench.twilio_load import percentile
from bridge.settings import Settings
from pipeline.agents.providers.deepgram.access import DeepgramAccess
from pipeline.agents.providers.deepgram.listen_options import ListenOptions
from pipeline.audio import ULAW_8K, AudioSpec, Converter
from transports.twilio.emulator.client import ULAW_SILENCE, FakeTwilio

ROOT = Path(__file__).resolve().parent.parent
FRAME_MS = 20
LEAD_MS = 300
REPLY_TIMEOUT_S = 20.0
GREETING_WAIT_S = 5.0
#: samples quieter than this at the end of the synthesized question are trailing silence
VOICED_AMPLITUDE = 500
AGENTS = ("local", "echo", "openai", "openai-realtime")


def silence_window_ms(agent: str, stack: Stack) -> int:
    """The turn-ending silence ``agent`` waits for at default settings: the bridge's endpointer,
    the Realtime server's VAD, or the streaming recogniser's (Flux's ``EndOfTurn`` as the fake
    sends it; Nova-3's endpointing as the bridge asks for it)."""
    defaults = Settings()
    if agent == "openai-realtime":
        return defaults.openai_realtime_silence_ms
    if agent == "openai" and stack.stt == "deepgram":
        if stack.deepgram_model == "flux":
            return FLUX_EOT_MS
        # the endpointing the bridge asks Nova-3 for (its ``speech_final`` silence)
        nova = ListenOptions(DeepgramAccess("deepgram", "ws://127.0.0.1", FAKE_KEY))
        return nova.endpointing_ms or 0
    return defaults.vad_silence_ms


def question_ulaw(text: str) -> bytes:
    """The question in the offline voice, as Twilio would carry it (μ-law 8 kHz)."""
    from pipeline.agents.local.voice import PiperSpeaker

    speaker = PiperSpeaker.shared(deterministic=True)
    return as_phone_question(speaker.synthesize(text), speaker.rate_hz)


def as_phone_question(pcm16: bytes, rate_hz: int) -> bytes:
    """Speech as Twilio would carry it (μ-law 8 kHz), cut after its last voiced sample:
    the clock starts when that sample has been sent."""
    samples = np.frombuffer(pcm16, np.int16)
    voiced = np.flatnonzero(np.abs(samples) > VOICED_AMPLITUDE)
    samples = samples[: voiced[-1] + 1]
    converter = Converter(AudioSpec("pcm16", rate_hz), ULAW_8K)
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


async def one_call(url: str, questions: list[bytes], turns: int) -> list[Turn]:
    """One caller asking ``turns`` questions, the given ones in turn (μ-law 8 kHz)."""
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
        for index in range(turns):
            await peer.silence(LEAD_MS)
            await peer.stream(questions[index % len(questions)])
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


@asynccontextmanager
async def provider(
    agent: str, stack: Stack, injected_ms: float
) -> AsyncIterator[tuple[dict[str, str], Fakes | None]]:
    """The fake providers an agent talks to and its settings for them; for ``openai``, the
    running fakes (their report is filled in once the block ends)."""
    if agent == "openai":
        async with provider_fakes(stack, injected_ms) as fakes:
            yield fakes.env, fakes
    elif agent == "openai-realtime":
        from tests.fakes.realtime_server import FakeRealtime, Reply

        realtime = FakeRealtime(api_key=FAKE_KEY, default_reply=Reply(audio_ms=1500), pace=1.0)
        realtime.response_delay_s = injected_ms / 1000
        async with realtime:
            env = {"BRIDGE_OPENAI_REALTIME_URL": realtime.url, "OPENAI_API_KEY": FAKE_KEY}
            yield env, None
    else:
        yield {}, None


async def run(args: argparse.Namespace) -> dict[str, object]:
    cores = {int(c) for c in args.server_cores.split(",")}
    question = question_ulaw(args.question)
    stack = Stack(args.stt, args.deepgram_model, args.tts)
    records = tempfile.TemporaryDirectory(prefix="bench-records-")
    records_url = f"sqlite:///{records.name}/calls.db"
    async with provider(args.agent, stack, args.injected_ms) as (provider_env, fakes):
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
                *(one_call(url, [question], args.turns) for _ in range(args.calls))
            )
        finally:
            server.stop()  # SIGTERM: the drain flushes the call records
    latencies = [t.latency_ms for call in per_call for t in call]
    # speech-to-speech agents detect turns themselves: the bridge has no commit time for them
    turns = server_turns(records_url)
    records.cleanup()
    result: dict[str, object] = {
        "agent": args.agent,
        "stack": stack.name if fakes is not None else None,
        "calls": args.calls,
        "turns": len(latencies),
        "server_cores": sorted(cores),
        "question": args.question,
        "median_ms": round(statistics.median(latencies), 1),
        "p95_ms": round(percentile(latencies, 95), 1),
        "max_ms": round(max(latencies), 1),
        "reply_ms_median": round(statistics.median(t.reply_ms for c in per_call for t in c)),
        "silence_window_ms": silence_window_ms(args.agent, stack),
        **summary("server_latency", [t.latency_ms for t in turns]),
    }
    if fakes is not None:
        # the bridge's own overhead: see bench/turn_waits.py
        waits = Waits(fakes.served, stack, args.injected_ms)
        overheads = [o for o in map(waits.overhead_ms, turns) if o is not None]
        result["transcribed_early_turns"] = sum(map(waits.transcribed_early, turns))
        result.update(summary("less_injected", [waits.less_injected_ms(t) for t in turns]))
        result.update(summary("bridge_overhead", overheads))
    elif args.agent in ("local", "echo"):  # no provider: commit to first audio is all ours
        result.update(summary("bridge_overhead", [t.latency_ms for t in turns]))
    return result


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
    parser.add_argument("--stt", default="openai", choices=STT_CHOICES, help="--agent openai")
    parser.add_argument("--deepgram-model", default="nova-3", choices=DEEPGRAM_MODELS)
    parser.add_argument("--tts", default="openai", choices=TTS_CHOICES, help="--agent openai")
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
