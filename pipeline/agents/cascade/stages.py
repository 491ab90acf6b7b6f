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
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import ClassVar, Generic, TypeVar

from pipeline.agents.base import CallInfo
from pipeline.agents.retry import Retry
from pipeline.audio import AudioSpec

#: told each piece of synthesised audio as it arrives (whole samples of ``output_spec``)
OnAudio = Callable[[bytes], Awaitable[None]]
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
    #: the audio :meth:`transcribe` takes
    input_spec: AudioSpec

    @abstractmethod
    async def transcribe(self, utterance: bytes, attempt: Attempt) -> str:
        """The text of one user turn (``input_spec`` audio); empty when nothing was said."""


class Chat(Stage):
    kind = "chat"

    @abstractmethod
    async def reply(
        self,
        messages: list[dict[str, str]],
        on_sentence: OnSentence,
        on_progress: Callable[[], None],
        attempt: Attempt,
    ) -> ChatReply:
        """Stream one answer to ``messages``: each sentence to ``on_sentence`` as it ends,
        ``on_progress`` whenever anything arrives (it keeps the turn's deadline alive)."""


class TextToSpeech(Stage):
    kind = "speech"
    #: the audio :meth:`synthesize` produces
    output_spec: AudioSpec

    @abstractmethod
    async def synthesize(self, text: str, voice: str, on_audio: OnAudio, attempt: Attempt) -> None:
        """Speak ``text`` in ``voice`` (empty: the stage's default), streaming the audio to
        ``on_audio`` as it arrives."""


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
