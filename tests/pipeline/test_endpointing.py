"""Endpointing on real recorded speech (espeak-ng fixtures) and on silence and noise."""

from __future__ import annotations

import numpy as np

from pipeline.endpointing import (
    Endpointer,
    EndpointerConfig,
    EndpointEvent,
    TentativeTurn,
    UserTurn,
)
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


def timed_events(endpointer: Endpointer, pcm: bytes) -> list[tuple[int, object]]:
    """Each event with the 20 ms frame that caused it."""
    return [
        (i // 320, event)
        for i in range(0, len(pcm), 320)
        for event in endpointer.push(pcm[i : i + 320])
    ]


def test_a_pause_offers_the_very_turn_it_commits(hello_ulaw: bytes) -> None:
    phrase = ulaw_to_pcm16(hello_ulaw[: 8 * 600] + b"\xff" * 8000)  # one phrase, then quiet
    events = timed_events(Endpointer(8000, EndpointerConfig(silence_ms=500)), phrase)
    assert [type(e).__name__ for _, e in events] == ["EndpointEvent", "TentativeTurn", "UserTurn"]
    (_, started), (offered_at, tentative), (ended_at, turn) = events
    assert started is EndpointEvent.SPEECH_STARTED
    assert isinstance(tentative, TentativeTurn) and isinstance(turn, UserTurn)
    assert tentative.turn == turn  # the same audio, speech time and kind
    assert ended_at - offered_at == (500 - 200) // 20  # 200 ms into the silence


def test_speaking_on_voids_a_tentative_turn(hello_ulaw: bytes) -> None:
    """The question has three pauses of 200 ms or more: each offers the turn so far."""
    speech = ulaw_to_pcm16(hello_ulaw + b"\xff" * 8000)
    events = [e for _, e in timed_events(Endpointer(8000), speech)]
    offers = [e.turn for e in events if isinstance(e, TentativeTurn)]
    [turn] = [e for e in events if isinstance(e, UserTurn)]
    assert len(offers) == 4 and offers[-1] == turn
    for void in offers[:-1]:  # earlier offers are shorter beginnings of the same speech
        assert len(void.pcm16) < len(turn.pcm16) and turn.pcm16.startswith(void.pcm16)


def test_tentative_turns_off_too_late_or_before_the_kept_silence(hello_ulaw: bytes) -> None:
    phrase = ulaw_to_pcm16(hello_ulaw[: 8 * 600] + b"\xff" * 8000)

    def offers(config: EndpointerConfig) -> list[TentativeTurn]:
        events = timed_events(Endpointer(8000, config), phrase)
        return [e for _, e in events if isinstance(e, TentativeTurn)]

    assert offers(EndpointerConfig(tentative_ms=0)) == []
    assert offers(EndpointerConfig(silence_ms=500, tentative_ms=500)) == []
    # asked for before the 100 ms of silence a turn keeps, it waits for them: still the same
    [early] = offers(EndpointerConfig(tentative_ms=40, trailing_keep_ms=100))
    turns = feed(Endpointer(8000, EndpointerConfig(tentative_ms=40)), phrase)
    assert [early.turn] == [e for e in turns if isinstance(e, UserTurn)]


def test_a_first_word_before_a_pause_is_kept(hello_ulaw: bytes) -> None:
    """A short first word, a stop, then the rest ("What | time is it?"): the turn opens on
    the rest, and must still begin with the word (it once kept 100 ms and lost it)."""
    speech = ulaw_to_pcm16(hello_ulaw)
    samples = np.frombuffer(speech, np.int16)
    onset = int(np.flatnonzero(np.abs(samples) > 1000)[0])
    # 140 ms of its voice, too short to open a turn, quieter so its bytes are its own
    word = (samples[onset : onset + 8000 * 140 // 1000] * 0.8).astype(np.int16).tobytes()
    gap = b"\x00" * (2 * 8000 * 120 // 1000)
    pcm = b"\x00" * 16000 + word + gap + speech + b"\x00" * 16000
    turns = [e for e in feed(Endpointer(8000), pcm) if isinstance(e, UserTurn)]
    assert len(turns) == 1
    assert word in turns[0].pcm16
