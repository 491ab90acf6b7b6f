"""A stage with a backup: when the provider fails a call, the call moves to another one.

Each wrapper has the interface of its kind, so the cascade does not know it is there: it
calls the wrapper, the wrapper calls the stage in charge, and the cascade's retries
(``pipeline/agents/retry.py``, one deadline per turn) drive the switch:

* a permanent error (a bad key) or a stall switches at once; other transient errors switch
  on the second one in a row, so a single dropped connection is simply retried;
* once switched, the error is reported transient, so the cascade's next attempt (a short
  backoff later, well within the turn's deadline) goes to the backup, and the caller hears
  the answer instead of an apology;
* the call stays on the backup from then on; :class:`Failovers` counts the switches by
  stage and provider for the operator's metrics.

The backup's audio is converted to the primary's formats, which the call was set up with.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

from pipeline.agents.base import CallInfo
from pipeline.agents.cascade.stages import (
    Attempt,
    Chat,
    ChatReply,
    Message,
    OnSentence,
    OnSpokenAudio,
    SpeechToText,
    SpeechTurn,
    Stage,
    StageFactory,
    StreamingSpeechToText,
    TextToSpeech,
    TurnEvents,
)
from pipeline.agents.retry import Retry
from pipeline.audio import Converter
from pipeline.tools.base import ToolSpec

log = logging.getLogger("pipeline.agents.cascade")

S = TypeVar("S", bound=Stage)
#: transient failures in a row that move a call to the backup
SWITCH_AFTER_FAILURES = 2


class Failovers:
    """Process-wide count of switches, by (stage kind, failed provider, backup provider)."""

    def __init__(self) -> None:
        self.counts: Counter[tuple[str, str, str]] = Counter()

    def switched(self, kind: str, primary: str, backup: str) -> None:
        self.counts[(kind, primary, backup)] += 1


class _Pair(Generic[S]):
    """The bookkeeping every wrapper shares: which stage is in charge, and when to switch."""

    def __init__(self, primary: S, backup: S, failovers: Failovers, call_id: str) -> None:
        self.primary = primary
        self.backup = backup
        self.current = primary
        self._failovers = failovers
        self._call_id = call_id
        self._failures = 0

    @property
    def switched(self) -> bool:
        return self.current is self.backup

    def succeeded(self) -> None:
        self._failures = 0

    def failed(self, exc: Exception) -> None:
        """Note a failure of the stage in charge; switch when it is time."""
        if self.switched:
            return
        self._failures += 1
        verdict = self.primary.classify(exc)
        if verdict is None:
            self.primary.report_permanent(exc)
        if (
            verdict is None
            or isinstance(exc, TimeoutError)
            or (self._failures >= SWITCH_AFTER_FAILURES)
        ):
            self.switch(exc)

    def switch(self, exc: Exception) -> None:
        if self.switched:
            return
        primary, backup = self.primary, self.backup
        self.current = backup
        self._failovers.switched(primary.kind, primary.provider, backup.provider)
        log.warning(
            "call %s: %s %s failed (%r); switching this call to %s",
            self._call_id,
            primary.provider,
            primary.kind,
            exc,
            backup.provider,
            extra={"call_id": self._call_id},
        )

    def classify(self, exc: Exception) -> Retry | None:
        if self.switched and not self._from_backup(exc):
            return Retry()  # the next attempt goes to the backup
        return self.current.classify(exc)

    def _from_backup(self, exc: Exception) -> bool:
        return getattr(exc, "_failover_from", None) is self.backup

    def tag(self, exc: Exception, stage: Stage) -> None:
        exc._failover_from = stage  # type: ignore[attr-defined]

    async def aclose(self) -> None:
        for stage in (self.primary, self.backup):
            try:
                await stage.aclose()
            except Exception as exc:  # one stage failing to close must not keep the other
                log.warning("%s %s stage did not close: %r", stage.provider, stage.kind, exc)


class FailoverChat(Chat):
    def __init__(self, pair: _Pair[Chat]) -> None:
        self._pair = pair
        self.provider = pair.primary.provider

    async def reply(
        self,
        messages: list[Message],
        on_sentence: OnSentence,
        on_progress: Callable[[], None],
        attempt: Attempt,
        tools: Sequence[ToolSpec] = (),
    ) -> ChatReply:
        stage = self._pair.current
        try:
            result = await stage.reply(messages, on_sentence, on_progress, attempt, tools)
        except Exception as exc:
            self._pair.tag(exc, stage)
            self._pair.failed(exc)
            raise
        self._pair.succeeded()
        return result

    def classify(self, exc: Exception) -> Retry | None:
        return self._pair.classify(exc)

    async def aclose(self) -> None:
        await self._pair.aclose()


class FailoverSpeech(TextToSpeech):
    def __init__(self, pair: _Pair[TextToSpeech]) -> None:
        self._pair = pair
        self.provider = pair.primary.provider
        self.output_spec = pair.primary.output_spec

    def speak(self, voice: str, on_audio: OnSpokenAudio, attempt: Attempt) -> SpeechTurn:
        stage = self._pair.current
        if stage is self._pair.primary:
            return _WatchedTurn(self._pair, stage, stage.speak(voice, on_audio, attempt))
        # the backup's voices are its own: the primary's voice name means nothing to it
        if stage.output_spec == self.output_spec:
            return _WatchedTurn(self._pair, stage, stage.speak("", on_audio, attempt))
        converted = _Converted(Converter(stage.output_spec, self.output_spec), on_audio)
        turn = _WatchedTurn(self._pair, stage, stage.speak("", converted.audio, attempt))
        turn.on_finished = converted.flush
        return turn

    async def prepare(self, voice: str = "") -> None:
        await self._pair.current.prepare(voice if not self._pair.switched else "")

    def classify(self, exc: Exception) -> Retry | None:
        return self._pair.classify(exc)

    async def aclose(self) -> None:
        await self._pair.aclose()


class _Converted:
    """The backup's audio in the call's format; the resampler's tail goes out at the end."""

    def __init__(self, converter: Converter, on_audio: OnSpokenAudio) -> None:
        self._converter = converter
        self._on_audio = on_audio
        self._last = (0, 0)

    async def audio(self, pcm: bytes, first: int, last: int) -> None:
        self._last = (first, last)
        if out := self._converter.process(pcm):
            await self._on_audio(out, first, last)

    async def flush(self) -> None:
        if tail := self._converter.flush():
            await self._on_audio(tail, *self._last)


class _WatchedTurn(SpeechTurn):
    """A speech turn whose failures count towards its stage's switch."""

    def __init__(self, pair: _Pair[TextToSpeech], stage: Stage, turn: SpeechTurn) -> None:
        self._pair = pair
        self._stage = stage
        self._turn = turn
        #: after a successful finish (the converter's tail)
        self.on_finished: Callable[[], Awaitable[None]] | None = None

    @property
    def spoken_through(self) -> int:  # type: ignore[override]
        return self._turn.spoken_through

    async def say(self, text: str) -> None:
        await self._watch(self._turn.say(text))

    async def finish(self) -> None:
        await self._watch(self._turn.finish())
        if self.on_finished is not None:
            await self.on_finished()
        self._pair.succeeded()

    async def cancel(self) -> None:
        await self._turn.cancel()

    async def _watch(self, step: Awaitable[None]) -> None:
        try:
            await step
        except Exception as exc:
            self._pair.tag(exc, self._stage)
            self._pair.failed(exc)
            raise


class FailoverTranscription(SpeechToText):
    """Batch transcription with a backup (the primary may be a streaming recogniser: see
    :class:`FailoverRecognizer`)."""

    def __init__(self, pair: _Pair[SpeechToText]) -> None:
        self._pair = pair
        self.provider = pair.primary.provider
        self.input_spec = pair.primary.input_spec

    async def transcribe(self, utterance: bytes, attempt: Attempt) -> str:
        stage = self._pair.current
        if stage.input_spec != self.input_spec:
            converter = Converter(self.input_spec, stage.input_spec)
            utterance = converter.process(utterance) + converter.flush()
        try:
            text = await stage.transcribe(utterance, attempt)
        except Exception as exc:
            self._pair.tag(exc, stage)
            self._pair.failed(exc)
            raise
        self._pair.succeeded()
        return text

    def classify(self, exc: Exception) -> Retry | None:
        return self._pair.classify(exc)

    async def aclose(self) -> None:
        await self._pair.aclose()


class FailoverRecognizer(FailoverTranscription, StreamingSpeechToText):
    """A streaming recogniser with a backup: when its stream is lost, the call's endpointer
    finds the turns (see ``listening.py``) and the backup transcribes them at once."""

    def __init__(self, pair: _Pair[SpeechToText], primary: StreamingSpeechToText) -> None:
        super().__init__(pair)
        self._stream = primary

    async def listen(self, events: TurnEvents) -> None:
        try:
            await self._stream.listen(_SwitchOnLoss(events, self._pair))
        except Exception as exc:
            self._pair.switch(exc)
            raise

    def feed(self, audio: bytes) -> None:
        self._stream.feed(audio)

    def stalled(self) -> None:
        self._stream.stalled()


class _SwitchOnLoss:
    """Passes the recogniser's events on; a lost stream moves transcription to the backup."""

    def __init__(self, events: TurnEvents, pair: _Pair[SpeechToText]) -> None:
        self._events = events
        self._pair = pair

    def connected(self) -> None:
        self._events.connected()

    def speech_started(self) -> None:
        self._events.speech_started()

    def turn_ending(self, text: str) -> None:
        self._events.turn_ending(text)

    def turn_resumed(self) -> None:
        self._events.turn_resumed()

    def turn_ended(self, text: str) -> None:
        self._events.turn_ended(text)

    def lost(self, exc: Exception) -> None:
        self._pair.switch(exc)
        self._events.lost(exc)


class FailoverFactory(StageFactory[S]):
    """Makes each call's stage as a primary with a backup."""

    def __init__(
        self,
        primary: StageFactory[S],
        backup: StageFactory[S],
        failovers: Failovers,
        wrap: Callable[[S, S, Failovers, str], S],
    ) -> None:
        self.provider = primary.provider
        self._primary = primary
        self._backup = backup
        self._failovers = failovers
        self._wrap = wrap

    def create(self, call: CallInfo) -> S:
        return self._wrap(
            self._primary.create(call), self._backup.create(call), self._failovers, call.call_id
        )

    async def aclose(self) -> None:
        await self._primary.aclose()
        await self._backup.aclose()


def chat_pair(primary: Chat, backup: Chat, failovers: Failovers, call_id: str) -> Chat:
    return FailoverChat(_Pair(primary, backup, failovers, call_id))


def speech_pair(
    primary: TextToSpeech, backup: TextToSpeech, failovers: Failovers, call_id: str
) -> TextToSpeech:
    return FailoverSpeech(_Pair(primary, backup, failovers, call_id))


def transcription_pair(
    primary: SpeechToText, backup: SpeechToText, failovers: Failovers, call_id: str
) -> SpeechToText:
    pair: _Pair[SpeechToText] = _Pair(primary, backup, failovers, call_id)
    if isinstance(primary, StreamingSpeechToText):
        return FailoverRecognizer(pair, primary)
    return FailoverTranscription(pair)
