"""Building blocks of the offline agent: the dialogue, the piper voice, and a real round trip
through pocketsphinx (speech synthesised offline, recognised offline)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest
import soxr

from pipeline.agents.local.agent import load_speaker
from pipeline.agents.local.dialogue import Dialogue, Phrases, intent_of, load_phrases
from pipeline.agents.local.espeak import EspeakSpeaker
from pipeline.agents.local.hearing import Recognizer
from pipeline.agents.local.voice import JOE_MODEL_SHA256, PiperSpeaker, file_sha256, split_sentences

AFTERNOON = datetime(2026, 11, 21, 15, 10, tzinfo=ZoneInfo("UTC"))


def dialogue() -> Dialogue:
    return Dialogue(clock=lambda: AFTERNOON)


@pytest.mark.parametrize(
    ("heard", "expected"),
    [
        ("what time is it", "It's 3:10 in the afternoon."),
        ("what time of it", "It's 3:10 in the afternoon."),  # what 8 kHz audio gives
        ("what is the big today", "Today is Saturday, November 21, 2026."),
        ("repeat after me the cat sat on the map", "the cat sat on the map."),
        ("repeat after me", Phrases().repeat_what),
        ("hello there", Phrases().hello_again),
        ("help", Phrases().help),
        ("", Phrases().not_understood),
        ("purple elephants", Phrases().not_understood),
    ],
)
def test_replies(heard: str, expected: str) -> None:
    reply = dialogue().reply(heard)
    assert reply.text == expected and not reply.end_call


def test_goodbye_ends_the_call_and_phrases_are_configurable() -> None:
    custom = Dialogue(Phrases(goodbye="Bye now."), clock=lambda: AFTERNOON)
    reply = custom.reply("ok goodbye")
    assert reply.text == "Bye now." and reply.end_call
    assert intent_of("bye hi") == "goodbye"  # leaving beats greeting


def test_sentences_are_split_for_streaming() -> None:
    assert split_sentences("Hi! It's 3. Bye?  ") == ["Hi!", "It's 3.", "Bye?"]


@pytest.fixture(scope="module")
def speaker() -> PiperSpeaker:
    speaker = PiperSpeaker.shared(deterministic=True)
    speaker.load()
    return speaker


def test_packaged_voice_is_the_expected_model(speaker: PiperSpeaker) -> None:
    assert file_sha256(speaker.model_path) == JOE_MODEL_SHA256


def test_voice_speaks_at_a_plausible_length(speaker: PiperSpeaker) -> None:
    pcm = speaker.synthesize("It's 3:10 in the afternoon.")
    seconds = len(pcm) / 2 / speaker.rate_hz
    assert speaker.rate_hz == 22050 and 1.0 < seconds < 4.0
    assert np.abs(np.frombuffer(pcm, np.int16)).max() > 3000  # not silence


async def test_voice_streams_sentence_by_sentence(speaker: PiperSpeaker) -> None:
    pieces = [piece async for piece in speaker.speak("Hello. What can I do for you?")]
    assert len(pieces) == 2 and all(len(p) > 0 for p in pieces)


@pytest.mark.parametrize("band_hz", [16000, 8000])
@pytest.mark.parametrize(
    ("question", "intent"),
    [
        ("What time is it?", "time"),
        ("What is the date today?", "date"),
        ("Hello there.", "greeting"),
        ("Goodbye.", "goodbye"),
        ("Help.", "help"),
    ],
)
def test_offline_round_trip_recognises_each_intent(
    speaker: PiperSpeaker, band_hz: int, question: str, intent: str
) -> None:
    """Speech synthesised offline, carried at phone or toy bandwidth, recognised offline."""
    pcm = np.frombuffer(speaker.synthesize(question), np.int16)
    audio = soxr.resample(pcm, speaker.rate_hz, band_hz).astype(np.int16)
    if band_hz != 16000:  # a phone line: 8 kHz, then up to the recogniser's 16 kHz
        audio = soxr.resample(audio, band_hz, 16000).astype(np.int16)
    recognizer = Recognizer()
    heard = recognizer.transcribe(recognizer.new_decoder(), audio.tobytes())
    assert intent_of(heard) == intent, heard


def test_noise_is_not_mistaken_for_a_command() -> None:
    recognizer = Recognizer()
    noise = np.random.default_rng(5).normal(0, 30, 16000).astype(np.int16).tobytes()
    heard = recognizer.transcribe(recognizer.new_decoder(), noise)
    assert intent_of(heard) is None, heard


@pytest.mark.parametrize("band_hz", [16000, 8000])
def test_repeat_after_me_hears_open_vocabulary(speaker: PiperSpeaker, band_hz: int) -> None:
    """The grammar spots the command; the shared language-model pass recovers the words."""
    pcm = np.frombuffer(speaker.synthesize("Repeat after me. I like green apples."), np.int16)
    audio = soxr.resample(pcm, speaker.rate_hz, band_hz).astype(np.int16)
    if band_hz != 16000:
        audio = soxr.resample(audio, band_hz, 16000).astype(np.int16)
    recognizer = Recognizer()
    heard = recognizer.transcribe(recognizer.new_decoder(), audio.tobytes())
    reply = dialogue().reply(heard).text
    assert heard.startswith("repeat after me") and "like green apple" in reply, heard


def test_espeak_fallback_voice_is_understood() -> None:
    voice = EspeakSpeaker.shared()
    pcm = np.frombuffer(voice.synthesize("What is the date today?"), np.int16)
    assert voice.rate_hz == 22050 and 0.5 < len(pcm) / voice.rate_hz < 3.0
    audio = soxr.resample(pcm, voice.rate_hz, 16000).astype(np.int16)
    recognizer = Recognizer()
    assert intent_of(recognizer.transcribe(recognizer.new_decoder(), audio.tobytes())) == "date"


def test_a_broken_piper_falls_back_to_espeak(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken() -> PiperSpeaker:
        raise FileNotFoundError("en_US-joe-medium.onnx")

    monkeypatch.setattr(PiperSpeaker, "shared", staticmethod(broken))
    assert isinstance(load_speaker("piper"), EspeakSpeaker)
    assert isinstance(load_speaker("espeak"), EspeakSpeaker)


def test_phrases_come_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "phrases.toml"
    path.write_text('greeting = "Hi, I am Robo."\ngoodbye = "See you."\n')
    phrases = load_phrases(path)
    assert phrases.greeting == "Hi, I am Robo." and phrases.help == Phrases().help
    path.write_text('greting = "typo"\n')
    with pytest.raises(ValueError, match="unknown phrases"):
        load_phrases(path)
