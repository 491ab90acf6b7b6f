"""A call's conversation, remembered as the caller experienced it.

A spoken reply is stored as the sentences that were sent to the caller with the duration of
each one's audio (or of a span of several, when the speech provider spoke them as one). When
the caller barges in, the pipeline reports how much of the turn was *heard*; the reply is
then cut at that point (a partly heard span proportionally, at a word boundary, marked with
"…"), and everything the caller never heard is forgotten. The model's next answer is
therefore based on what the caller actually knows.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from pipeline.audio import AudioSpec

#: marks a sentence the caller only heard part of
CUT_MARK = "…"


@dataclass(slots=True)
class SpokenSpan:
    """Audio of sentences ``first``..``last``: one sentence, unless the speech provider spoke
    several as one (a flush of several) and cannot tell where each begins."""

    first: int
    last: int
    audio_ms: float = 0.0


@dataclass(slots=True)
class SpokenReply:
    """One assistant turn: the sentences sent, the audio of each span of them, how far the
    speech is known to be complete, and (after a barge-in) how much was heard."""

    turn_id: int
    spec: AudioSpec
    sentences: list[str] = field(default_factory=list)
    spans: list[SpokenSpan] = field(default_factory=list)
    #: the last sentence whose audio is known to be all there (-1: none)
    complete_through: int = -1
    heard_ms: float | None = None

    def sentence(self, text: str) -> int:
        """Add a sentence; its index."""
        self.sentences.append(text)
        return len(self.sentences) - 1

    def add_audio(self, first: int, last: int, pcm: bytes) -> None:
        """Audio of sentences ``first``..``last``, in the order it is sent. A span that
        overlaps the previous one joins it: spans never share a sentence."""
        duration_ms = self.spec.duration_ms(len(pcm))
        if self.spans and first <= self.spans[-1].last:
            span = self.spans[-1]
            span.last = max(span.last, last)
            span.audio_ms += duration_ms
        else:
            self.spans.append(SpokenSpan(first, last, duration_ms))

    @property
    def audio_ms(self) -> float:
        return sum(span.audio_ms for span in self.spans)

    def span_text(self, span: SpokenSpan) -> str:
        return " ".join(self.sentences[span.first : span.last + 1])

    def _complete(self, index: int) -> bool:
        """Span ``index``'s audio is all there: a later span began (audio comes in order),
        or the speech said so."""
        return index < len(self.spans) - 1 or self.spans[index].last <= self.complete_through

    @property
    def text(self) -> str:
        """What the caller heard (all that was sent, unless a barge-in cut it)."""
        if self.heard_ms is None:
            return _join(
                self.span_text(s)
                if self._complete(i)
                else cut_words(self.span_text(s), 1.0, partial=True)
                for i, s in enumerate(self.spans)
            )
        parts: list[str] = []
        start_ms = 0.0
        for i, s in enumerate(self.spans):
            end_ms = start_ms + s.audio_ms
            if self.heard_ms >= end_ms and self._complete(i):
                parts.append(self.span_text(s))
            else:
                fraction = min(1.0, max(0.0, (self.heard_ms - start_ms) / max(s.audio_ms, 1e-9)))
                parts.append(cut_words(self.span_text(s), fraction, partial=True))
                break
            start_ms = end_ms
        return _join(parts)


def cut_words(text: str, fraction: float, partial: bool = False) -> str:
    """The first ``fraction`` of ``text``'s words (rounded down); "…" marks a cut."""
    words = text.split()
    keep = int(len(words) * fraction + 1e-9)
    if keep >= len(words) and not partial:
        return text
    if keep == 0:
        return ""
    return " ".join(words[:keep]).rstrip(",;:.!?") + CUT_MARK


def _join(parts: Iterable[str]) -> str:
    return " ".join(p for p in parts if p)


class Conversation:
    """The per-call history sent with every chat request."""

    def __init__(self, system_prompt: str) -> None:
        self.system_prompt = system_prompt
        self._entries: list[str | SpokenReply] = []
        self._replies: dict[int, SpokenReply] = {}

    def add_user(self, text: str) -> None:
        self._entries.append(text)

    def add_reply(self, turn_id: int, spec: AudioSpec) -> SpokenReply:
        reply = SpokenReply(turn_id, spec)
        self._entries.append(reply)
        self._replies[turn_id] = reply
        return reply

    def heard(self, turn_id: int, heard_ms: float) -> SpokenReply | None:
        """Turn ``turn_id`` was cut after ``heard_ms``: forget what was not heard."""
        reply = self._replies.get(turn_id)
        if reply is not None:
            reply.heard_ms = heard_ms
        return reply

    def messages(self) -> list[dict[str, str]]:
        out: list[dict[str, str]] = []
        if self.system_prompt:
            out.append({"role": "system", "content": self.system_prompt})
        for entry in self._entries:
            if isinstance(entry, str):
                out.append({"role": "user", "content": entry})
            elif entry.text:
                out.append({"role": "assistant", "content": entry.text})
        return out
