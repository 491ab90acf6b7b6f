"""The judge's parts, alone: backchannels, the sound's course, the verdict, voicing."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.audio import PCM16_16K, ULAW_8K, AudioSpec, Converter
from pipeline.interruptions import (
    DEFAULT_BACKCHANNELS,
    Backchannels,
    InterruptionConfig,
    Judge,
    Sound,
    Verdict,
    verdict_of,
)
from pipeline.voicing import voiced_ms
from tests.support.core import speech

BACKCHANNELS = Backchannels(DEFAULT_BACKCHANNELS)


@pytest.mark.parametrize(
    "text",
    [
        "Uh-huh.",
        "Mm-hmm.",
        "mhm",
        "Hmmm.",
        "Mm-s.",
        "Yeah.",
        "Yeah, okay.",
        "OK",
        "Right, right.",
        "All right!",
        "",
    ],
)
def test_listening_noises_are_backchannels(text: str) -> None:
    assert BACKCHANNELS.only_backchannels(text)


@pytest.mark.parametrize(
    "text",
    ["Stop.", "Wait.", "Yeah, but what about tomorrow?", "No.", "Okay stop", "Hello.", "I have."],
)
def test_anything_else_is_not(text: str) -> None:
    assert not BACKCHANNELS.only_backchannels(text)


def test_a_persona_names_its_own() -> None:
    pirate = Backchannels(["aye", "arr"])
    assert pirate.only_backchannels("Aye, aye.") and not pirate.only_backchannels("Yeah.")


def test_the_judge_follows_the_sound() -> None:
    config = InterruptionConfig(window_ms=700, end_silence_ms=300)
    judge = Judge(config, started_frame=100)
    # speech from frame 100 to 119 (400 ms), then quiet
    assert judge.step(frames=120, last_speech_frame=119) is None
    assert judge.step(frames=134, last_speech_frame=119) is None  # 280 ms of quiet
    assert judge.step(frames=135, last_speech_frame=119) is Sound.ENDED  # 300 ms
    # a pause inside a sentence, then speech again past the window: it goes on
    judge = Judge(config, started_frame=100)
    assert judge.step(frames=131, last_speech_frame=120) is None
    assert judge.step(frames=136, last_speech_frame=135) is Sound.GOING_ON


def test_the_verdict_on_a_sound_that_ended() -> None:
    config = InterruptionConfig(min_voiced_ms=60)

    def verdict(voiced: int, words: str | None) -> Verdict:
        return verdict_of(voiced, words, config, BACKCHANNELS).verdict

    assert verdict(20, "I don't know.") is Verdict.FALSE  # not speech: the words are noise's
    assert verdict(200, None) is Verdict.FALSE  # short speech, no recogniser
    assert verdict(200, "") is Verdict.FALSE
    assert verdict(200, "Mm-hmm.") is Verdict.FALSE
    assert verdict(200, "Stop.") is Verdict.REAL


def _phone(pcm16: np.ndarray, rate_hz: int) -> tuple[bytes, int]:
    converter = Converter(AudioSpec("pcm16", rate_hz), ULAW_8K)
    ulaw = converter.process(pcm16.astype(np.int16).tobytes()) + converter.flush()
    back = Converter(ULAW_8K, AudioSpec("pcm16", 8000))
    return back.process(ulaw) + back.flush(), 8000


def test_voicing_tells_speech_from_noise() -> None:
    rng = np.random.default_rng(1)
    noise = rng.normal(0, 3000, 4800)
    cough = np.convolve(rng.normal(0, 9000, 4000) * np.hanning(4000), np.ones(4) / 4, "same")
    rumble = np.cumsum(rng.normal(0, 300, 4800))
    for sound in (noise, cough, rumble - rumble.mean()):
        assert voiced_ms(*_phone(sound, 16000)) <= 20
    hello = np.frombuffer(speech(PCM16_16K), np.int16)
    assert voiced_ms(hello.tobytes(), 16000) >= 1000
    assert voiced_ms(*_phone(hello, 16000)) >= 1000
    assert voiced_ms(b"", 16000) == 0 and voiced_ms(b"\x01", 8000) == 0
