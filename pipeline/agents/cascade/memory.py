"""A call's conversation, remembered as the caller experienced it.

A spoken reply is stored as the sentences that were sent to the caller with the duration of
each one's audio (or of a span of several, when the speech provider spoke them as one). When
the caller barges in, the pipeline reports how much of the turn was *heard*; the reply is
then cut at that point (a partly heard span proportionally, at a word boundary, marked with
"…"), and everything the caller never heard is forgotten. The model's next answer is
therefore based on what the caller actually knows.

A turn that used tools is several spoken parts (what the model said before asking, a filler
line while the tools worked, the answer built on their results), with a tool round between
them: the calls the model made and what each gave. The model sees the round as Chat
Completions wants it: the assistant's words and its ``tool_calls`` in one message, then one
``tool`` message per call. A call still running when the caller cut in reads as still
running; its result takes its place once it arrives.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pipeline.audio import AudioSpec
from pipeline.tools.base import ToolRequest, ToolResult

#: what the model reads for a tool call that had not answered when the caller cut in
STILL_RUNNING = json.dumps({"status": "still running when the caller interrupted"})

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
    #: its words went to the call records
    reported: bool = False

    def report(self, transcript: Callable[[int, str, str], None]) -> None:
        """The assistant's words for call records, once per turn, as heard."""
        if not self.reported:
            self.reported = True
            if self.text:
                transcript(self.turn_id, "assistant", self.text)

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


@dataclass(slots=True)
class ToolRound:
    """The tools the model called in one reply, and their results as they arrive."""

    requests: Sequence[ToolRequest]
    results: list[ToolResult | None]

    def settle(self, index: int, result: ToolResult) -> None:
        self.results[index] = result


class Conversation:
    """The per-call history sent with every chat request."""

    def __init__(self, system_prompt: str) -> None:
        self.system_prompt = system_prompt
        self._entries: list[str | SpokenReply | ToolRound] = []
        #: each turn's spoken parts, in the order they were spoken
        self._replies: dict[int, list[SpokenReply]] = {}

    def add_user(self, text: str) -> None:
        self._entries.append(text)

    def add_reply(
        self, turn_id: int, spec: AudioSpec, before: ToolRound | None = None
    ) -> SpokenReply:
        """A new spoken part of ``turn_id``; ``before``: a filler said while that round's
        tools worked reads as said with the words that asked for them."""
        reply = SpokenReply(turn_id, spec)
        if before is None:
            self._entries.append(reply)
        else:
            at = next(i for i, entry in enumerate(self._entries) if entry is before)
            self._entries.insert(at, reply)
        self._replies.setdefault(turn_id, []).append(reply)
        return reply

    def add_tools(self, requests: Sequence[ToolRequest]) -> ToolRound:
        round_ = ToolRound(requests, [None] * len(requests))
        self._entries.append(round_)
        return round_

    def heard(self, turn_id: int, heard_ms: float) -> list[SpokenReply]:
        """Turn ``turn_id`` was cut after ``heard_ms`` of its audio: forget what was not
        heard, part by part; its parts."""
        parts = self._replies.get(turn_id, [])
        for reply in parts:
            reply.heard_ms = max(0.0, heard_ms)
            heard_ms -= reply.audio_ms
        return parts

    def messages(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        if self.system_prompt:
            out.append({"role": "system", "content": self.system_prompt})
        for entry in self._entries:
            if isinstance(entry, str):
                out.append({"role": "user", "content": entry})
            elif isinstance(entry, ToolRound):
                _add_round(out, entry)
            elif entry.text:
                _add_said(out, entry.text)
        return out


def _add_said(out: list[dict[str, Any]], text: str) -> None:
    """Words said one after the other (a reply, then a filler) are one assistant message."""
    last = out[-1] if out else None
    if last is not None and last["role"] == "assistant" and "tool_calls" not in last:
        last["content"] = f"{last['content']} {text}" if last["content"] else text
    else:
        out.append({"role": "assistant", "content": text})


def _add_round(out: list[dict[str, Any]], round_: ToolRound) -> None:
    calls = [
        {
            "id": r.call_id,
            "type": "function",
            "function": {"name": r.name, "arguments": r.arguments},
        }
        for r in round_.requests
    ]
    last = out[-1] if out else None
    if last is not None and last["role"] == "assistant" and "tool_calls" not in last:
        last["tool_calls"] = calls
    else:
        out.append({"role": "assistant", "content": None, "tool_calls": calls})
    for request, result in zip(round_.requests, round_.results, strict=True):
        content = result.output if result is not None else STILL_RUNNING
        out.append({"role": "tool", "tool_call_id": request.call_id, "content": content})
