"""Local transcription: the offline agent's recogniser (Whisper tiny.en) as a cascade stage.

Open vocabulary, so a chat model behind it (a local Ollama, say) hears free speech, not only
the offline dialogue's commands; that is also why it gets no prompt of expected phrases. The
model is loaded once per process by the factory and shared by every call; each turn is
recognised in a worker thread, and CTranslate2 releases the GIL while it computes, so other
calls go on meanwhile. The cascade starts recognition in the caller's pause
(``CascadeAgent.prepare``), as for any recogniser.
"""

from __future__ import annotations

import asyncio
import logging

from pipeline.agents.base import CallInfo
from pipeline.agents.cascade.stages import Attempt, SpeechToText, StageFactory
from pipeline.agents.local.hearing import RECOGNIZER_RATE_HZ, Recognizer
from pipeline.agents.retry import Retry
from pipeline.audio import AudioSpec

log = logging.getLogger("pipeline.agents.providers.local")

#: what the recogniser decodes: PCM16 at 16 kHz (a phone's 8 kHz is upsampled by the cascade)
STT_SPEC = AudioSpec("pcm16", RECOGNIZER_RATE_HZ)


class LocalTranscription(SpeechToText):
    provider = "local"
    input_spec = STT_SPEC

    def __init__(self, recognizer: Recognizer) -> None:
        self._recognizer = recognizer

    async def transcribe(self, utterance: bytes, attempt: Attempt) -> str:
        """Recognised in a worker thread (about 0.1-0.3 s a turn on one core).
        ``attempt.timeout_s`` is not applied: a recognition cannot be interrupted, and a
        retry would only queue behind it."""
        return await asyncio.to_thread(self._recognizer.transcribe, utterance)

    def classify(self, exc: Exception) -> Retry | None:
        """Permanent: a local failure (a missing model, a broken install) repeats itself."""
        return None

    def report_permanent(self, exc: Exception) -> None:
        log.error("local transcription failed: %r", exc, exc_info=exc)


class LocalTranscriptionFactory(StageFactory[LocalTranscription]):
    """Process-wide: the loaded recogniser every call shares."""

    provider = "local"

    def __init__(self, recognizer: Recognizer | None = None) -> None:
        """Blocking (checks and loads the model, ~0.5-1 s): a missing or broken install fails
        start-up rather than the first call."""
        self.recognizer = recognizer or Recognizer()
        self.recognizer.load()

    def create(self, call: CallInfo) -> LocalTranscription:
        return LocalTranscription(self.recognizer)
