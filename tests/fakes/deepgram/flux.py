"""Flux streaming recognition with turn detection (``/v2/listen``), without I/O.

The messages follow ``deepgram-python-sdk`` ``src/deepgram/listen/v2/types``
(``Connected``: ``request_id``, ``sequence_id``; ``TurnInfo``: ``event``, ``turn_index``,
``audio_window_start``, ``audio_window_end``, ``transcript``, ``words``,
``end_of_turn_confidence``; ``Error``: ``code``, ``description``) and Workers AI's
``flux.json`` (``sequence_id`` "starts at 0 and increments for each message the server
sends"). The turn rules are those of "Understanding the Flux State Machine"
(https://developers.deepgram.com/docs/flux/state):

1. ``Update`` about every 0.25 s of audio (:attr:`Tuning.flux_update_ms`) unless the state
   changed on that frame;
2. ``EagerEndOfTurn`` always carries a nonempty transcript (the fake skips the eager event
   of a turn whose transcript is empty);
3. ``TurnResumed`` only follows an ``EagerEndOfTurn``;
4. the ``EndOfTurn`` transcript equals the last eager one unless a ``TurnResumed`` came in
   between (new speech after the eager event is what changes the transcript);
5. ``turn_index`` increments right after ``EndOfTurn``.

Timing, in audio time: ``StartOfTurn`` on the first voiced frame; ``EagerEndOfTurn``
:attr:`Tuning.flux_eager_ms` after the last voiced frame, only with
``eager_eot_threshold``; ``EndOfTurn`` :attr:`Tuning.flux_eot_ms` after it, or at
``eot_timeout_ms`` when that is sooner or when ``eot_threshold=1.0`` turned the model's own
end of turn off ("Bring Your Own Turn Detection"). ``ForceEndTurn`` ends the turn at once
with ``trigger: "manual"`` ("Force End Turn"); the model's ends carry ``trigger: "model"``.

``Update`` is sent only within a turn: the state page does not say whether it continues
between turns, and the fake's choice is the quieter one.

Each stretch of speech takes the next scripted transcript: the one that opens a turn, and
one more for each ``TurnResumed``, appended to the turn's transcript.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from tests.fakes.deepgram.audio import FRAME_MS, VoiceFrames, spread, words_of
from tests.fakes.deepgram.params import FluxParams
from tests.fakes.deepgram.records import Emit, Tuning

Phase = Literal["idle", "ongoing", "awaiting"]
WORD_CONFIDENCE = 0.98
#: end-of-turn confidence while the caller speaks
SPEAKING_CONFIDENCE = 0.02


@dataclass(slots=True)
class FluxStream:
    params: FluxParams
    next_transcript: Callable[[], str]
    tuning: Tuning
    request_id: str
    frames: VoiceFrames = field(init=False)
    phase: Phase = "idle"
    turn_index: int = 0
    turn_start_ms: float = 0.0
    last_voiced_ms: float = 0.0
    last_sent_ms: float = 0.0
    tokens: list[str] = field(default_factory=list)
    revealed: int = 0
    sequence_id: int = 0

    def __post_init__(self) -> None:
        self.frames = VoiceFrames(self.params.encoding, self.params.rate_hz, self.tuning.voice_rms)

    # -- client messages ---------------------------------------------------------------

    def connected(self) -> Emit:
        return self._emit({"type": "Connected", "request_id": self.request_id})

    def audio(self, data: bytes) -> list[Emit]:
        base = self.frames.frames
        out: list[Emit] = []
        for i, voiced in enumerate(self.frames.push(data)):
            out += self._frame(voiced, (base + i + 1) * FRAME_MS)
        return out

    def force_end_turn(self) -> list[Emit]:
        if self.phase == "idle":
            return []
        return [self._end_of_turn(self.frames.position_ms, "manual")]

    def close_stream(self) -> list[Emit]:
        """The open turn ends on the audio heard so far, then the socket closes normally."""
        return [*self.force_end_turn(), Emit(close=(1000, ""))]

    def error(self, code: str, description: str) -> Emit:
        return self._emit({"type": "Error", "code": code, "description": description})

    # -- audio time ----------------------------------------------------------------------

    def _frame(self, voiced: bool, end_ms: float) -> list[Emit]:
        if voiced:
            self.last_voiced_ms = end_ms
            if self.phase == "idle":
                self.phase = "ongoing"
                self.turn_start_ms = end_ms - FRAME_MS
                self.tokens = words_of(self.next_transcript())
                self.revealed = 0
                return [self._turn_info("StartOfTurn", end_ms, first=True)]
            if self.phase == "awaiting":
                self.phase = "ongoing"
                self.tokens += words_of(self.next_transcript())
                return [self._turn_info("TurnResumed", end_ms)]
        elif self.phase != "idle":
            silence_ms = end_ms - self.last_voiced_ms
            if silence_ms >= self._eot_after_ms:
                return [self._end_of_turn(end_ms, "model")]
            if (
                self.phase == "ongoing"
                and self.params.eager_eot_threshold is not None
                and silence_ms >= self.tuning.flux_eager_ms
                and self.tokens
            ):
                self.phase = "awaiting"
                self.revealed = len(self.tokens)
                return [self._turn_info("EagerEndOfTurn", end_ms)]
        if self.phase != "idle" and end_ms - self.last_sent_ms >= self.tuning.flux_update_ms:
            if self.phase == "ongoing":
                self.revealed = min(len(self.tokens), self.revealed + 1)
            return [self._turn_info("Update", end_ms)]
        return []

    @property
    def _eot_after_ms(self) -> float:
        timeout_ms = self.params.eot_timeout_ms
        if self.params.eot_threshold >= 1.0:
            return timeout_ms
        return min(self.tuning.flux_eot_ms, timeout_ms)

    def _end_of_turn(self, end_ms: float, trigger: str) -> Emit:
        self.revealed = len(self.tokens)
        emit = self._turn_info("EndOfTurn", end_ms, trigger=trigger)
        self.phase = "idle"
        self.turn_index += 1
        return emit

    def _confidence(self, end_ms: float) -> float:
        """Rises with silence: the eager threshold at the eager point, the end-of-turn
        threshold at the end of turn (so each event's confidence passes its threshold)."""
        if self.phase == "idle":
            return 0.0
        silence_ms = end_ms - self.last_voiced_ms
        if silence_ms <= 0:
            return SPEAKING_CONFIDENCE
        eot = min(self.params.eot_threshold, 1.0)
        eager = self.params.eager_eot_threshold
        eager_ms = self.tuning.flux_eager_ms
        if eager is not None and silence_ms <= eager_ms:
            return round(eager * silence_ms / eager_ms, 3)
        floor_conf, floor_ms = (eager, eager_ms) if eager is not None else (0.0, 0.0)
        span_ms = max(self._eot_after_ms - floor_ms, 1.0)
        rise = (eot - floor_conf) * min((silence_ms - floor_ms) / span_ms, 1.0)
        return round(floor_conf + rise, 3)

    def _turn_info(self, event: str, end_ms: float, *, first: bool = False, **extra: str) -> Emit:
        tokens = self.tokens[: self.revealed]
        words_end_ms = max(self.last_voiced_ms, self.turn_start_ms + FRAME_MS)
        words = [
            {"word": token, "confidence": WORD_CONFIDENCE, "start": start_s, "end": end_s}
            for token, start_s, end_s in spread(tokens, self.turn_start_ms, words_end_ms)
        ]
        self.last_sent_ms = end_ms
        message = {
            "type": "TurnInfo",
            "request_id": self.request_id,
            "event": event,
            "turn_index": self.turn_index,
            "audio_window_start": round(self.turn_start_ms / 1000, 3),
            "audio_window_end": round(end_ms / 1000, 3),
            "transcript": " ".join(tokens),
            "words": words,
            "end_of_turn_confidence": self._confidence(end_ms),
            **extra,
        }
        return self._emit(message, first=first)

    def _emit(self, message: dict[str, Any], first: bool = False) -> Emit:
        message["sequence_id"] = self.sequence_id
        self.sequence_id += 1
        return Emit(message, first=first)
