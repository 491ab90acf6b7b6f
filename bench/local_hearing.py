"""How well the offline agent understands people, and how fast it answers them.

Two measurements over the varied set of ``bench/hearing_set.py`` (espeak-ng accents and
variants, piper's joe slowed and livelier; 0.9x / 1x / 1.1x speed; clean and 20 dB SNR
noise; 8 kHz μ-law phone line and 16 kHz toy):

1. Understanding: each sample through the recogniser as the agent runs it (its prompt, its
   second reading of turns not understood, one core) and the dialogue's intent matching.
   Reported: the share of intents understood, the word error rate against what was said,
   and the recognition time per turn; and how often questions the agent has no answer for
   ("What's the weather like?") are taken for an intent anyway.
2. Latency over real phone calls: the bridge (``BRIDGE_AGENT=local``, default settings, so
   the 500 ms silence window) pinned to core 0, one emulated Twilio caller on core 1 asking
   questions from the set. The clock runs from the last voiced sample sent to the first
   reply audio received: what a caller waits. The call records' transcripts also give the
   share understood over the real line.

    python -m bench.local_hearing                  # both, the whole set (~6 min)
    python -m bench.local_hearing --skip-calls --voices 2   # a quick look
    python -m bench.local_hearing --skip-set --shared-core  # calls on half a core
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

from bench.hearing_set import Sample, at_band, for_recognizer, samples, unanswerable_samples
from bench.records import turns_by_call
from bench.server import BenchServer
from bench.turn_latency import as_phone_question, one_call
from bench.twilio_load import percentile
from pipeline.agents.local.dialogue import RECOGNIZER_PROMPT
from pipeline.agents.local.hearing import Recognizer
from pipeline.agents.local.intents import guessable, meaning, normalise, understood


def word_errors(said: str, heard: str) -> tuple[int, int]:
    """(edits, words said): the Levenshtein distance between the two word sequences."""
    ref, hyp = normalise(said), normalise(heard)
    row = list(range(len(hyp) + 1))
    for i, word in enumerate(ref, 1):
        previous, row[0] = row[0], i
        for j, other in enumerate(hyp, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (word != other))
    return row[-1], len(ref)


def share(hits: list[bool]) -> float:
    return round(100 * sum(hits) / len(hits), 1) if hits else float("nan")


def understanding(voices: int | None) -> dict[str, object]:
    recognizer = Recognizer(RECOGNIZER_PROMPT)
    recognizer.load()
    by: dict[str, list[bool]] = defaultdict(list)
    errors = words = 0
    decode_ms: dict[int, list[float]] = defaultdict(list)
    misses: list[str] = []
    for index, sample in enumerate(samples(voices)):
        audio = for_recognizer(at_band(sample, seed=index), sample.band_hz)
        started = time.perf_counter()
        heard = recognizer.transcribe(audio, understood, guessable)
        decode_ms[sample.band_hz].append((time.perf_counter() - started) * 1000)
        hit = meaning(heard) == sample.intent
        edits, said = word_errors(sample.text, heard)
        errors, words = errors + edits, words + said
        for key in (
            "all",
            f"family={sample.family}",
            f"band={sample.band_hz}",
            f"speed={sample.speed}",
            f"noise={'20dB' if sample.noisy else 'clean'}",
            f"intent={sample.intent}",
        ):
            by[key].append(hit)
        if not hit:
            misses.append(f"{describe(sample)}: {sample.text!r} -> {heard!r}")
    taken: list[bool] = []
    for index, sample in enumerate(unanswerable_samples(voices)):
        audio = for_recognizer(at_band(sample, seed=index), sample.band_hz)
        heard = recognizer.transcribe(audio, understood, guessable)
        taken.append(understood(heard))
        if taken[-1]:
            misses.append(f"{describe(sample)}: {sample.text!r} -> {heard!r} (no answer)")
    return {
        "samples": len(by["all"]),
        "understood_pct": {key: share(hits) for key, hits in sorted(by.items())},
        "word_error_rate_pct": round(100 * errors / max(1, words), 1),
        "unanswerable_samples": len(taken),
        "unanswerable_taken_for_an_intent_pct": share(taken),
        "recognition_ms": {
            f"{band}": {
                "median": round(statistics.median(values), 1),
                "p95": round(percentile(values, 95), 1),
            }
            for band, values in sorted(decode_ms.items())
        },
        "misses": misses,
    }


def describe(sample: Sample) -> str:
    noise = " +noise" if sample.noisy else ""
    return f"{sample.voice} {sample.band_hz} Hz x{sample.speed}{noise}"


@contextlib.contextmanager
def busy_core(core: int | None) -> Iterator[None]:
    """A process spinning on ``core`` meanwhile (None: nothing): the server then has about
    half of its core, as on a machine half as fast or a core shared with another service."""
    if core is None:
        yield
        return
    spinner = subprocess.Popen(
        [sys.executable, "-c", "while True: pass"],
        preexec_fn=lambda: os.sched_setaffinity(0, {core}),
    )
    try:
        yield
    finally:
        spinner.kill()
        spinner.wait()


async def calls(turns: int, shared_core: bool = False) -> dict[str, object]:
    """One caller at a time over the real server, six questions a call; a call the agent
    ends early (a question misheard as goodbye) loses the rest of its questions, counted.
    ``shared_core``: a busy process shares the server's core (:func:`busy_core`)."""
    # a goodbye ends the call: the set's goodbyes are measured in part 1 only
    phone = [s for s in samples() if s.band_hz == 8000 and s.intent != "goodbye"]
    step = max(1, len(phone) // turns)
    chosen = phone[::step][:turns]
    questions = [as_phone_question(at_band(s, seed=i), 8000) for i, s in enumerate(chosen)]
    records = tempfile.TemporaryDirectory(prefix="bench-records-")
    records_url = f"sqlite:///{records.name}/calls.db"
    env = {"BRIDGE_AGENT": "local", "BRIDGE_RECORDS_URL": records_url}
    server = await asyncio.to_thread(BenchServer, {0}, env)
    per_call = 6
    results = []
    lost = 0
    url = f"ws://127.0.0.1:{server.port}/stream"
    try:
        with busy_core(0 if shared_core else None):
            for first in range(0, len(questions), per_call):
                batch = questions[first : first + per_call]
                try:
                    results.extend(await one_call(url, batch, len(batch)))
                except Exception as exc:  # the call ended under us: the rest are lost
                    print(f"call {first // per_call + 1} ended early: {exc!r}")
                    lost += len(batch)
    finally:
        server.stop()
    heard = user_texts(records_url)
    records.cleanup()
    latencies = [turn.latency_ms for turn in results]
    hits = [meaning(text) == s.intent for s, text in zip(chosen, heard, strict=False)]
    return {
        "turns": len(latencies),
        "latency_median_ms": round(statistics.median(latencies), 1),
        "latency_p95_ms": round(percentile(latencies, 95), 1),
        "latency_max_ms": round(max(latencies), 1),
        "understood_pct": share(hits),
        "recorded_turns": len(heard),
        "questions_lost_to_early_hang_ups": lost,
        "slowest": [
            f"{turn.latency_ms:.0f} ms: {describe(s)} {s.text!r} -> {text!r}"
            for turn, s, text in sorted(
                zip(results, chosen, heard, strict=False), key=lambda t: -t[0].latency_ms
            )[:5]
        ],
    }


def user_texts(records_url: str) -> list[str]:
    """The callers' recognised words, turn by turn, in the order the calls were made."""
    texts = [
        (turn.at_s, turn.user_text)
        for turns in turns_by_call(records_url).values()
        for turn in turns
        if turn.user_speech_ms
    ]
    return [text for _, text in sorted(texts)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--voices", type=int, help="only the first N espeak voices")
    parser.add_argument("--turns", type=int, default=60, help="questions over real calls")
    parser.add_argument("--skip-calls", action="store_true")
    parser.add_argument("--skip-set", action="store_true", help="only the calls")
    parser.add_argument("--json", type=Path, help="also write the result here")
    parser.add_argument(
        "--shared-core",
        action="store_true",
        help="calls with a busy process on the server's core (half a core for the bridge)",
    )
    args = parser.parse_args()
    os.sched_setaffinity(0, {1})
    result: dict[str, object] = {}
    if not args.skip_set:
        result["understanding"] = understanding(args.voices)
    if not args.skip_calls:
        result["phone_calls"] = asyncio.run(calls(args.turns, args.shared_core))
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
