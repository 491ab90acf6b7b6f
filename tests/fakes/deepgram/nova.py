"""Nova-3 streaming recognition (``/v1/listen``), without I/O: audio in, messages out.

What it answers and when, with the document each behaviour comes from:

* ``Results`` (``deepgram-python-sdk`` ``listen_v1results*.py``): ``start`` and
  ``duration`` cover the audio since the last final result; ``channel.alternatives[0]``
  carries ``transcript``, ``confidence`` and ``words`` (``word``, ``start``, ``end``,
  ``confidence``, ``punctuated_word``), seconds from the start of the stream.
* Interim results (``is_final: false``) while an utterance is open, one per
  :attr:`Tuning.nova_interim_ms` of audio, each revealing one more word, only with
  ``interim_results=true`` (https://developers.deepgram.com/docs/interim-results).
* A final result with ``speech_final: true`` once ``endpointing`` ms of silence followed
  the speech ("Configure Endpointing and Interim Results"); with ``endpointing=false`` the
  final comes after :attr:`Tuning.nova_final_without_endpointing_ms` and is not
  ``speech_final``.
* ``UtteranceEnd`` with ``last_word_end`` once ``utterance_end_ms`` of audio passed after the
  last word; only with ``interim_results=true`` (the spec note and Deepgram's "Utterance End"
  page).
* ``SpeechStarted`` with ``timestamp`` (seconds) where speech begins, with
  ``vad_events=true`` (``listen_v1speech_started.py``).
* ``Finalize``: everything since the last final becomes a final with
  ``from_finalize: true``; nothing is sent when no audio came since the last final ("not
  guaranteed if there is no significant amount of audio", https://developers.deepgram.com/docs/finalize).
* ``CloseStream``: the open utterance is finalized, then ``Metadata`` (``transaction_key``,
  ``request_id``, ``sha256``, ``created``, ``duration``, ``channels``), then a normal close
  (https://developers.deepgram.com/docs/close-stream).

Simplifications: the real service also sends empty results during long silence and finals
in the middle of long speech; the fake sends results only for speech and for ``Finalize``.

A stretch of speech is one "utterance" of the fake's script: it takes the next scripted
transcript when its first voiced frame arrives and ends with its final result.
"""

from __future__ import annotations

import datetime
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.deepgram.audio import FRAME_MS, VoiceFrames, plain_word, spread, words_of
from tests.fakes.deepgram.params import NovaParams
from tests.fakes.deepgram.records import Emit, Tuning

CONFIDENCE = 0.99


@dataclass(slots=True)
class _Utterance:
    tokens: list[str]
    start_ms: float
    revealed: int = 0
    answered: bool = False


@dataclass(slots=True)
class NovaStream:
    params: NovaParams
    next_transcript: Callable[[], str]
    tuning: Tuning
    request_id: str
    frames: VoiceFrames = field(init=False)
    #: where the next ``Results`` window starts (the end of the last final)
    cursor_ms: float = 0.0
    last_voiced_ms: float = 0.0
    last_interim_ms: float = 0.0
    utterance: _Utterance | None = None
    #: words were finalized and no ``UtteranceEnd`` followed them yet
    owes_utterance_end: bool = False
    last_word_end_s: float = 0.0
    _sha256: Any = field(default_factory=hashlib.sha256)
    _created: str = field(default_factory=lambda: datetime.datetime.now(datetime.UTC).isoformat())

    def __post_init__(self) -> None:
        self.frames = VoiceFrames(self.params.encoding, self.params.rate_hz, self.tuning.voice_rms)

    # -- client messages ---------------------------------------------------------------

    def audio(self, data: bytes) -> list[Emit]:
        self._sha256.update(data)
        base = self.frames.frames
        out: list[Emit] = []
        for i, voiced in enumerate(self.frames.push(data)):
            out += self._frame(voiced, (base + i + 1) * FRAME_MS)
        return out

    def finalize(self) -> list[Emit]:
        end_ms = self.frames.position_ms
        if end_ms <= self.cursor_ms:
            return []
        if self.utterance is not None:
            return [self._final(end_ms, speech_final=False, from_finalize=True)]
        empty = self._results(end_ms, [], is_final=True, from_finalize=True)
        self.cursor_ms = end_ms
        return [empty]

    def close_stream(self) -> list[Emit]:
        out: list[Emit] = []
        if self.utterance is not None:
            out.append(self._final(self.frames.position_ms, speech_final=False))
        metadata = {
            "type": "Metadata",
            "transaction_key": "deprecated",
            "request_id": self.request_id,
            "sha256": self._sha256.hexdigest(),
            "created": self._created,
            "duration": self.frames.position_ms / 1000,
            "channels": 1,
        }
        return [*out, Emit(metadata), Emit(close=(1000, ""))]

    # -- audio time ----------------------------------------------------------------------

    def _frame(self, voiced: bool, end_ms: float) -> list[Emit]:
        out: list[Emit] = []
        if voiced:
            self.last_voiced_ms = end_ms
            if self.utterance is None:
                out += self._open(end_ms - FRAME_MS)
        utterance = self.utterance
        if utterance is not None:
            silence_ms = end_ms - self.last_voiced_ms
            if silence_ms >= self._final_silence_ms:
                out.append(self._final(end_ms, speech_final=self.params.endpointing_ms is not None))
            elif (
                self.params.interim_results
                and end_ms - self.last_interim_ms >= self.tuning.nova_interim_ms
            ):
                out.append(self._interim(utterance, end_ms))
        utterance_end_ms = self.params.utterance_end_ms
        if (
            self.owes_utterance_end
            and self.utterance is None
            and utterance_end_ms is not None
            and end_ms - self.last_voiced_ms >= utterance_end_ms
        ):
            self.owes_utterance_end = False
            event = {
                "type": "UtteranceEnd",
                "channel": [0, 1],
                "last_word_end": self.last_word_end_s,
            }
            out.append(Emit(event))
        return out

    @property
    def _final_silence_ms(self) -> int:
        endpointing_ms = self.params.endpointing_ms
        if endpointing_ms is None:
            return self.tuning.nova_final_without_endpointing_ms
        return max(endpointing_ms, FRAME_MS)

    def _open(self, start_ms: float) -> list[Emit]:
        self.utterance = _Utterance(words_of(self.next_transcript()), start_ms)
        self.last_interim_ms = start_ms
        self.owes_utterance_end = False
        if not self.params.vad_events:
            return []
        return [Emit({"type": "SpeechStarted", "channel": [0, 1], "timestamp": start_ms / 1000})]

    def _interim(self, utterance: _Utterance, end_ms: float) -> Emit:
        self.last_interim_ms = end_ms
        utterance.revealed = min(len(utterance.tokens), utterance.revealed + 1)
        tokens = utterance.tokens[: utterance.revealed]
        words_end_ms = max(self.last_voiced_ms, utterance.start_ms + FRAME_MS)
        return self._answer(
            utterance, self._results(end_ms, spread(tokens, utterance.start_ms, words_end_ms))
        )

    def _final(self, end_ms: float, *, speech_final: bool, from_finalize: bool = False) -> Emit:
        utterance = self.utterance
        assert utterance is not None
        words = spread(utterance.tokens, utterance.start_ms, self.last_voiced_ms)
        results = self._results(
            end_ms, words, is_final=True, speech_final=speech_final, from_finalize=from_finalize
        )
        self.utterance = None
        self.cursor_ms = end_ms
        if words:
            self.last_word_end_s = words[-1][2]
            self.owes_utterance_end = self.params.interim_results
        return self._answer(utterance, results)

    def _answer(self, utterance: _Utterance, results: Emit) -> Emit:
        first = not utterance.answered
        utterance.answered = True
        return Emit(results.event, first=first)

    def _results(
        self,
        end_ms: float,
        words: list[tuple[str, float, float]],
        *,
        is_final: bool = False,
        speech_final: bool = False,
        from_finalize: bool = False,
    ) -> Emit:
        alternative = {
            "transcript": " ".join(token for token, _, _ in words),
            "confidence": CONFIDENCE if words else 0.0,
            "words": [
                {
                    "word": plain_word(token),
                    "start": start_s,
                    "end": end_s,
                    "confidence": CONFIDENCE,
                    "punctuated_word": token,
                }
                for token, start_s, end_s in words
            ],
        }
        event = {
            "type": "Results",
            "channel_index": [0, 1],
            "duration": round((end_ms - self.cursor_ms) / 1000, 3),
            "start": round(self.cursor_ms / 1000, 3),
            "is_final": is_final,
            "speech_final": speech_final,
            "from_finalize": from_finalize,
            "channel": {"alternatives": [alternative]},
            "metadata": {
                "request_id": self.request_id,
                "model_info": {"name": self.params.model, "version": "fake", "arch": "nova-3"},
                "model_uuid": "00000000-0000-4000-8000-000000000003",
            },
        }
        return Emit(event)
