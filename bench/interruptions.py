"""Which sounds cut the agent off, and how fast real interruptions stop it (issue 15).

One emulated Twilio caller per trial, over the real server (``BRIDGE_AGENT=echo``, default
turn settings) pinned to core 0, the caller on core 1. The caller says a 3.5 s sentence; the
echo agent plays it back; at a point of that reply *as the caller hears it* (0.6 s, 1.5 s)
the caller makes one sound:

* non-speech: a 300 ms burst of white noise, a 250 ms cough-like burst (shaped, low-passed);
* a backchannel: "uh huh", "mm-hmm", "yeah", "okay", "right" (espeak-ng en-us and piper);
* a real interruption: "Wait, stop, I have a question." and "No, that is not what I meant."

Reported per kind: replies stopped (a Twilio ``clear`` after the sound) and whether they went
on (more of the reply after the ``clear``), sounds that became a user turn of their own (from
the call records), and how much of the reply was heard. From them the issue's measures: the
false-interruption rate (replies lost to non-speech or a backchannel), the missed-interruption
rate (a real one after which the reply went on), the stop latency (sound start to ``clear``)
and the resume gap (end of the sound to the reply going on; also from the ``clear``).

    python -m bench.interruptions                # echo: the sound alone decides, ~7 min
    python -m bench.interruptions --agent local  # Whisper hears short sounds, ~12 min
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
#: short ones only an agent that hears words can tell from a backchannel (``--agent local``)
SHORT_INTERRUPTIONS = ("Stop.", "Wait.", "Hold on.")
POINTS_S = (0.6, 1.5)
#: the line after the sound: long enough for a turn to end and its echo to be heard
AFTER_S = 4.0
REPLY_TIMEOUT_S = 15.0
#: the bridge's Twilio chunk (each has a mark)
CHUNK_MS = 40


@dataclass(frozen=True, slots=True)
class Sound:
    kind: str  # "noise", "cough", "backchannel", "interruption"
    label: str
    ulaw: bytes


@dataclass(slots=True)
class Trial:
    sound: Sound
    point_s: float
    #: the reply stopped (a Twilio ``clear`` after the sound started)
    stopped: bool
    #: the reply went on after the stop (more of its audio arrived)
    resumed: bool
    became_turn: bool
    stop_ms: float | None
    #: from the end of the caller's sound to the reply going on again
    gap_after_sound_ms: float | None = None
    #: from the stop to the reply going on again (all the silence, the sound included)
    pause_ms: float | None = None
    #: how much of the reply the caller heard in all
    heard_ms: float = 0.0

    @property
    def lost(self) -> bool:
        """The reply was cut and never went on."""
        return self.stopped and not self.resumed


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


def sounds(voices: tuple[str, ...], short: bool = False) -> list[Sound]:
    interruptions = INTERRUPTIONS + (SHORT_INTERRUPTIONS if short else ())
    said = [
        Sound(kind, f"{text!r} ({voice})", spoken(text, voice))
        for kind, texts in (("backchannel", BACKCHANNELS), ("interruption", interruptions))
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
        await quiet_line(peer)  # a greeting (the local agent's) has played out
        before = len(peer.played)
        await peer.stream(prompt)
        stop = asyncio.Event()
        idle = asyncio.create_task(keep_line_alive(peer, stop))
        deadline = time.monotonic() + REPLY_TIMEOUT_S
        point_bytes = before + int(point_s * 1000 * ULAW_BYTES_PER_MS)
        while time.monotonic() < deadline:  # the emulator's playback has no event to wait on
            if len(peer.played) >= point_bytes:
                break
            await asyncio.sleep(0.005)
        stop.set()
        await idle
        started = time.monotonic()
        await peer.stream(sound.ulaw)
        ended = time.monotonic() + 0.02  # its last 20 ms frame was just sent
        await peer.silence(int(AFTER_S * 1000))
        return judged(peer, sound, point_s, started, ended)
    finally:
        await peer.close()


async def quiet_line(peer: FakeTwilio, quiet_s: float = 1.0) -> None:
    """Keep the line alive until nothing new has played for ``quiet_s``."""
    stop = asyncio.Event()
    idle = asyncio.create_task(keep_line_alive(peer, stop))
    played, since = len(peer.played), time.monotonic()
    deadline = since + REPLY_TIMEOUT_S
    while time.monotonic() - since < quiet_s and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        if len(peer.played) != played:
            played, since = len(peer.played), time.monotonic()
    stop.set()
    await idle


def judged(peer: FakeTwilio, sound: Sound, point_s: float, started: float, ended: float) -> Trial:
    """What the caller heard around the sound: a stop, and whether the reply went on."""
    timeline = peer.timeline
    clears = [t for t in timeline.clears if t >= started]
    stop_ms = (clears[0] - started) * 1000 if clears else None
    # the reply is the turn whose audio was arriving when the sound started
    marks = [
        str(message.get("mark", {}).get("name", ""))
        for at, message in timeline.received
        if at < started and message.get("event") == "mark"
    ]
    reply = marks[-1].split(":")[0] + ":" if marks else "t1:"
    resumed_at = [
        at
        for at, message in timeline.received
        if clears
        and at > clears[0]
        and message.get("event") == "mark"
        and message.get("mark", {}).get("name", "").startswith(reply)
    ]
    heard_ms = sum(CHUNK_MS for name in timeline.played_marks if name.startswith(reply))
    trial = Trial(sound, point_s, bool(clears), bool(resumed_at), False, stop_ms)
    trial.heard_ms = heard_ms
    if clears and resumed_at:
        trial.gap_after_sound_ms = max(0.0, resumed_at[0] - ended) * 1000
        trial.pause_ms = (resumed_at[0] - clears[0]) * 1000
    return trial


def user_turns(records_url: str) -> dict[str, int]:
    """Per call id, how many user turns the records hold."""
    return {
        call_id: sum(turn.user_speech_ms is not None for turn in turns)
        for call_id, turns in turns_by_call(records_url).items()
    }


async def run(points: tuple[float, ...], voices: tuple[str, ...], agent: str) -> list[Trial]:
    # the local agent repeats the sentence: a reply as long as the echo agent's
    prompt = spoken(PROMPT if agent == "echo" else f"Repeat after me. {PROMPT}", "piper")
    records = tempfile.TemporaryDirectory(prefix="bench-records-")
    records_url = f"sqlite:///{records.name}/calls.db"
    env = {"BRIDGE_AGENT": agent, "BRIDGE_RECORDS_URL": records_url}
    server = await asyncio.to_thread(BenchServer, {0}, env)
    trials: list[Trial] = []
    try:
        url = f"ws://127.0.0.1:{server.port}/stream"
        cases = [(s, p) for s in sounds(voices, agent != "echo") for p in points]
        for index, (sound, point_s) in enumerate(cases):
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


def _spread(values: list[float]) -> dict[str, float | None]:
    return {
        "median": round(statistics.median(values), 1) if values else None,
        "p95": round(percentile(values, 95), 1) if values else None,
        "max": round(max(values), 1) if values else None,
    }


def report(trials: list[Trial]) -> dict[str, object]:
    false_kinds = ("noise", "cough", "backchannel")
    unwanted = [t for t in trials if t.sound.kind in false_kinds]
    wanted = [t for t in trials if t.sound.kind == "interruption"]
    stops = [t.stop_ms for t in wanted if t.stop_ms is not None and not t.resumed]
    gaps = [t.gap_after_sound_ms for t in unwanted if t.gap_after_sound_ms is not None]
    pauses = [t.pause_ms for t in unwanted if t.pause_ms is not None]
    return {
        "trials": len(trials),
        "false_interruption_pct": pct([t.lost for t in unwanted]),
        "non_speech_or_backchannel_answered_as_a_turn_pct": pct([t.became_turn for t in unwanted]),
        "missed_interruption_pct": pct([t.resumed or not t.stopped for t in wanted]),
        "stop_latency_ms": _spread(stops),
        "resume_gap_after_the_sound_ms": _spread(gaps),
        "resume_pause_from_the_stop_ms": _spread(pauses),
        "by_kind": {
            kind: {
                "trials": len(of),
                "stopped_pct": pct([t.stopped for t in of]),
                "resumed_pct": pct([t.resumed for t in of]),
                "became_a_turn_pct": pct([t.became_turn for t in of]),
                "reply_heard_ms_median": statistics.median(t.heard_ms for t in of),
            }
            for kind in ("noise", "cough", "backchannel", "interruption")
            if (of := [t for t in trials if t.sound.kind == kind])
        },
        "trials_detail": [
            f"{t.sound.kind} {t.sound.label} at {t.point_s} s: "
            f"{'stopped' if t.stopped else 'not stopped'}"
            f"{f' in {t.stop_ms:.0f} ms' if t.stop_ms is not None else ''}"
            f"{f', went on {t.gap_after_sound_ms:.0f} ms after the sound' if t.resumed else ''}"
            f"{', answered as a turn' if t.became_turn else ''}"
            f", {t.heard_ms:.0f} ms of the reply heard"
            for t in trials
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", type=float, nargs="+", default=list(POINTS_S))
    parser.add_argument("--voices", nargs="+", default=["en-us", "piper"])
    parser.add_argument(
        "--agent",
        choices=("echo", "local"),
        default="echo",
        help="echo: the sound alone decides; local: Whisper hears the words of short sounds "
        '(and short interruptions such as "Stop." join the set)',
    )
    parser.add_argument("--json", type=Path, help="also write the result here")
    args = parser.parse_args()
    os.sched_setaffinity(0, {1})
    trials = asyncio.run(run(tuple(args.points), tuple(args.voices), args.agent))
    result = report(trials)
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
