"""Local transcription: the offline agent's hearing (pocketsphinx) as a cascade stage.

It recognises what the local dialogue understands (its JSGF grammar: the time, the date,
greetings, help, goodbye, "repeat after me …" with open vocabulary after it), not free
speech: a chat model behind it hears those commands reliably, little else.

A recognition decoder costs 0.1-0.5 s to build (it loads the acoustic model) and holds one
utterance's state, so each call uses one of its own. Rather than building one per call, the
factory keeps the decoders of finished calls for the next ones (a few, 29 MB each) and
builds its first at start-up; a call that finds none idle builds its own in a worker thread
as soon as it is created, while the greeting plays, as the local agent does. Reuse does not
change what a later call hears: each utterance is decoded whole (``full_utt``, batch
cepstral normalisation over that utterance alone), so a decoder keeps nothing from the last.

Recognition runs in a worker thread, as in the local agent, but pocketsphinx's binding keeps
the GIL while it decodes: the event loop still stalls for the decode, about 20-70 ms for a
command, 0.3-1.5 s for the open-vocabulary pass after "repeat after me". Feeding the audio in
pieces would release it between them but loses the whole-utterance normalisation, and with it
recognition on phone audio; a process of its own would cure it (not done here).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

from pipeline.agents.base import CallInfo
from pipeline.agents.cascade.stages import Attempt, SpeechToText, StageFactory
from pipeline.agents.local.hearing import RECOGNIZER_RATE_HZ, CallListener, Recognizer
from pipeline.agents.retry import Retry
from pipeline.audio import AudioSpec

log = logging.getLogger("pipeline.agents.providers.local")

#: what the recogniser decodes: PCM16 at 16 kHz (a phone's 8 kHz is upsampled by the cascade)
STT_SPEC = AudioSpec("pcm16", RECOGNIZER_RATE_HZ)


class LocalTranscription(SpeechToText):
    provider = "local"
    input_spec = STT_SPEC

    def __init__(self, factory: LocalTranscriptionFactory, listener: CallListener) -> None:
        self._factory = factory
        self._listener = listener

    async def transcribe(self, utterance: bytes, attempt: Attempt) -> str:
        """Recognised in a worker thread (about 50 ms a turn, 0.5-1 s for "repeat after
        me"; see the module's note on the GIL). ``attempt.timeout_s`` is not applied: a
        recognition cannot be interrupted, and a retry would only queue behind it."""
        if not utterance:  # pocketsphinx fails on an empty buffer (IndexError)
            return ""
        return await asyncio.to_thread(self._listener.transcribe, utterance)

    def classify(self, exc: Exception) -> Retry | None:
        """Permanent: a local failure (a missing model, a broken install) repeats itself."""
        return None

    def report_permanent(self, exc: Exception) -> None:
        log.error("local transcription failed: %r", exc, exc_info=exc)

    async def aclose(self) -> None:
        """Give the call's decoder back for the next call (unless a cancelled turn's thread
        still uses it: then it is dropped with the call)."""
        self._factory.give_back(self._listener.release_decoder())


class LocalTranscriptionFactory(StageFactory[LocalTranscription]):
    """Process-wide: the recogniser (its grammar, its shared open-vocabulary decoder) and
    the idle decoders of finished calls."""

    provider = "local"

    def __init__(self, recognizer: Recognizer | None = None, spare_decoders: int = 2) -> None:
        """Blocking (0.1-0.5 s): builds the first decoder now, so a missing or broken
        pocketsphinx fails start-up rather than the first call, and that call finds it ready.
        ``spare_decoders``: how many finished calls' decoders are kept for later calls."""
        self.recognizer = recognizer or Recognizer()
        self._spare_decoders = spare_decoders
        self._lock = threading.Lock()
        self._idle: list[Any] = [self.recognizer.new_decoder()] if spare_decoders > 0 else []

    @property
    def idle_decoders(self) -> int:
        """Decoders waiting for a call."""
        with self._lock:
            return len(self._idle)

    def create(self, call: CallInfo) -> LocalTranscription:
        with self._lock:
            decoder = self._idle.pop() if self._idle else None
        listener = CallListener(self.recognizer, decoder)
        if decoder is None:
            _prepare_soon(listener)
        return LocalTranscription(self, listener)

    def give_back(self, decoder: Any) -> None:
        """A finished call's decoder, for a later call (dropped beyond ``spare_decoders``)."""
        if decoder is None:
            return
        with self._lock:
            if len(self._idle) < self._spare_decoders:
                self._idle.append(decoder)

    async def aclose(self) -> None:
        with self._lock:
            self._idle.clear()


def _prepare_soon(listener: CallListener) -> None:
    """Build the call's decoder in a worker thread now, not on its first turn; the first
    turn waits for it if it comes sooner. Without a running loop the first turn builds it."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return
    loop.run_in_executor(None, listener.prepare).add_done_callback(_consume)


def _consume(done: asyncio.Future[None]) -> None:
    """Retrieve a failed preparation's error, so asyncio does not log it as lost: the first
    turn meets it too (it builds the decoder again, and raises) and reports it there."""
    if not done.cancelled():
        done.exception()
