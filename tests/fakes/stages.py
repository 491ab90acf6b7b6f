"""Scripted cascade stages for the call core on a virtual clock.

These stand in for providers only where no socket is wanted: the core's turn-taking with a
streaming recogniser is tested here, in virtual time; each provider's real client is tested
against its loopback fake (``tests/fakes/deepgram``, ``tests/fakes/elevenlabs``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from pipeline.agents.cascade.stages import (
    Attempt,
    Chat,
    ChatReply,
    Message,
    OnAudio,
    OnSentence,
    SentenceSpeech,
    StreamingSpeechToText,
    TurnEvents,
)
from pipeline.agents.retry import Retry
from pipeline.audio import PCM16_16K, AudioSpec
from pipeline.tools.base import ToolSpec
from tests.fakes.agents import tone_pcm

#: the scripted speech: 20 ms of tone per character
MS_PER_CHAR = 20


class ScriptedRecognizer(StreamingSpeechToText):
    """A recogniser whose events the test sends (``self.events``)."""

    provider = "scripted"
    input_spec = PCM16_16K

    def __init__(self, batch_text: str = "") -> None:
        self.events: TurnEvents | None = None
        self.frames = 0
        self.batch_text = batch_text
        self.transcribed: list[bytes] = []
        self.listening = asyncio.Event()
        self.stalls = 0

    def classify(self, exc: Exception) -> Retry | None:
        return None

    async def listen(self, events: TurnEvents) -> None:
        self.events = events
        events.connected()
        self.listening.set()
        await asyncio.Event().wait()  # until the call ends

    def feed(self, audio: bytes) -> None:
        self.frames += 1

    def stalled(self) -> None:
        self.stalls += 1

    async def transcribe(self, utterance: bytes, attempt: Attempt) -> str:
        self.transcribed.append(utterance)
        return self.batch_text


@dataclass
class ChatCall:
    messages: list[Message]
    started_s: float
    cancelled: bool = False
    finished: bool = False


@dataclass
class ScriptedChat(Chat):
    """Answers every request with ``answer`` after ``first_token_s``."""

    answer: Callable[[list[Message]], list[str]]
    first_token_s: float = 0.1
    provider: str = "scripted"
    calls: list[ChatCall] = field(default_factory=list)

    def classify(self, exc: Exception) -> Retry | None:
        return None

    async def reply(
        self,
        messages: list[Message],
        on_sentence: OnSentence,
        on_progress: Callable[[], None],
        attempt: Attempt,
        tools: Sequence[ToolSpec] = (),
    ) -> ChatReply:
        call = ChatCall(list(messages), asyncio.get_running_loop().time())
        self.calls.append(call)
        try:
            await asyncio.sleep(self.first_token_s)
            sentences = self.answer(messages)
            for sentence in sentences:
                on_progress()
                await on_sentence(sentence)
        except asyncio.CancelledError:
            call.cancelled = True
            raise
        call.finished = True
        return ChatReply(" ".join(sentences), len(sentences))


class ToneSpeech(SentenceSpeech):
    """A tone of ``MS_PER_CHAR`` per character after ``first_audio_s``."""

    provider = "scripted"

    def __init__(self, first_audio_s: float = 0.1, spec: AudioSpec = PCM16_16K) -> None:
        self.first_audio_s = first_audio_s
        self.output_spec = spec
        self.spoken: list[str] = []

    def classify(self, exc: Exception) -> Retry | None:
        return None

    async def synthesize(self, text: str, voice: str, on_audio: OnAudio, attempt: Attempt) -> None:
        self.spoken.append(text)
        await asyncio.sleep(self.first_audio_s)
        pcm = tone_pcm(len(text) * MS_PER_CHAR, rate_hz=self.output_spec.rate_hz)
        step = self.output_spec.bytes_for_ms(100)
        for offset in range(0, len(pcm), step):
            await on_audio(pcm[offset : offset + step])


class Down(ConnectionResetError):
    """What a failing scripted stage raises: transient, as a dropped connection is."""


class Refused(PermissionError):
    """What a scripted stage with a bad key raises: permanent."""


def scripted_verdict(exc: Exception) -> Retry | None:
    return None if isinstance(exc, Refused) else Retry()


@dataclass
class FailingChat(Chat):
    """Every request fails with ``error`` after ``after_s``."""

    error: Callable[[], Exception]
    after_s: float = 0.05
    provider: str = "failing"
    attempts: int = 0

    def classify(self, exc: Exception) -> Retry | None:
        return scripted_verdict(exc)

    async def reply(
        self,
        messages: list[Message],
        on_sentence: OnSentence,
        on_progress: Callable[[], None],
        attempt: Attempt,
        tools: Sequence[ToolSpec] = (),
    ) -> ChatReply:
        self.attempts += 1
        await asyncio.sleep(self.after_s)
        raise self.error()


class FailingSpeech(SentenceSpeech):
    """Every sentence fails with ``error`` before any audio."""

    provider = "failing"
    output_spec = PCM16_16K

    def __init__(self, error: Callable[[], Exception]) -> None:
        self.error = error
        self.attempts = 0

    def classify(self, exc: Exception) -> Retry | None:
        return scripted_verdict(exc)

    async def synthesize(self, text: str, voice: str, on_audio: OnAudio, attempt: Attempt) -> None:
        self.attempts += 1
        await asyncio.sleep(0.05)
        raise self.error()
