"""ElevenLabs speech as a cascade stage: one socket per call (and voice), one context per reply.

The factory holds what every call shares (the options, the once-per-process permanent-failure
log); each call's stage holds its sockets. A reply (:meth:`ElevenLabsSpeech.speak`) connects on
its first sentence if the call has no usable socket for its voice yet: the first reply of the
call, or the first after a failure. Context ids are ``t0``, ``t1``... in the order of the
call's replies, never reused within a call, so a late message of a cancelled reply can never
be taken for the next one's.
"""

from __future__ import annotations

import asyncio
import logging

from pipeline.agents.base import CallInfo
from pipeline.agents.cascade.stages import (
    Attempt,
    OnSpokenAudio,
    SpeechTurn,
    StageFactory,
    TextToSpeech,
)
from pipeline.agents.providers.elevenlabs.connection import SpeechSocket
from pipeline.agents.providers.elevenlabs.options import (
    KEY_SETTING,
    ElevenLabsOptions,
    output_format,
)
from pipeline.agents.providers.elevenlabs.turn import ElevenLabsTurn
from pipeline.agents.providers.websocket import PermanentReporter, classify
from pipeline.agents.retry import Retry
from pipeline.call_logger import CallLog

log = logging.getLogger("pipeline.agents.providers.elevenlabs")

#: the API holds at most 5 contexts per socket, counted until their ``isFinal``; one is kept
#: for the bare keep-alive's default context. A socket with this many in use (barge-ins whose
#: contexts are still draining) is given up for a fresh one rather than refused a context.
MAX_REPLY_CONTEXTS = 4
#: how long opening the socket at the start of a call may take
PREPARE_TIMEOUT_S = 5.0


class ElevenLabsSpeech(TextToSpeech):
    provider = "elevenlabs"

    def __init__(
        self, options: ElevenLabsOptions, call: CallInfo, reporter: PermanentReporter
    ) -> None:
        self._options = options
        self._reporter = reporter
        #: the ``output_format`` asked for (``ulaw_8000`` on a phone line)
        self.output_format, self.output_spec = output_format(call.audio_out)
        self._sockets: dict[str, SpeechSocket] = {}
        self._lock = asyncio.Lock()
        self._replies = 0
        self._last_voice_id = options.voice_id
        self.log = CallLog.of(log, call.call_id, call.transport)

    def speak(self, voice: str, on_audio: OnSpokenAudio, attempt: Attempt) -> SpeechTurn:
        """A reply in ``voice`` (a voice id; empty: the configured one)."""
        context_id = f"t{self._replies}"
        self._replies += 1
        voice_id = voice or self._options.voice_id
        self._last_voice_id = voice_id
        return ElevenLabsTurn(
            self._socket_for,
            context_id,
            voice_id,
            self._options.voice_settings,
            on_audio,
            attempt,
            self.output_spec,
            self.log,
        )

    async def prepare(self, voice: str = "") -> None:
        """Open the call's socket now, so the first reply does not wait for the handshake."""
        voice_id = voice or self._options.voice_id
        await self._socket_for(voice_id, Attempt(0, "prepare", PREPARE_TIMEOUT_S))

    async def _socket_for(self, voice_id: str, attempt: Attempt) -> SpeechSocket:
        """The call's socket for ``voice_id``, opened if it has none that can take a reply.

        Sockets to other voices are closed once idle: a call normally keeps one voice, and
        an idle socket costs a keep-alive every few seconds for nothing.
        """
        async with self._lock:
            for other, idle in list(self._sockets.items()):
                if other != voice_id and idle.idle:
                    del self._sockets[other]
                    await idle.aclose()
            found = self._sockets.get(voice_id)
            if found is not None:
                if found.usable and found.contexts_in_use < MAX_REPLY_CONTEXTS:
                    return found
                del self._sockets[voice_id]
                await found.aclose()
            options = self._options
            socket = await SpeechSocket.open(
                options.url(voice_id, self.output_format),
                options.headers(),
                attempt.timeout_s,
                voice_id=voice_id,
                where=options.where(voice_id),
                keepalive_interval_s=options.keepalive_interval_s,
                log=self.log,
            )
            self._sockets[voice_id] = socket
            return socket

    def classify(self, exc: Exception) -> Retry | None:
        return classify(exc)

    def report_permanent(self, exc: Exception) -> None:
        self._reporter.report(self.kind, self._options.where(self._last_voice_id), exc)

    async def aclose(self) -> None:
        sockets = list(self._sockets.values())
        self._sockets.clear()
        await asyncio.gather(*(socket.aclose() for socket in sockets))


class ElevenLabsSpeechFactory(StageFactory[ElevenLabsSpeech]):
    """Process-wide: the options; each call gets a stage of its own (and its sockets)."""

    provider = "elevenlabs"

    def __init__(self, options: ElevenLabsOptions) -> None:
        self.options = options
        self._reporter = PermanentReporter("elevenlabs", KEY_SETTING)

    def create(self, call: CallInfo) -> ElevenLabsSpeech:
        return ElevenLabsSpeech(self.options, call, self._reporter)
