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

#: words a spoken phrase often starts with: a cut just before one sounds like a breath taken
#: there ("It's 3:10 | in the afternoon"), not a word torn from its neighbour
_PHRASE_STARTS = frozenset(
    [
        "in",
        "on",
        "at",
        "after",
        "before",
        "and",
        "or",
        "but",
        "of",
        "to",
        "for",
        "with",
        "from",
        "by",
        "the",
        "a",
        "an",
        "is",
        "are",
        "was",
    ]
)


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


def first_phrase(sentence: str, max_words: int = 4, min_words: int = 2) -> tuple[str, str]:
    """``sentence`` cut after its first few words: (phrase, rest), or (sentence, "") when it
    is short enough to speak whole. For a synthesiser whose time grows with the sentence
    (piper: ~0.1-0.2 s of one core per second of speech), the caller hears the answer after
    the phrase is made, not the sentence, and the rest is made while the phrase plays.

    The cut falls, in order of preference, at the first clause break ("Today is Thursday, |
    December 3"), before a word a phrase starts with ("It's 3:10 | in the afternoon"), or
    after ``max_words`` words; each half keeps at least ``min_words`` words. The price is a
    short pause and a falling tone at the cut."""
    words = sentence.split()
    if len(words) < 2 * min_words:
        return sentence, ""
    head, tail = first_clause(sentence, min_words)
    if tail and len(head.split()) <= max_words:
        return head, tail
    cut = next(
        (
            i
            for i in range(min_words, min(max_words, len(words) - min_words) + 1)
            if words[i].lower().strip("\"'(") in _PHRASE_STARTS
        ),
        max_words,
    )
    if len(words) - cut < min_words:
        return sentence, ""
    return " ".join(words[:cut]), " ".join(words[cut:])


def spoken_pieces(sentence: str) -> list[str]:
    """``sentence`` as the pieces to synthesise one after another: its first phrase
    (:func:`first_phrase`), then clause by clause (:func:`first_clause`), so each piece is
    made while the one before it plays."""
    head, rest = first_phrase(sentence)
    pieces = [head]
    while rest:
        clause, rest = first_clause(rest)
        pieces.append(clause)
    return pieces
