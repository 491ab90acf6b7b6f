"""Reading a recognition stream's messages into the cascade's turn events.

One reader per call, for each model's protocol: Nova-3 (``Results``, ``SpeechStarted``,
``UtteranceEnd``) and Flux (``TurnInfo``). A reader outlives its sockets: what it has told
the cascade (a turn under way, an eager end of turn and its words, Nova's final words of an
unfinished turn) carries over a reconnect, so the events of audio sent again on the next
socket are not told twice, and the turn resumes where the drop cut it.

Each reader also says how far the recogniser is done with the call's audio (a call offset,
see :mod:`.listen_hold`): Nova-3 with each final result, which covers the audio up to its
``start + duration``; Flux with each ``EndOfTurn`` (``audio_window_end``), and while a turn
is under way, from its start (``audio_window_start``) on, since Flux transcribes a turn as
a whole.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from pipeline.agents.cascade.stages import TurnEvents
from pipeline.agents.providers.deepgram.listen_hold import AudioHold
from pipeline.agents.providers.websocket import StreamError

#: words in an ``Error`` code that mean the request itself is wrong: retrying cannot help
PERMANENT_ERROR_WORDS = (
    "AUTH",
    "FORBIDDEN",
    "INVALID",
    "BAD_REQUEST",
    "UNSUPPORTED",
    "INSUFFICIENT",
    "UNPARSABLE",
    "NOT_FOUND",
    "NOT_ALLOWED",
)


def stream_error(message: dict[str, Any]) -> StreamError:
    """An in-band ``Error`` message as an exception :func:`websocket.classify` reads: an
    unknown code counts as transient (a reconnect costs little; giving up the stream for
    good on a passing fault costs the call its turn-taking)."""
    code = str(message.get("code") or message.get("err_code") or "UNKNOWN")
    text = message.get("description") or message.get("err_msg") or message.get("message")
    upper = code.upper()
    permanent = any(word in upper for word in PERMANENT_ERROR_WORDS)
    status = 401 if "AUTH" in upper else 403 if "FORBIDDEN" in upper else 0
    return StreamError(
        f"{code}: {text or 'no description'}", transient=not permanent, status=status
    )


class NoEvents:
    """Tells nobody: a reader's listener before :meth:`listen` and after the call ends."""

    def connected(self) -> None:
        return None

    def speech_started(self) -> None:
        return None

    def turn_ending(self, text: str) -> None:
        return None

    def turn_resumed(self) -> None:
        return None

    def turn_ended(self, text: str) -> None:
        return None

    def lost(self, exc: Exception) -> None:
        return None


class TurnReader(ABC):
    def __init__(self, hold: AudioHold) -> None:
        self.hold = hold
        self.events: TurnEvents = NoEvents()
        #: call offset up to which the recogniser has answered for the audio
        self.acked = 0
        #: speech_started was told and the turn has not ended since
        self._speaking = False

    @property
    @abstractmethod
    def in_turn(self) -> bool:
        """A turn is under way (its audio must be sent again after a drop)."""

    @abstractmethod
    def read(self, message: dict[str, Any]) -> None:
        """One JSON message from the socket; raises :class:`StreamError` for ``Error``."""

    def turn_from(self) -> int:
        """The earliest call offset the recogniser still needs to end the current turn."""
        return self.acked

    def keep_from(self, idle_replay_bytes: int) -> int:
        """Where a new socket should start hearing the call: the turn under way, or between
        turns only the last moments sent (what the recogniser may not have answered yet)."""
        if self.in_turn:
            return self.turn_from()
        return max(self.turn_from(), self.hold.sent - idle_replay_bytes)

    def forget(self, origin: int) -> None:
        """The stream was lost and the call's endpointer heard what came meanwhile: nothing
        told is pending any more, and the recogniser starts afresh at ``origin``."""
        self._speaking = False
        self.acked = origin

    def _started(self) -> None:
        if not self._speaking:
            self._speaking = True
            self.events.speech_started()


class NovaReader(TurnReader):
    """Nova-3: final results add up to the turn's words; ``speech_final`` (endpointing) or
    ``UtteranceEnd`` (a gap after the last word) ends the turn, whichever comes first. The
    other one, coming right after with no new words, ends nothing."""

    def __init__(self, hold: AudioHold) -> None:
        super().__init__(hold)
        self._words: list[str] = []

    @property
    def in_turn(self) -> bool:
        return self._speaking or bool(self._words)

    def read(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "Results":
            self._results(message)
        elif kind == "SpeechStarted":
            self._started()
        elif kind == "UtteranceEnd":
            self._end()
        elif kind == "Error":
            raise stream_error(message)

    def forget(self, origin: int) -> None:
        super().forget(origin)
        self._words.clear()

    def _results(self, message: dict[str, Any]) -> None:
        text = transcript(message)
        if not message.get("is_final"):
            if text:  # words without SpeechStarted (vad_events missed it): still barge-in
                self._started()
            return
        end_s = float(message.get("start") or 0.0) + float(message.get("duration") or 0.0)
        self.acked = max(self.acked, self.hold.offset_of(end_s))
        if text:
            self._started()
            self._words.append(text)
        if message.get("speech_final"):
            self._end()

    def _end(self) -> None:
        if not self.in_turn:
            return
        text = " ".join(self._words)
        self._words.clear()
        self._speaking = False
        self.events.turn_ended(text)


class FluxReader(TurnReader):
    """Flux: its turn events map one to one, but an eager end with the words already told
    is not told again (after a reconnect the replayed turn repeats it), and new words after
    one are told as a resumption first, so the cascade drops a reply on the old words."""

    def __init__(self, hold: AudioHold) -> None:
        super().__init__(hold)
        #: call offset where the turn under way began; None between turns
        self._turn_start: int | None = None
        #: the words of the eager end told and not yet resumed or ended
        self._eager: str | None = None

    @property
    def in_turn(self) -> bool:
        return self._turn_start is not None

    def turn_from(self) -> int:
        return self.acked if self._turn_start is None else self._turn_start

    def read(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "TurnInfo":
            self._turn_info(message)
        elif kind == "Error":
            raise stream_error(message)

    def forget(self, origin: int) -> None:
        super().forget(origin)
        self._turn_start = None
        self._eager = None

    def _turn_info(self, message: dict[str, Any]) -> None:
        event = message.get("event")
        text = str(message.get("transcript") or "").strip()
        window_start_s = float(message.get("audio_window_start") or 0.0)
        if event == "EndOfTurn":
            end_s = float(message.get("audio_window_end") or 0.0)
            self.acked = max(self.acked, self.hold.offset_of(end_s))
            self._turn_start = None
            self._eager = None
            self._speaking = False
            self.events.turn_ended(text)
            return
        # an Update may come between turns too: only turn events open one
        opens = event in ("EagerEndOfTurn", "TurnResumed") and self._turn_start is None
        if event == "StartOfTurn" or opens:
            self._turn_start = max(self.acked, self.hold.offset_of(window_start_s))
        if event == "StartOfTurn":
            self._started()
        elif event == "EagerEndOfTurn":
            self._started()
            if text != self._eager:
                if self._eager is not None:
                    self.events.turn_resumed()
                self._eager = text
                self.events.turn_ending(text)
        elif event == "TurnResumed" and self._eager is not None:
            self._eager = None
            self.events.turn_resumed()


def transcript(results: dict[str, Any]) -> str:
    """Nova-3: the best alternative's transcript of a ``Results`` message."""
    channel = results.get("channel")
    alternatives = channel.get("alternatives") if isinstance(channel, dict) else None
    if not alternatives or not isinstance(alternatives[0], dict):
        return ""
    return str(alternatives[0].get("transcript") or "").strip()
