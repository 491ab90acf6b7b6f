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
  one-shot transcription, or the backup stage, hears them) until it is back.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from pipeline.agents.base import AgentOutput
from pipeline.agents.cascade.chat_run import ChatRun


@dataclass(frozen=True, slots=True)
class Heard:
    """A turn the recogniser committed: its words, and a chat run already on them."""

    text: str
    run: ChatRun | None


class Listening:
    """The cascade's side of a streaming recogniser (its :class:`TurnEvents`)."""

    def __init__(
        self,
        out: AgentOutput,
        speculate: Callable[[str], ChatRun],
        log: logging.LoggerAdapter[logging.Logger] | logging.Logger,
    ) -> None:
        self._out = out
        self._speculate = speculate
        self._log = log
        #: the stream is up: it commits the turns
        self.live = False
        self._eager: tuple[str, ChatRun] | None = None
        self._committed: dict[int, Heard] = {}

    # -- TurnEvents ------------------------------------------------------------------------

    def connected(self) -> None:
        if not self.live:
            self._log.info("speech recogniser connected: it finds the turns")
        self.live = True

    def speech_started(self) -> None:
        self._out.user_speech_started()

    def turn_ending(self, text: str) -> None:
        self._drop_eager()
        if text.strip():
            self._eager = (text, self._speculate(text))

    def turn_resumed(self) -> None:
        self._drop_eager()

    def turn_ended(self, text: str) -> None:
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
        for stale in self._committed.values():  # a turn superseded before it began
            if stale.run is not None:
                self._out.tasks.spawn(stale.run.cancel(), "drop-eager", supervised=False)
        self._committed.clear()
        turn_id = self._out.commit_turn()
        self._committed[turn_id] = Heard(text, run)

    def lost(self, exc: Exception) -> None:
        if self.live:
            self._log.warning(
                "speech recogniser lost (%r): the call's endpointer finds the turns", exc
            )
        self.live = False
        self._drop_eager()

    # -- the cascade's side ----------------------------------------------------------------

    def take(self, turn_id: int) -> Heard | None:
        """The words of a turn this recogniser committed (None: the endpointer's turn)."""
        return self._committed.pop(turn_id, None)

    def _drop_eager(self) -> None:
        eager, self._eager = self._eager, None
        if eager is not None:
            self._out.tasks.spawn(eager[1].cancel(), "drop-eager", supervised=False)
