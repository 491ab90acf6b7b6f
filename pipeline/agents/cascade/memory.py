"""A call's conversation, remembered as the caller experienced it.

A spoken reply is stored as the sentences that were sent to the caller with the duration of
each one's audio. When the caller barges in, the pipeline reports how much of the turn was
*heard*; the reply is then cut at that point (a partly heard sentence proportionally, at a
word boundary, marked with "…"), and everything the caller never heard is forgotten. The
model's next answer is therefore based on what the caller actually knows.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from pipeline.audio import AudioSpec

#: marks a sentence the caller only heard part of
CUT_MARK = "…"


@dataclass(slots=True)
class SpokenSentence:
    text: str
    audio_ms: float = 0.0
    #: all of its audio was generated (False: speech failed part-way, or barge-in)
    complete: bool = False


@dataclass(slots=True)
class SpokenReply:
    """One assistant turn: the sentences sent, and (after a barge-in) how much was heard."""

    turn_id: int
    spec: AudioSpec
    sentences: list[SpokenSentence] = field(default_factory=list)
    heard_ms: float | None = None

    def sentence(self, text: str) -> SpokenSentence:
        spoken = SpokenSentence(text)
        self.sentences.append(spoken)
        return spoken

    def add_audio(self, sentence: SpokenSentence, pcm: bytes) -> None:
        sentence.audio_ms += self.spec.duration_ms(len(pcm))

    @property
    def text(self) -> str:
        """What the caller heard (all that was sent, unless a barge-in cut it)."""
        if self.heard_ms is None:
            return _join(
                s.text if s.complete else cut_words(s.text, 1.0, partial=True)
                for s in self.sentences
                if s.audio_ms > 0
            )
        parts: list[str] = []
        start_ms = 0.0
        for s in self.sentences:
            if s.audio_ms <= 0:
                continue
            end_ms = start_ms + s.audio_ms
            if self.heard_ms >= end_ms and s.complete:
                parts.append(s.text)
            else:
                fraction = min(1.0, max(0.0, (self.heard_ms - start_ms) / s.audio_ms))
                parts.append(cut_words(s.text, fraction, partial=True))
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
