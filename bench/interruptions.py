"""Which sounds cut the agent off, and how fast real interruptions stop it (issue 15).

One emulated Twilio caller per trial, over the real server (``BRIDGE_AGENT=echo``, default
turn settings) pinned to core 0, the caller on core 1. The caller says a 3.5 s sentence; the
echo agent plays it back; at a point of that reply *as the caller hears it* (0.6 s, 1.5 s)
the caller makes one sound:

* non-speech: a 300 ms burst of white noise, a 250 ms cough-like burst (shaped, low-passed);
* a backchannel: "uh huh", "mm-hmm", "yeah", "okay", "right" (espeak-ng en-us and piper);
* a real interruption: "Wait, stop, I have a question." and "No, that is not what I meant."

Reported per kind: replies cut (a Twilio ``clear`` after the sound), sounds that became a user
turn of their own (from the call records), and for real interruptions the stop latency (sound
start to ``clear``). From them the issue's measures: the false-interruption rate (replies cut
by non-speech or a backchannel), the missed-interruption rate, stop latency p50/p95. A resume
gap is reported once replies resume.

    python -m bench.interruptions            # ~5 min
    python -m bench.interruptions --points 1.2 --voices piper   # the issue's own example
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.hearing_set import speech
from bench.records import turns_by_call
from bench.server import BenchServer
from bench.turn_latency import as_phone_question, keep_line_alive, question_ulaw
from bench.twilio_load import percentile
from pipeline.audio import ULAW_8K, AudioSpec, Converter
from transports.twilio.emulator.client import ULAW_BYTES_PER_MS, FakeTwilio

PROMPT = "The quick brown fox jumps over the lazy dog, and then it runs into the forest."
BACKCHANNELS = ("Uh huh.", "Mm-hmm.", "Yeah.", "Okay.", "Right.")
INTERRUPTIONS = ("Wait, stop, I have a question.", "No, that is not what I meant.")
POINTS_S = (0.6, 1.5)
#: the line after the sound: long enough for a turn to end and its echo to be heard
AFTER_S = 4.0
REPLY_TIMEOUT_S = 15.0


@dataclass(frozen=True, slots=True)
class Sound:
    kind: str  # "noise", "cough", "backchannel", "interruption"
    label: str
    ulaw: bytes


@dataclass(slots=True)
class Trial:
    sound: Sound
    point_s: float
    cut: bool
    became_turn: bool
    stop_ms: float | None


def _ulaw(pcm16: np.ndarray, rate_hz: int) -> bytes:
    converter = Converter(AudioSpec("pcm16", rate_hz), ULAW_8K)
    return converter.process(pcm16.astype(np.int16).tobytes()) + converter.flush()


def non_speech() -> list[Sound]:
    rng = np.random.default_rng(15)
    noise = rng.normal(0, 3000, 2400)  # 300 ms at 8 kHz, about -20 dBFS
    cough = np.convolve(rng.normal(0, 9000, 2000) * np.hanning(2000), np.ones(4) / 4, "same")
    return [
        Sound("noise", "white noise 300 ms", _ulaw(noise, 8000)),
        Sound("cough", "cough-like 250 ms", _ulaw(cough, 8000)),
    ]


def spoken(text: str, voice: str) -> bytes:
    """``text`` said by piper's joe or an espeak-ng voice, as the phone line carries it."""
    return question_ulaw(text) if voice == "piper" else as_phone_question(*speech(text, voice))


def sounds(voices: tuple[str, ...]) -> list[Sound]:
    said = [
        Sound(kind, f"{text!r} ({voice})", spoken(text, voice))
        for kind, texts in (("backchannel", BACKCHANNELS), ("interruption", INTERRUPTIONS))
        for text in texts
        for voice in voices
    ]
    return non_speech() + said


async def one_trial(url: str, call_sid: str, prompt: bytes, sound: Sound, point_s: float) -> Trial:
    peer = FakeTwilio(url, call_sid=call_sid)
    await peer.connect()
    await peer.begin()
    try:
        await peer.silence(300)
        await peer.stream(prompt)
        stop = asyncio.Event()
        idle = asyncio.create_task(keep_line_alive(peer, stop))
        deadline = time.monotonic() + REPLY_TIMEOUT_S
        point_bytes = int(point_s * 1000 * ULAW_BYTES_PER_MS)
        while time.monotonic() < deadline:  # the emulator's playback has no event to wait on
            if len(peer.played) >= point_bytes:
                break
            await asyncio.sleep(0.005)
        stop.set()
        await idle
        started = time.monotonic()
        await peer.stream(sound.ulaw)
        await peer.silence(int(AFTER_S * 1000))
        clears = [t for t in peer.timeline.clears if t >= started]
        stop_ms = (clears[0] - started) * 1000 if clears else None
        return Trial(sound, point_s, bool(clears), False, stop_ms)
    finally:
        await peer.close()


def user_turns(records_url: str) -> dict[str, int]:
    """Per call id, how many user turns the records hold."""
    return {
        call_id: sum(turn.user_speech_ms is not None for turn in turns)
        for call_id, turns in turns_by_call(records_url).items()
    }


async def run(points: tuple[float, ...], voices: tuple[str, ...]) -> list[Trial]:
    prompt = spoken(PROMPT, "piper")
    records = tempfile.TemporaryDirectory(prefix="bench-records-")
    records_url = f"sqlite:///{records.name}/calls.db"
    env = {"BRIDGE_AGENT": "echo", "BRIDGE_RECORDS_URL": records_url}
    server = await asyncio.to_thread(BenchServer, {0}, env)
    trials: list[Trial] = []
    try:
        url = f"ws://127.0.0.1:{server.port}/stream"
        for index, (sound, point_s) in enumerate((s, p) for s in sounds(voices) for p in points):
            trials.append(await one_trial(url, f"CA{index:032d}", prompt, sound, point_s))
    finally:
        server.stop()
    turns = user_turns(records_url)
    records.cleanup()
    for index, trial in enumerate(trials):
        trial.became_turn = turns.get(f"CA{index:032d}", 0) > 1
    return trials


def pct(hits: list[bool]) -> float:
    return round(100 * sum(hits) / len(hits), 1) if hits else float("nan")


def report(trials: list[Trial]) -> dict[str, object]:
    false_kinds = ("noise", "cough", "backchannel")
    unwanted = [t for t in trials if t.sound.kind in false_kinds]
    wanted = [t for t in trials if t.sound.kind == "interruption"]
    stops = [t.stop_ms for t in wanted if t.stop_ms is not None]
    return {
        "trials": len(trials),
        "false_interruption_pct": pct([t.cut for t in unwanted]),
        "non_speech_or_backchannel_answered_as_a_turn_pct": pct([t.became_turn for t in unwanted]),
        "missed_interruption_pct": pct([not t.cut for t in wanted]),
        "stop_latency_ms": {
            "median": round(statistics.median(stops), 1) if stops else None,
            "p95": round(percentile(stops, 95), 1) if stops else None,
        },
        "resume_gap_ms": "no reply resumes yet: every cut reply is lost",
        "by_kind": {
            kind: {
                "trials": len(of),
                "cut_pct": pct([t.cut for t in of]),
                "became_a_turn_pct": pct([t.became_turn for t in of]),
            }
            for kind in ("noise", "cough", "backchannel", "interruption")
            if (of := [t for t in trials if t.sound.kind == kind])
        },
        "trials_detail": [
            f"{t.sound.kind} {t.sound.label} at {t.point_s} s: "
            f"{'cut' if t.cut else 'not cut'}"
            f"{f' in {t.stop_ms:.0f} ms' if t.stop_ms is not None else ''}"
            f"{', answered as a turn' if t.became_turn else ''}"
            for t in trials
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", type=float, nargs="+", default=list(POINTS_S))
    parser.add_argument("--voices", nargs="+", default=["en-us", "piper"])
    parser.add_argument("--json", type=Path, help="also write the result here")
    args = parser.parse_args()
    os.sched_setaffinity(0, {1})
    trials = asyncio.run(run(tuple(args.points), tuple(args.voices)))
    result = report(trials)
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
