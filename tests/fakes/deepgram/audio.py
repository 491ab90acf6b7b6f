"""Audio for the fake Deepgram: decoding what clients send, and making what Aura says.

The fake does not recognise speech. It decodes the audio it receives exactly as the query
declares it (``encoding=mulaw`` or ``linear16`` at ``sample_rate``, Deepgram's "Encoding"
and "Sample Rate" pages, https://developers.deepgram.com/docs/encoding), cuts it into 20 ms
frames and calls a frame voiced when its RMS level is above a threshold. Every event it
sends is timed by counting those frames, i.e. in audio time, never by the wall clock, so a
test may stream audio as fast as it likes and still get the timing a real-time caller
would get.

Aura's speech is a tone whose length is proportional to the text (:func:`tts_ms`, the same
rule as ``tests/fakes/openai_server.py``), so a test can tell how much text was heard from
how much audio came back.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from pipeline.audio import SampleAligner
from pipeline.g711 import pcm16_to_ulaw, rms_pcm16, ulaw_to_pcm16

#: the two raw encodings the fake decodes and produces (Deepgram calls them by these names)
WireEncoding = Literal["linear16", "mulaw"]
FRAME_MS = 20
#: frames louder than this RMS count as speech (the fixtures speak far above it)
VOICE_RMS = 400
TTS_MS_PER_CHAR = 20
TONE_HZ = 440.0


def tts_ms(text: str) -> float:
    """How long the fake's Aura speech for ``text`` lasts."""
    return len(text) * TTS_MS_PER_CHAR


def bytes_per_sample(encoding: WireEncoding) -> int:
    return 2 if encoding == "linear16" else 1


def audio_ms(n_bytes: int, encoding: WireEncoding, rate_hz: int) -> float:
    """The duration of ``n_bytes`` of raw mono audio."""
    return n_bytes / bytes_per_sample(encoding) / rate_hz * 1000


def speech_audio(text: str, encoding: WireEncoding, rate_hz: int) -> bytes:
    """Aura's answer to ``text``: ``tts_ms(text)`` of a tone, in the requested format."""
    n_samples = int(rate_hz * tts_ms(text) / 1000)
    t = np.arange(n_samples) / rate_hz
    pcm = (8000 * np.sin(2 * np.pi * TONE_HZ * t)).astype(np.int16).tobytes()
    return pcm16_to_ulaw(pcm) if encoding == "mulaw" else pcm


class VoiceFrames:
    """Decodes one stream of client audio and classifies it in 20 ms frames.

    Linear16 arrives as a byte stream (a sample may be split across two WebSocket
    messages), so an odd byte waits for the next message; an incomplete frame waits too.
    """

    def __init__(self, encoding: WireEncoding, rate_hz: int, threshold: int = VOICE_RMS):
        self.encoding = encoding
        self.rate_hz = rate_hz
        self.threshold = threshold
        self.frame_bytes = rate_hz * FRAME_MS // 1000 * 2
        self.frames = 0
        self._aligner = SampleAligner()
        self._pending = bytearray()

    @property
    def position_ms(self) -> float:
        """Audio time at the end of the last complete frame."""
        return self.frames * FRAME_MS

    def push(self, data: bytes) -> list[bool]:
        """Decode ``data``; one "voiced?" per frame it completes."""
        pcm = ulaw_to_pcm16(data) if self.encoding == "mulaw" else self._aligner.align(data)
        self._pending += pcm
        voiced: list[bool] = []
        while len(self._pending) >= self.frame_bytes:
            frame = bytes(self._pending[: self.frame_bytes])
            del self._pending[: self.frame_bytes]
            voiced.append(rms_pcm16(frame) > self.threshold)
        self.frames += len(voiced)
        return voiced


def words_of(text: str) -> list[str]:
    return text.split()


def plain_word(token: str) -> str:
    """A word as Deepgram's ``word`` field carries it: lower case, no punctuation."""
    return "".join(ch for ch in token.lower() if ch.isalnum() or ch == "'")


def spread(tokens: list[str], start_ms: float, end_ms: float) -> list[tuple[str, float, float]]:
    """Give each token an equal share of ``start_ms..end_ms`` (seconds out)."""
    if not tokens:
        return []
    step_ms = max(end_ms - start_ms, FRAME_MS) / len(tokens)
    return [
        (
            token,
            round((start_ms + i * step_ms) / 1000, 3),
            round((start_ms + (i + 1) * step_ms) / 1000, 3),
        )
        for i, token in enumerate(tokens)
    ]
