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
