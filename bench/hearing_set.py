"""A varied set of spoken questions for the offline agent, none in the agent's exact voice
settings: espeak-ng accents and variants, the one piper voice the registries offer (joe,
the agent's voice, slowed and made livelier), each at 0.9x / 1x / 1.1x speed (sox's
``speed``: resampled, so pitch moves too), clean and with white noise at 20 dB SNR, over a
phone line (8 kHz μ-law) and a toy's 16 kHz.

Everything is generated offline and seeded, so two runs hear the same audio.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache

import numpy as np
import soxr

from pipeline.g711 import pcm16_to_ulaw, ulaw_to_pcm16

#: (what is said, the intent it asks for)
QUESTIONS: tuple[tuple[str, str], ...] = (
    ("What time is it?", "time"),
    ("What's the time?", "time"),
    ("Tell me the time, please.", "time"),
    ("What day is it?", "date"),
    ("What's the date today?", "date"),
    ("Can you repeat after me: the purple elephant dances.", "repeat"),
    ("Repeat after me, good morning sunshine.", "repeat"),
    ("Bye!", "goodbye"),
    ("Thank you, goodbye.", "goodbye"),
    ("Hello there.", "greeting"),
    ("Help.", "help"),
    ("What can you do?", "help"),
)

#: what callers also say, that the agent has no answer for: it should say it did not catch
#: them, not take them for an intent (what a looser matcher or a keener recogniser costs)
UNANSWERABLE: tuple[str, ...] = (
    "What's the weather like?",
    "Play some music.",
    "I want to order a pizza.",
    "How old are you?",
    "Where do you live?",
    "Tell me a story.",
    "My name is Anna.",
    "Turn on the lights.",
)

ESPEAK_VOICES = (
    "en-us",
    "en-us+f3",
    "en-gb-scotland+f3",
    "en-029+m3",
    "en-gb-x-rp+klatt",
    "en-us-nyc+m5",
    "en+f2",  # espeak-ng names British English "en"
    "en-gb-x-gbclan+m1",
)
#: piper's joe with (length scale, noise scale): slower and livelier than the agent speaks
PIPER_VOICES = (("joe-slow", 1.2, 0.8), ("joe-lively", 0.95, 0.9))
SPEEDS = (0.9, 1.0, 1.1)
NOISE_SNR_DB = 20.0
BANDS_HZ = (8000, 16000)
RECOGNIZER_HZ = 16000
#: silence before the question, as the endpointer keeps before a turn
LEAD_S = 0.3


@dataclass(frozen=True, slots=True)
class Sample:
    text: str
    intent: str
    voice: str
    family: str  # "espeak" or "piper"
    speed: float
    noisy: bool
    band_hz: int


def samples(voices: int | None = None) -> Iterator[Sample]:
    """Every combination; ``voices`` keeps only the first few espeak voices (quick runs)."""
    espeak = ESPEAK_VOICES[:voices] if voices else ESPEAK_VOICES
    named = [(v, "espeak") for v in espeak] + [(name, "piper") for name, _, _ in PIPER_VOICES]
    for (voice, family), (text, intent), speed, noisy, band in itertools.product(
        named, QUESTIONS, SPEEDS, (False, True), BANDS_HZ
    ):
        yield Sample(text, intent, voice, family, speed, noisy, band)


def unanswerable_samples(voices: int | None = None) -> Iterator[Sample]:
    """:data:`UNANSWERABLE` in every voice, clean and noisy, on both lines, at normal speed;
    their intent is "none"."""
    for sample in samples(voices):
        if sample.speed == 1.0 and sample.text == QUESTIONS[0][0]:  # one per voicing
            yield from (dataclasses.replace(sample, text=t, intent="none") for t in UNANSWERABLE)


@cache
def speech(text: str, voice: str) -> tuple[bytes, int]:
    """PCM16 of ``text`` in ``voice`` and its rate (cached: each is used 12 times)."""
    if voice.startswith("joe-"):
        return _piper(text, voice)
    from pipeline.agents.local.espeak import EspeakSpeaker

    speaker = EspeakSpeaker.shared()
    return speaker.synthesize(text, voice), speaker.rate_hz


def _piper(text: str, voice: str) -> tuple[bytes, int]:
    from piper import SynthesisConfig

    from pipeline.agents.local.voice import PiperSpeaker

    speaker = PiperSpeaker.shared()
    speaker.load()
    _, length, noise = next(v for v in PIPER_VOICES if v[0] == voice)
    config = SynthesisConfig(length_scale=length, noise_scale=noise)
    chunks = speaker._voice.synthesize(text, config)  # the bench's own settings
    return b"".join(c.audio_int16_bytes for c in chunks), speaker.rate_hz


def at_band(sample: Sample, seed: int = 0) -> bytes:
    """The sample as the caller's line carries it: PCM16 at ``band_hz`` (μ-law decoded
    for a phone), with the lead silence."""
    pcm, rate_hz = speech(sample.text, sample.voice)
    snr_db = NOISE_SNR_DB if sample.noisy else None
    return over_line(pcm, rate_hz, sample.band_hz, sample.speed, snr_db, seed)


def over_line(
    pcm16: bytes,
    rate_hz: int,
    band_hz: int,
    speed: float = 1.0,
    snr_db: float | None = None,
    seed: int = 0,
    lead_s: float = LEAD_S,
) -> bytes:
    """Speech as a caller's line carries it: played at ``speed`` (sox's ``speed``: as if
    recorded at ``rate_hz * speed``, so pitch moves too), after ``lead_s`` of silence, with
    white noise ``snr_db`` below the voiced samples' power (None: clean), as PCM16 at
    ``band_hz`` (through μ-law and back for a phone line). Seeded: the same every run."""
    audio = np.frombuffer(pcm16, np.int16).astype(np.float32) / 32768
    audio = soxr.resample(audio, rate_hz * speed, band_hz)
    audio = np.concatenate([np.zeros(int(lead_s * band_hz), np.float32), audio])
    if snr_db is not None:
        voiced = audio[np.abs(audio) > 0.01]
        power = float(np.mean(voiced**2)) if len(voiced) else 1e-6
        noise_rms = np.sqrt(power / 10 ** (snr_db / 10))
        rng = np.random.default_rng(seed)
        audio = audio + rng.normal(0, noise_rms, len(audio)).astype(np.float32)
    line = (np.clip(audio, -1, 1) * 32767).astype(np.int16).tobytes()
    return ulaw_to_pcm16(pcm16_to_ulaw(line)) if band_hz == 8000 else line


def for_recognizer(pcm16: bytes, band_hz: int) -> bytes:
    """The line's audio at the recogniser's 16 kHz, as the bridge converts it."""
    if band_hz == RECOGNIZER_HZ:
        return pcm16
    audio = np.frombuffer(pcm16, np.int16)
    return bytes(soxr.resample(audio, band_hz, RECOGNIZER_HZ).astype(np.int16).tobytes())
