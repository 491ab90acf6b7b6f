"""Local speech: the offline agent's voice (piper, or espeak-ng if piper cannot load) as a
cascade stage.

The voice is loaded once per process by the factory (piper: 61 MB, about 1.5-3 s) and shared
by every call; each sentence is synthesised in a worker thread, so the event loop keeps
serving other calls, and handed on whole (piper has nothing to give before the sentence is
done).
"""

from __future__ import annotations

import logging
import threading

from pipeline.agents.base import CallInfo
from pipeline.agents.cascade.stages import Attempt, OnAudio, SentenceSpeech, StageFactory
from pipeline.agents.local.agent import load_speaker
from pipeline.agents.local.voice import Speaker
from pipeline.agents.retry import Retry
from pipeline.audio import AudioSpec

log = logging.getLogger("pipeline.agents.providers.local")

_ignored_voices: set[str] = set()
_ignored_lock = threading.Lock()


class LocalSpeech(SentenceSpeech):
    provider = "local"

    def __init__(self, speaker: Speaker, output_spec: AudioSpec) -> None:
        self._speaker = speaker
        self.output_spec = output_spec

    async def synthesize(self, text: str, voice: str, on_audio: OnAudio, attempt: Attempt) -> None:
        """Speak ``text`` as ``output_spec`` PCM16, sentence by sentence (whole samples).

        ``voice`` is not used: the process has one local voice, and a persona's voice
        usually names a cloud provider's. ``attempt.timeout_s`` is not applied either: a
        synthesis cannot be interrupted in its thread, and a retry would only queue behind
        it on the shared voice.
        """
        if voice:
            _note_ignored(voice)
        async for pcm in self._speaker.speak(text):
            await on_audio(pcm)

    def classify(self, exc: Exception) -> Retry | None:
        """Permanent: a local failure (a missing model, a broken install) repeats itself."""
        return None

    def report_permanent(self, exc: Exception) -> None:
        log.error("local speech failed: %r", exc, exc_info=exc)


class LocalSpeechFactory(StageFactory[LocalSpeech]):
    """Process-wide: the loaded voice every call speaks with."""

    provider = "local"

    def __init__(self, voice: str = "piper", speaker: Speaker | None = None) -> None:
        """Blocking (loads the voice: call it at start-up). ``voice``: "piper", falling back
        to espeak-ng when piper cannot load, or "espeak"; ``speaker``: a voice already made
        (tests use a deterministic piper), instead of ``voice``."""
        if speaker is None:
            speaker = load_speaker(voice)
        else:
            speaker.load()
        self.speaker = speaker
        self.output_spec = AudioSpec("pcm16", speaker.rate_hz)

    def create(self, call: CallInfo) -> LocalSpeech:
        return LocalSpeech(self.speaker, self.output_spec)


def _note_ignored(voice: str) -> None:
    """Say once per process and voice name that a persona asks for a voice we do not have."""
    with _ignored_lock:
        if voice in _ignored_voices:
            return
        _ignored_voices.add(voice)
    log.info("local speech has one voice; the voice %r is ignored", voice)
