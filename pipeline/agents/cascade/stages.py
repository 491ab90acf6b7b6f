"""The three stages of a cascaded agent, one interface each, whatever the provider.

A call's cascade is a speech-to-text stage, a chat stage and a text-to-speech stage, chosen
independently (settings, or a persona). Every provider's stage implements the interface of
its kind here, in a module of its own under ``pipeline/agents/providers/<provider>/``; the
cascade (``agent.py``) knows only these interfaces: it never names a provider.

What every stage shares (:class:`Stage`): the provider's name for logs and metrics, how its
errors classify (transient: retried within the turn's deadline, see
``pipeline/agents/retry.py``; permanent: reported once, loudly) and a per-call ``aclose``.
Each request gets an :class:`Attempt`: the turn it serves, a request id an operator can find
in the provider's logs, and the timeout left for it.

Stages are made per call by a :class:`StageFactory`, which holds what is shared by the
process (connection pools, loaded models); a stage with a connection of its own (a streaming
socket) keeps it for the whole call, across turns.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from pipeline.agents.base import CallInfo
from pipeline.agents.retry import Retry
from pipeline.audio import AudioSpec
from pipeline.tools.base import ToolRequest, ToolSpec

#: one Chat Completions message (``role``, ``content``, maybe ``tool_calls``)
Message = dict[str, Any]

#: told each piece of synthesised audio as it arrives (whole samples of ``output_spec``)
OnAudio = Callable[[bytes], Awaitable[None]]
#: told each piece of a reply's audio with the sentences it belongs to: ``(pcm, first,
#: last)``, indexes in the order :meth:`SpeechTurn.say` was given them; ``first < last``
#: when the provider speaks several sentences as one and cannot tell where each begins
OnSpokenAudio = Callable[[bytes, int, int], Awaitable[None]]
#: told each complete sentence of a streamed answer the moment it ends
OnSentence = Callable[[str], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Attempt:
    """One request of a stage."""

    turn_id: int
    #: "<call id>-<turn id>-<stage>": sent to the provider where it takes one, and logged
    request_id: str
    #: connect/read timeout of this attempt (never more than what is left of the deadline)
    timeout_s: float


@dataclass(slots=True)
class ChatReply:
    """What one streamed answer amounted to."""

    text: str = ""
    sentences: int = 0
    #: the model asked to end the call (its goodbye is in ``text``)
    end_call: bool = False
    #: tools the model asked for (``end_call`` aside), in its order
    tool_calls: list[ToolRequest] = field(default_factory=list)


class Stage(ABC):
    #: the stage's kind in logs and request ids: "transcription", "chat", "speech"
    kind: ClassVar[str]
    #: the provider, for logs and metrics ("openai", "local", ...)
    provider: str

    @abstractmethod
    def classify(self, exc: Exception) -> Retry | None:
        """Transient (a :class:`Retry`) or permanent (None) for one of this stage's errors."""

    def report_permanent(self, exc: Exception) -> None:  # noqa: B027 - optional hook
        """A permanent error happened (a bad key, an unknown model): tell the operator."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """The call is over: release what is the call's own (a socket)."""


class SpeechToText(Stage):
    kind = "transcription"
    #: the audio :meth:`transcribe` (and a streaming stage's :meth:`feed`) takes
    input_spec: AudioSpec

    @abstractmethod
    async def transcribe(self, utterance: bytes, attempt: Attempt) -> str:
        """The text of one user turn (``input_spec`` audio); empty when nothing was said."""


class TurnEvents(Protocol):
    """What a streaming recogniser tells its cascade as the caller speaks."""

    def connected(self) -> None:
        """The stream is up (again): its turn-taking is in charge from now on."""

    def speech_started(self) -> None:
        """The caller started speaking (``StartOfTurn``, ``SpeechStarted``): barge-in."""

    def turn_ending(self, text: str) -> None:
        """The caller has probably finished saying ``text`` (``EagerEndOfTurn``): a reply may
        be prepared, not yet spoken."""

    def turn_resumed(self) -> None:
        """The caller went on after :meth:`turn_ending` (``TurnResumed``)."""

    def turn_ended(self, text: str) -> None:
        """The caller's turn is over and it said ``text`` (``EndOfTurn``, ``speech_final``,
        ``UtteranceEnd``); empty text means noise, not a turn."""

    def lost(self, exc: Exception) -> None:
        """The stream failed beyond its retries; until :meth:`connected` again, the call's
        own endpointer finds the turns and :meth:`SpeechToText.transcribe` hears them."""


class StreamingSpeechToText(SpeechToText):
    """A recogniser that hears the whole call on one socket and finds the turns itself.

    :meth:`listen` runs for the whole call: it connects, reads, keeps the socket alive
    between turns and reconnects after a drop, sending again the audio the provider had not
    acknowledged, so a turn in progress is not lost. :meth:`transcribe` (one turn's audio,
    as the endpointer cut it) is what the cascade falls back on while the stream is down.
    """

    @abstractmethod
    async def listen(self, events: TurnEvents) -> None:
        """Run the stream until cancelled; report through ``events``; raise only for an
        error that retrying will not cure (after calling ``events.lost``)."""

    @abstractmethod
    def feed(self, audio: bytes) -> None:
        """One inbound frame (``input_spec``), in order; never blocks (held while the stream
        is down, bounded)."""

    def stalled(self) -> None:
        """The call's endpointer heard a whole turn while the stream said nothing at all: it
        takes audio and does not answer. Open it again (the turn's audio goes again); if it
        stalls once more, report it lost."""


class Chat(Stage):
    kind = "chat"

    @abstractmethod
    async def reply(
        self,
        messages: list[Message],
        on_sentence: OnSentence,
        on_progress: Callable[[], None],
        attempt: Attempt,
        tools: Sequence[ToolSpec] = (),
    ) -> ChatReply:
        """Stream one answer to ``messages``: each sentence to ``on_sentence`` as it ends,
        ``on_progress`` whenever anything arrives (it keeps the turn's deadline alive).
        ``tools`` are offered besides ``end_call``; the calls asked for are in the reply."""


class SpeechTurn(ABC):
    """One reply's speech on a :class:`TextToSpeech` stage: sentences in, audio out.

    A streaming provider keeps one socket per call and one context (or flush) per reply; a
    request-per-sentence provider speaks each sentence in turn (:class:`SentenceSpeech`).
    Either way the audio reaches the stage's ``on_audio`` in order, tagged with the
    sentences it belongs to, and an error surfaces from :meth:`say` or :meth:`finish`.
    """

    #: the last sentence whose audio is known to be all delivered (-1: none yet). After a
    #: failure the cascade may speak the sentences after it again on a fresh turn; audio of
    #: a sentence not known to be complete is never repeated.
    spoken_through: int = -1

    @abstractmethod
    async def say(self, text: str) -> None:
        """Add one sentence to the reply. May wait (back-pressure, or until the sentence is
        spoken, for a provider that speaks one at a time)."""

    @abstractmethod
    async def finish(self) -> None:
        """No more sentences: return once all their audio has gone to ``on_audio``."""

    @abstractmethod
    async def cancel(self) -> None:
        """Stop now (barge-in, failure): drop what is not yet spoken. Idempotent."""


class TextToSpeech(Stage):
    kind = "speech"
    #: the audio the stage produces
    output_spec: AudioSpec

    @abstractmethod
    def speak(self, voice: str, on_audio: OnSpokenAudio, attempt: Attempt) -> SpeechTurn:
        """Start one reply in ``voice`` (empty: the stage's default)."""

    async def prepare(self, voice: str = "") -> None:
        """The call has started: open what the first reply needs (a socket), so the caller
        does not wait for a handshake. Optional; a reply opens what is not open."""


class SentenceSpeech(TextToSpeech):
    """A provider that takes one request per sentence (HTTP speech, a local synthesiser)."""

    @abstractmethod
    async def synthesize(self, text: str, voice: str, on_audio: OnAudio, attempt: Attempt) -> None:
        """Speak ``text`` in ``voice``, streaming the audio to ``on_audio`` as it arrives."""

    def speak(self, voice: str, on_audio: OnSpokenAudio, attempt: Attempt) -> SpeechTurn:
        return _SentenceBySentence(self, voice, on_audio, attempt)


class _SentenceBySentence(SpeechTurn):
    """:meth:`say` speaks its sentence before it returns: the next sentence's request goes
    out only when this one's audio is all handed on, so audio never interleaves."""

    def __init__(
        self, stage: SentenceSpeech, voice: str, on_audio: OnSpokenAudio, attempt: Attempt
    ) -> None:
        self._stage = stage
        self._voice = voice
        self._on_audio = on_audio
        self._attempt = attempt
        self._said = 0

    async def say(self, text: str) -> None:
        index = self._said
        self._said += 1

        async def on_audio(pcm: bytes) -> None:
            await self._on_audio(pcm, index, index)

        # one request per sentence: each gets an id of its own ("…-tts0", "…-tts1")
        attempt = replace(self._attempt, request_id=f"{self._attempt.request_id}{index}")
        await self._stage.synthesize(text, self._voice, on_audio, attempt)
        self.spoken_through = index

    async def finish(self) -> None:
        return None

    async def cancel(self) -> None:
        return None


S = TypeVar("S", bound=Stage, covariant=True)


class StageFactory(ABC, Generic[S]):
    """Process-wide: what a provider's stage shares between calls; makes one per call."""

    #: the provider name settings and personas use
    provider: str

    @abstractmethod
    def create(self, call: CallInfo) -> S:
        """This call's stage."""

    async def aclose(self) -> None:
        """The process is shutting down: release the shared resources."""


@dataclass(frozen=True, slots=True)
class CascadeStages:
    """One call's three stages."""

    stt: SpeechToText
    chat: Chat
    tts: TextToSpeech

    def all(self) -> tuple[Stage, ...]:
        return (self.stt, self.chat, self.tts)
