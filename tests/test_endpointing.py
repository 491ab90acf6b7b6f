"""Endpointing on real recorded speech (espeak-ng fixtures) and on silence and noise."""

from __future__ import annotations

import numpy as np

from pipeline.endpointing import Endpointer, EndpointerConfig, EndpointEvent, UserTurn
from pipeline.g711 import ulaw_to_pcm16


def feed(endpointer: Endpointer, pcm: bytes, piece: int = 320) -> list[object]:
    events: list[object] = []
    for i in range(0, len(pcm), piece):
        events += endpointer.push(pcm[i : i + piece])
    return events


def test_speech_then_silence_makes_one_turn(hello_ulaw: bytes) -> None:
    pcm = ulaw_to_pcm16(b"\xff" * 4000 + hello_ulaw + b"\xff" * 8000)
    endpointer = Endpointer(8000, EndpointerConfig(silence_ms=700))
    events = feed(endpointer, pcm, piece=333)  # pieces that do not align with frames
    assert events[0] is EndpointEvent.SPEECH_STARTED
    turns = [e for e in events if isinstance(e, UserTurn)]
    assert len(turns) == 1
    turn = turns[0]
    speech_ms = len(hello_ulaw) / 8
    assert speech_ms * 0.6 < turn.duration_ms < speech_ms + 500
    assert not turn.forced


def test_silence_and_low_noise_never_open_a_turn() -> None:
    rng = np.random.default_rng(1)
    noise = (rng.normal(0, 60, 8000 * 20)).astype(np.int16).tobytes()  # 20 s of hiss
    endpointer = Endpointer(8000)
    assert feed(endpointer, noise) == []
    assert feed(endpointer, b"\x00" * 16000 * 5) == []


def test_long_speech_is_committed_at_the_maximum(hello_ulaw: bytes) -> None:
    pcm = ulaw_to_pcm16(hello_ulaw * 3)
    endpointer = Endpointer(8000, EndpointerConfig(max_turn_ms=2000, silence_ms=2000))
    turns = [e for e in feed(endpointer, pcm) if isinstance(e, UserTurn)]
    assert turns and turns[0].forced and turns[0].duration_ms <= 2000


def test_force_end_commits_buffered_speech(hello_ulaw: bytes) -> None:
    endpointer = Endpointer(8000)
    assert endpointer.force_end() is None
    feed(endpointer, ulaw_to_pcm16(hello_ulaw[:8000]))
    assert endpointer.in_speech
    turn = endpointer.force_end()
    assert turn is not None and turn.forced and not endpointer.in_speech


def test_reset_forgets_partial_speech(hello_ulaw: bytes) -> None:
    endpointer = Endpointer(8000)
    feed(endpointer, ulaw_to_pcm16(hello_ulaw[:8000]))
    endpointer.reset()
    assert not endpointer.in_speech and endpointer.force_end() is None
