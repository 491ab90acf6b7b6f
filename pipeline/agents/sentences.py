"""Cutting text into sentences, whole or as it streams in, so speech can start early.

A sentence ends at ``.``, ``!`` or ``?`` followed by whitespace. In a token stream the end is
only certain once the whitespace arrives (``3.`` may continue as ``3.5``), which costs one
token, a few milliseconds.
"""

from __future__ import annotations

import re

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def split_sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(text) if s.strip()]


class SentenceCutter:
    """Feed text deltas, get back every sentence as soon as it is complete."""

    def __init__(self) -> None:
        self._buffer = ""

    def push(self, delta: str) -> list[str]:
        self._buffer += delta
        last_end = None
        for match in _SENTENCE_END.finditer(self._buffer):
            last_end = match
        if last_end is None:
            return []
        done, self._buffer = self._buffer[: last_end.start()], self._buffer[last_end.end() :]
        return split_sentences(done)

    def flush(self) -> list[str]:
        """The rest, at the end of the stream (a last sentence may lack its full stop)."""
        rest, self._buffer = self._buffer, ""
        return split_sentences(rest)


_CLAUSE_END = re.compile(r"(?<=[,;:])\s+")


def first_clause(sentence: str, min_words: int = 3) -> tuple[str, str]:
    """``sentence`` cut after its first clause of at least ``min_words`` words, if what is
    left has as many too: (clause, rest); else (sentence, ""). A synthesiser that speaks a
    whole sentence before any audio can start sooner on a long one ("I can tell you the time
    or the date, repeat what you say ...") at the cost of a pause at the comma."""
    words = 0
    for match in _CLAUSE_END.finditer(sentence):
        head, tail = sentence[: match.start()], sentence[match.end() :]
        words = len(head.split())
        if words >= min_words:
            if len(tail.split()) >= min_words:
                return head, tail
            break
    return sentence, ""
