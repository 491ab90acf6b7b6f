"""Deepgram Aura streaming speech, straight from Deepgram or through Cloudflare AI Gateway.

A call has one ``/v1/speak`` socket (``speak_socket.py``), opened when its first reply's
first sentence is said (or earlier, by :meth:`DeepgramSpeech.prepare`) and kept for every
reply after it: each reply (``speak_turn.py``) streams its sentences into it and flushes at
most twice. The socket is replaced when it failed or stalled, when a reply asks for another
voice (the voice is part of the socket's address), and when its flush budget
(``speak_budget.py``) has no room left for a reply's closing flush.

The audio comes in the format the far end plays when Aura offers it (``speak_format.py``):
μ-law 8 kHz on a phone, so nothing is converted on the way out; PCM16 at 24 kHz on a toy.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from pipeline.agents.base import CallInfo
from pipeline.agents.cascade.stages import (
    Attempt,
    OnSpokenAudio,
    SpeechTurn,
    StageFactory,
    TextToSpeech,
)
from pipeline.agents.providers.deepgram.access import DeepgramAccess
from pipeline.agents.providers.deepgram.speak_budget import (
    EARLY_FLUSH_BELOW,
    FLUSH_LIMIT,
    FLUSH_WINDOW_S,
    FlushBudget,
)
from pipeline.agents.providers.deepgram.speak_format import (
    DEFAULT_LINEAR16_RATE_HZ,
    LINEAR16_RATES_HZ,
    AuraEncoding,
    output_spec,
    speak_url,
)
from pipeline.agents.providers.deepgram.speak_socket import AuraSocket
from pipeline.agents.providers.deepgram.speak_turn import AuraTurn
from pipeline.agents.providers.websocket import PermanentReporter, classify
from pipeline.agents.retry import Retry

DEFAULT_VOICE = "aura-2-thalia-en"


@dataclass(frozen=True, slots=True)
class SpeakOptions:
    access: DeepgramAccess
    #: Deepgram's model name (``aura-2-thalia-en``) or the bare speaker (``thalia``);
    #: through Cloudflare it becomes the ``speaker`` parameter
    voice: str = DEFAULT_VOICE
    #: ``auto``: μ-law 8 kHz for a phone, linear16 at the far end's rate otherwise;
    #: ``linear16``: always linear16 at ``linear16_rate_hz`` (for a route that cannot speak
    #: μ-law; the call's session converts)
    encoding: AuraEncoding = "auto"
    linear16_rate_hz: int = DEFAULT_LINEAR16_RATE_HZ
    #: Deepgram's flush limit per socket, and the window it counts in
    flush_limit: int = FLUSH_LIMIT
    flush_window_s: float = FLUSH_WINDOW_S
    #: a reply's early flush (after its first sentence) is sent only while fewer flushes
    #: than this were sent in the window; 0 turns early flushes off
    early_flush_below: int = EARLY_FLUSH_BELOW
    #: how long :meth:`DeepgramSpeech.prepare` waits for the socket to open
    connect_timeout_s: float = 5.0

    def __post_init__(self) -> None:
        if self.linear16_rate_hz not in LINEAR16_RATES_HZ:
            rates = ", ".join(str(r) for r in sorted(LINEAR16_RATES_HZ))
            raise ValueError(f"linear16_rate_hz={self.linear16_rate_hz}: Aura speaks {rates}")
        if self.flush_limit < 1:
            raise ValueError("flush_limit must be at least 1")


class DeepgramSpeech(TextToSpeech):
    """One call's Aura speech: one socket, reused reply after reply."""

    def __init__(self, options: SpeakOptions, call: CallInfo, reporter: PermanentReporter):
        self.provider = options.access.provider
        self.output_spec = output_spec(options.encoding, call.audio_out, options.linear16_rate_hz)
        self._options = options
        self._call_id = call.call_id
        self._reporter = reporter
        self._socket: AuraSocket | None = None
        self._opening = asyncio.Lock()

    def speak(self, voice: str, on_audio: OnSpokenAudio, attempt: Attempt) -> SpeechTurn:
        chosen = voice or self._options.voice

        async def source(timeout_s: float) -> AuraSocket:
            return await self._socket_for(chosen, timeout_s)

        return AuraTurn(source, on_audio, attempt)

    async def prepare(self, voice: str = "") -> None:
        """Open the socket now (at the start of a call), so the first reply does not wait
        for the handshake. Optional: a reply opens it when it is not open."""
        await self._socket_for(voice or self._options.voice, self._options.connect_timeout_s)

    def classify(self, exc: Exception) -> Retry | None:
        return classify(exc)

    def report_permanent(self, exc: Exception) -> None:
        self._reporter.report(self.kind, self._options.access.where("aura"), exc)

    async def aclose(self) -> None:
        socket, self._socket = self._socket, None
        if socket is not None:
            await socket.close()

    async def _socket_for(self, voice: str, timeout_s: float) -> AuraSocket:
        """The call's socket for a new reply in ``voice``: the open one when it can serve
        it (healthy, that voice, a flush left, not stuck), else a new one (the old one
        closed)."""
        async with self._opening:
            socket = self._socket
            if socket is not None and not (
                socket.usable
                and socket.voice == voice
                and socket.budget.has_room()
                and socket.silence_s() < timeout_s  # e.g. a Clear still unanswered
            ):
                self._socket = None
                await socket.close()
            if self._socket is None:
                self._socket = await self._open(voice, timeout_s)
            return self._socket

    async def _open(self, voice: str, timeout_s: float) -> AuraSocket:
        options = self._options
        access = options.access
        budget = FlushBudget(options.flush_limit, options.flush_window_s, options.early_flush_below)
        return await AuraSocket.open(
            speak_url(access, voice, self.output_spec),
            access.headers(),
            voice,
            self.output_spec,
            budget,
            f"{access.where('aura')} for {self._call_id}",
            timeout_s,
        )


class DeepgramSpeakFactory(StageFactory[DeepgramSpeech]):
    """Aura speech for every call; nothing is shared between calls but the error reports."""

    def __init__(self, options: SpeakOptions) -> None:
        self.options = options
        self.provider = options.access.provider
        self._reporter = PermanentReporter(self.provider, options.access.key_setting)

    def create(self, call: CallInfo) -> DeepgramSpeech:
        return DeepgramSpeech(self.options, call, self._reporter)
