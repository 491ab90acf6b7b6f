"""Which of a reply's sentences each piece of its audio belongs to.

The cascade remembers a reply sentence by sentence and, on barge-in, keeps only what the
caller heard; so each piece of audio must say which sentences it speaks. ElevenLabs tells it
with every audio message: ``alignment`` lists the characters the message speaks and when each
starts, in milliseconds from the start of that message's audio. Counting those characters
against the sentences sent says where each sentence's audio begins; a message that spans two
sentences is cut there, on a whole sample, so every piece belongs to exactly one.

Characters are matched by their spoken (non-blank) characters only: the API may drop or add
blanks (the leading ``" "`` of a context, the space after each sentence), never letters.
Without an alignment a piece is given to every sentence sent and not yet fully heard.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping
from typing import Any

from pipeline.audio import AudioSpec

#: one piece of audio and the first and last sentence (indexes) it speaks
Piece = tuple[bytes, int, int]


def spoken_chars(text: str) -> int:
    return sum(not char.isspace() for char in text)


class SentenceSpans:
    """One context's sentences, and how much of them the audio so far has spoken."""

    __slots__ = (
        "_aligned",
        "_bytes_per_sample",
        "_carry",
        "_ends",
        "_heard",
        "_last",
        "_spec",
        "_waiting",
    )

    def __init__(self, spec: AudioSpec) -> None:
        self._spec = spec
        self._bytes_per_sample = spec.bytes_per_sample
        #: spoken characters up to the end of each sentence, cumulated
        self._ends: list[int] = []
        #: spoken characters the alignment has covered so far
        self._heard = 0
        #: the sentence of the last character heard (a blank belongs to the one before it)
        self._last = 0
        #: every audio message so far came with an alignment
        self._aligned = True
        #: a sentence was sent after the last audio arrived
        self._waiting = False
        #: an odd byte of PCM16 that waits for the rest of its sample
        self._carry = b""

    @property
    def said(self) -> int:
        return len(self._ends)

    @property
    def owed(self) -> bool:
        """Audio is due: some text sent has not been spoken yet (without an alignment to
        tell, only until the first audio after a sentence)."""
        if not self._aligned:
            return self._waiting
        return self._heard < (self._ends[-1] if self._ends else 0)

    def add(self, text: str) -> int:
        """One more sentence; its index."""
        count = spoken_chars(text)
        self._ends.append((self._ends[-1] if self._ends else 0) + count)
        self._waiting = self._waiting or count > 0
        return len(self._ends) - 1

    def cut(self, audio: bytes, alignment: Mapping[str, Any] | None) -> list[Piece]:
        """``audio`` (one message's) in whole samples, cut where a sentence begins."""
        self._waiting = False
        carried = len(self._carry)
        data = self._carry + audio
        whole = len(data) - len(data) % self._bytes_per_sample
        self._carry = data[whole:]
        marks = self._marks(alignment)
        if marks is None:
            self._aligned = False
            first = self._sentence_of(self._heard)
            return [(data[:whole], first, max(first, self.said - 1))] if whole else []
        pieces: list[Piece] = []
        start = 0
        for i, (_, sentence) in enumerate(marks):
            end = whole
            if i + 1 < len(marks):
                offset = carried + self._spec.bytes_for_ms(marks[i + 1][0])
                end = min(whole, max(start, offset - offset % self._bytes_per_sample))
            if end > start:
                pieces.append((data[start:end], sentence, sentence))
            start = end
        return pieces

    def _marks(self, alignment: Mapping[str, Any] | None) -> list[tuple[float, int]] | None:
        """Where (ms into the message) each sentence of the message begins; None when the
        message has no usable alignment."""
        if alignment is None:
            return None
        chars, starts_ms = alignment.get("chars"), alignment.get("charStartTimesMs")
        if not isinstance(chars, list) or not isinstance(starts_ms, list):
            return None
        if not chars or len(chars) != len(starts_ms):
            return None
        marks: list[tuple[float, int]] = []
        for char, start_ms in zip(chars, starts_ms, strict=True):
            if isinstance(char, str) and char.strip():
                self._last = self._sentence_of(self._heard)
                self._heard += 1
            if not marks or marks[-1][1] != self._last:
                at_ms = float(start_ms) if isinstance(start_ms, int | float) else 0.0
                marks.append((at_ms, self._last))
        return marks

    def _sentence_of(self, position: int) -> int:
        """The sentence holding spoken character ``position`` (the last one when the API
        spoke more than was sent: its characters and ours did not match)."""
        return max(0, min(bisect_right(self._ends, position), self.said - 1))
