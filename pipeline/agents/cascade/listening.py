"""Turn-taking by a streaming recogniser: what its events do to the call.

With a recogniser that finds turns itself (Deepgram Flux, Nova-3), the call's own
endpointer is no longer the one that commits turns while the stream is up:

* ``StartOfTurn`` / ``SpeechStarted`` is barge-in (as is the endpointer's own onset,
  whichever comes first);
* ``EagerEndOfTurn`` starts the chat on the words so far, speculatively; ``TurnResumed``
  cancels that run; the reply is spoken only once the turn has ended;
* ``EndOfTurn`` (``speech_final``, ``UtteranceEnd``) commits the turn, keeping the
  speculative run if it was about these very words;
* when the stream is lost, the endpointer commits turns again (and the recogniser's
  one-shot transcription, or the backup stage, hears them) until it is back;
* the endpointer also watches the stream: a whole turn it heard (at least
  :data:`STALL_SPEECH_MS` of speech) during which the stream said nothing at all means the
  stream is stalled; the stage opens it again (the turn's audio goes again), and if it is
  lost instead, that turn is answered from the endpointer's audio, so it is not dropped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from pipeline.agents.base import AgentOutput
from pipeline.agents.cascade.chat_run import ChatRun

#: a turn with this much speech that the stream said nothing of means it is stalled (a real
#: recogniser says something within a second of speech: SpeechStarted, interim words)
STALL_SPEECH_MS = 600
#: how long after a stall the turn's audio is kept, to answer it if the stream is lost
STALL_KEEP_S = 10.0


@dataclass(frozen=True, slots=True)
class Heard:
    """A turn to answer: the recogniser's words and a chat run already on them, or (when
    the stream stalled on it) the endpointer's audio of it."""

    text: str
    run: ChatRun | None
    utterance: bytes = b""


@dataclass(frozen=True, slots=True)
class Unanswered:
    """A turn the endpointer heard and the stalled stream did not."""

    utterance: bytes
    at_s: float


class Listening:
    """The cascade's side of a streaming recogniser (its :class:`TurnEvents`)."""

    def __init__(
        self,
        out: AgentOutput,
        speculate: Callable[[str], ChatRun],
        stalled: Callable[[], None],
        log: logging.LoggerAdapter[logging.Logger] | logging.Logger,
        clock: Callable[[], float],
    ) -> None:
        self._out = out
        self._speculate = speculate
        self._stalled = stalled
        self._log = log
        self._clock = clock
        #: the stream is up: it commits the turns
        self.live = False
        self._eager: tuple[str, ChatRun] | None = None
        self._committed: dict[int, Heard] = {}
        #: when the stream last told anything
        self._told_s = clock()
        self._unanswered: Unanswered | None = None

    # -- TurnEvents ------------------------------------------------------------------------

    def connected(self) -> None:
        if not self.live:
            self._log.info("speech recogniser connected: it finds the turns")
        self.live = True

    def speech_started(self) -> None:
        self._told_s = self._clock()
        self._out.user_speech_started()

    def turn_ending(self, text: str) -> None:
        self._told_s = self._clock()
        self._drop_eager()
        if text.strip():
            self._eager = (text, self._speculate(text))

    def turn_resumed(self) -> None:
        self._told_s = self._clock()
        self._drop_eager()

    def turn_ended(self, text: str) -> None:
        self._told_s = self._clock()
        self._unanswered = None
        eager, self._eager = self._eager, None
        run = None
        if eager is not None:
            if eager[0] == text:
                run = eager[1]
            else:
                self._out.tasks.spawn(eager[1].cancel(), "drop-eager", supervised=False)
        if not text.strip():
            if run is not None:
                self._out.tasks.spawn(run.cancel(), "drop-eager", supervised=False)
            return
        self._commit(Heard(text, run))

    def _commit(self, heard: Heard) -> None:
        for stale in self._committed.values():  # a turn superseded before it began
            if stale.run is not None:
                self._out.tasks.spawn(stale.run.cancel(), "drop-eager", supervised=False)
        self._committed.clear()
        turn_id = self._out.commit_turn(heard.text if not heard.utterance else None)
        if turn_id is not None:
            self._committed[turn_id] = heard
        elif heard.run is not None:  # an "uh-huh" over the reply: not a turn, not answered
            self._out.tasks.spawn(heard.run.cancel(), "drop-eager", supervised=False)

    def lost(self, exc: Exception) -> None:
        if self.live:
            self._log.warning(
                "speech recogniser lost (%r): the call's endpointer finds the turns", exc
            )
        self.live = False
        self._drop_eager()
        unanswered, self._unanswered = self._unanswered, None
        if unanswered is not None and self._clock() - unanswered.at_s <= STALL_KEEP_S:
            self._commit(Heard("", None, unanswered.utterance))

    # -- the endpointer's view ---------------------------------------------------------------

    def endpointer_turn(self, utterance: bytes, duration_ms: float, speech_ms: float) -> None:
        """The endpointer heard a whole turn: if the stream said nothing through it, the
        stream is stalled."""
        now_s = self._clock()
        if not self.live or speech_ms < STALL_SPEECH_MS:
            return
        if self._told_s >= now_s - duration_ms / 1000:
            return  # it did hear something: its turn, its decision
        self._log.warning(
            "speech recogniser said nothing through %.0f ms of speech: stalled", speech_ms
        )
        self._unanswered = Unanswered(utterance, now_s)
        self._stalled()

    # -- the cascade's side ----------------------------------------------------------------

    def take(self, turn_id: int) -> Heard | None:
        """The words of a turn this recogniser committed (None: the endpointer's turn)."""
        return self._committed.pop(turn_id, None)

    def _drop_eager(self) -> None:
        eager, self._eager = self._eager, None
        if eager is not None:
            self._out.tasks.spawn(eager[1].cancel(), "drop-eager", supervised=False)
