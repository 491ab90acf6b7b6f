"""Questions in voices that are not the agent's own: espeak-ng languages and variants, so
recognition is tested on speech it was not tuned on (the agent speaks with piper)."""

from __future__ import annotations

import numpy as np
import soxr

from pipeline.agents.local.espeak import EspeakSpeaker


def espeak_speech(text: str, voice: str, rate_hz: int, lead_s: float = 0.3) -> bytes:
    """PCM16 at ``rate_hz`` of ``text`` in an espeak-ng ``voice`` ("en-gb-scotland+f3"),
    after ``lead_s`` of silence (as the endpointer keeps before a turn)."""
    speaker = EspeakSpeaker.shared()
    pcm = np.frombuffer(speaker.synthesize(text, voice), np.int16)
    source_hz = speaker.rate_hz
    audio = soxr.resample(pcm, source_hz, rate_hz).astype(np.int16)
    lead = np.zeros(int(lead_s * rate_hz), np.int16)
    return np.concatenate([lead, audio]).tobytes()


def phone_band(pcm16_8k: bytes) -> bytes:
    """8 kHz speech brought up to the recogniser's 16 kHz, as the bridge does for phones."""
    audio = np.frombuffer(pcm16_8k, np.int16)
    return bytes(soxr.resample(audio, 8000, 16000).astype(np.int16).tobytes())


def worn_phone_speech(text: str, speed: float, snr_db: float, seed: int = 7) -> bytes:
    """``text`` in the agent's own piper voice made hard to hear, the same every run: sped up
    (sox-style, pitch too), white noise at ``snr_db``, through an 8 kHz μ-law line, and
    brought to the recogniser's 16 kHz."""
    from bench.hearing_set import over_line
    from pipeline.agents.local.voice import PiperSpeaker

    speaker = PiperSpeaker.shared(deterministic=True)
    pcm = speaker.synthesize(text)
    return phone_band(over_line(pcm, speaker.rate_hz, 8000, speed, snr_db, seed))
