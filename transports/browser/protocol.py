"""The talk page's wire (``/ws/browser``), sans-I/O: messages in, typed events out.

The page is ours (``bridge/browser/static/``), so the protocol is as small as a browser
makes it: binary messages are raw audio, JSON text messages are control.

Page → bridge:

* ``{"type": "hello", "persona": "shop"}``, first and once: which persona to talk to;
* binary: the microphone, PCM16 little-endian mono at 16 kHz, any whole number of samples
  per message (the capture worklet sends 20 ms);
* ``{"type": "played", "turn": 3, "ms": 1240.0, "final": false}``: how much of a reply the
  page has played. It reports as it plays (the pacer's bound on unheard audio rests on
  it) and once more, ``final``, when it has flushed a reply on ``clear``: that is the heard
  position of a barge-in, exact to the sample;
* ``{"type": "bye"}``: the person left.

Bridge → page: ``hello`` (the session id and the rate of the audio that follows), ``turn``
before a reply's first audio (binary messages then belong to it), ``clear`` (stop playing it
now), ``turn_end``, and ``transcript`` / ``latency`` for the page to show.

Hostile input gets a clear close code: audio before ``hello`` (1008), an oversized or
odd-length message (1009 / 1007), a stream of unreadable control messages (1008).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import Enum
from typing import Any

#: the page's microphone and its playback: PCM16 mono 16 kHz
RATE_HZ = 16_000
#: one message of microphone audio is at most this (1 s)
MAX_AUDIO_BYTES = RATE_HZ * 2
MAX_TEXT_CHARS = 4_096
#: consecutive control messages we cannot read before the page is cut off
MAX_CONSECUTIVE_INVALID = 10
#: a persona name is short and plain (it picks a table of the personas file)
MAX_PERSONA_CHARS = 64


class State(Enum):
    AWAITING_HELLO = "awaiting_hello"
    OPEN = "open"


@dataclass(frozen=True, slots=True)
class Hello:
    persona: str


@dataclass(frozen=True, slots=True)
class Audio:
    pcm16: bytes


@dataclass(frozen=True, slots=True)
class Played:
    turn_id: int
    ms: float
    final: bool


@dataclass(frozen=True, slots=True)
class Bye:
    pass


@dataclass(frozen=True, slots=True)
class ProtocolViolation:
    close_code: int
    reason: str


Event = Hello | Audio | Played | Bye | ProtocolViolation


class BrowserProtocol:
    def __init__(self) -> None:
        self.state = State.AWAITING_HELLO
        self._invalid = 0

    # -- inbound -----------------------------------------------------------------------------

    def receive_binary(self, data: bytes) -> list[Event]:
        if self.state is not State.OPEN:
            return [ProtocolViolation(1008, "audio before hello")]
        if len(data) > MAX_AUDIO_BYTES:
            return [ProtocolViolation(1009, "audio message over 1 s")]
        if len(data) % 2:
            return [ProtocolViolation(1007, "audio is not whole 16-bit samples")]
        return [Audio(data)] if data else []

    def receive_text(self, text: str) -> list[Event]:
        if len(text) > MAX_TEXT_CHARS:
            return [ProtocolViolation(1009, "control message too long")]
        message = _object(text)
        kind = message.get("type") if message is not None else None
        if kind == "hello" and self.state is State.AWAITING_HELLO:
            persona = message.get("persona", "") if message is not None else ""
            if isinstance(persona, str) and len(persona) <= MAX_PERSONA_CHARS:
                self.state = State.OPEN
                self._invalid = 0
                return [Hello(persona)]
        elif kind == "played" and self.state is State.OPEN and message is not None:
            played = _played(message)
            if played is not None:
                self._invalid = 0
                return [played]
        elif kind == "bye":
            return [Bye()]
        self._invalid += 1
        if self._invalid >= MAX_CONSECUTIVE_INVALID:
            return [ProtocolViolation(1008, "too many invalid control messages")]
        if self.state is State.AWAITING_HELLO and kind is not None and kind != "hello":
            return [ProtocolViolation(1008, f"{kind!s:.32} before hello")]
        return []

    # -- outbound ----------------------------------------------------------------------------

    @staticmethod
    def hello(session_id: str, persona: str) -> str:
        return _dump(type="hello", session_id=session_id, persona=persona, sample_rate=RATE_HZ)

    @staticmethod
    def turn(turn_id: int) -> str:
        return _dump(type="turn", turn=turn_id)

    @staticmethod
    def turn_end(turn_id: int, ok: bool) -> str:
        return _dump(type="turn_end", turn=turn_id, ok=ok)

    @staticmethod
    def clear(turn_id: int) -> str:
        return _dump(type="clear", turn=turn_id)

    @staticmethod
    def transcript(turn_id: int, role: str, text: str) -> str:
        return _dump(type="transcript", turn=turn_id, role=role, text=text)

    @staticmethod
    def latency(turn_id: int, latency_ms: float) -> str:
        return _dump(type="latency", turn=turn_id, ms=round(latency_ms))


def _object(text: str) -> dict[str, Any] | None:
    try:
        message = json.loads(text)
    except ValueError:
        return None
    return message if isinstance(message, dict) else None


def _played(message: dict[str, Any]) -> Played | None:
    turn, ms, final = message.get("turn"), message.get("ms"), message.get("final", False)
    if isinstance(turn, bool) or not isinstance(turn, int) or turn < 0:
        return None
    if isinstance(ms, bool) or not isinstance(ms, int | float) or not 0 <= ms < 86_400_000:
        return None
    return Played(turn, float(ms), final is True)


def _dump(**fields: Any) -> str:
    return json.dumps(fields, separators=(",", ":"))
