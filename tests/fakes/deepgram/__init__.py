"""A fake Deepgram (Nova-3, Flux, Aura; direct or through Cloudflare AI Gateway) on
loopback. See :mod:`tests.fakes.deepgram_server` for how tests use it."""

from tests.fakes.deepgram.audio import TTS_MS_PER_CHAR, speech_audio, tts_ms
from tests.fakes.deepgram.records import ClientMessage, Connection, Fault, SentMessage, Tuning
from tests.fakes.deepgram.server import API_KEY, CF_TOKEN, FakeDeepgram

__all__ = [
    "API_KEY",
    "CF_TOKEN",
    "TTS_MS_PER_CHAR",
    "ClientMessage",
    "Connection",
    "FakeDeepgram",
    "Fault",
    "SentMessage",
    "Tuning",
    "speech_audio",
    "tts_ms",
]
