"""Sans-I/O core of the Twilio Media Streams protocol (no sockets, clocks or asyncio).

Feed it every inbound frame with :meth:`TwilioProtocol.receive_text` /
:meth:`receive_binary`; it returns typed events and keeps the per-stream state the spec
requires: the stream's identity, sequence-gap counters, invalid-frame counters, and the
mark ledger that turns Twilio's mark echoes into "how much of each turn was heard".
Outbound frames are built here too, with exactly the keys Twilio accepts (an extra key is
warning 31951 and the message is not applied).
"""

from __future__ import annotations

import binascii
import json
import re
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, ClassVar

#: DTMF digits Twilio may report; anything else is ignored
VALID_DIGITS = frozenset("0123456789*#ABCD")
#: consecutive unusable frames before the stream is closed with 1008
MAX_CONSECUTIVE_INVALID = 20
EXPECTED_MEDIA_FORMAT = {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}
#: stream ids are interpolated into outbound JSON, so only safe characters are accepted
SID_PATTERN = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
#: bounds on the mark ledger, so a peer that never echoes cannot grow it without limit
MAX_CLEARED_MARKS = 4096
MAX_TURNS_REMEMBERED = 64


class State(Enum):
    AWAIT_START = "await_start"
    ACTIVE = "active"
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True)
class Connected:
    protocol: str
    version: str


@dataclass(frozen=True, slots=True)
class Start:
    stream_sid: str
    call_sid: str
    account_sid: str
    custom_parameters: dict[str, str]
    media_format_ok: bool


@dataclass(frozen=True, slots=True)
class Media:
    payload: bytes
    timestamp_ms: int | None


@dataclass(frozen=True, slots=True)
class Dtmf:
    digit: str


@dataclass(frozen=True, slots=True)
class MarkPlayed:
    """A mark echo that advanced the heard position of ``turn_id`` by ``duration_ms``."""

    name: str
    turn_id: int
    duration_ms: float


@dataclass(frozen=True, slots=True)
class Stop:
    call_sid: str


@dataclass(frozen=True, slots=True)
class ProtocolViolation:
    """The stream must be closed with ``close_code``."""

    close_code: int
    reason: str


Event = Connected | Start | Media | Dtmf | MarkPlayed | Stop | ProtocolViolation

#: the ``event`` names Twilio sends on a bidirectional stream
EVENT_NAMES = ("connected", "start", "media", "mark", "dtmf", "stop")


@dataclass(slots=True)
class Counters:
    invalid_frames: int = 0
    binary_frames: int = 0
    media_before_start: int = 0
    wrong_stream_sid: int = 0
    bad_payloads: int = 0
    empty_payloads: int = 0
    sequence_gaps: int = 0
    unknown_events: int = 0
    duplicate_starts: int = 0
    ignored_digits: int = 0
    stale_marks: int = 0
    cleared_marks: int = 0
    marks_sent: int = 0
    clears_sent: int = 0
    notes: list[str] = field(default_factory=list)


def _as_int(value: Any) -> int | None:
    """Twilio sends counters as decimal strings; tolerate numbers, reject the rest."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


@dataclass(frozen=True, slots=True)
class Rule:
    """What an inbound message does in a state: the event it may become and the state that
    follows when it does, or (``emits`` None) the counter that notes it was ignored."""

    next: State
    emits: type | None
    ignored_as: str = ""


_A, _S, _X = State.AWAIT_START, State.ACTIVE, State.STOPPED

#: (state, inbound ``event`` name) -> :class:`Rule`. An event name that is not here for the
#: state is unknown (counted, ignored). Tests walk every entry.
TRANSITIONS: dict[tuple[State, str], Rule] = {
    (_A, "connected"): Rule(_A, Connected),
    (_A, "start"): Rule(_S, Start),
    (_A, "media"): Rule(_A, None, "media_before_start"),
    (_A, "mark"): Rule(_A, None, "media_before_start"),
    (_A, "dtmf"): Rule(_A, None, "media_before_start"),
    (_A, "stop"): Rule(_X, Stop),
    (_S, "connected"): Rule(_S, Connected),
    (_S, "start"): Rule(_S, None, "duplicate_starts"),
    (_S, "media"): Rule(_S, Media),
    (_S, "mark"): Rule(_S, MarkPlayed),
    (_S, "dtmf"): Rule(_S, Dtmf),
    (_S, "stop"): Rule(_X, Stop),
    **{(_X, name): Rule(_X, None) for name in EVENT_NAMES},
}


#: parses one inbound message of an event type the table let through
Parser = Callable[["TwilioProtocol", dict[str, Any]], list[Event]]


class TwilioProtocol:
    def __init__(self) -> None:
        self.state = State.AWAIT_START
        self._rules = _RULES_BY_STATE[self.state]
        self.stream_sid: str | None = None
        self.call_sid: str | None = None
        self.counters = Counters()
        self._consecutive_invalid = 0
        self._last_sequence: int | None = None
        self._mark_seq = 0
        self._pending: OrderedDict[str, tuple[int, float]] = OrderedDict()
        self._pending_ms = 0.0
        self._cleared: set[str] = set()
        self._heard_ms: dict[int, float] = {}

    # -- inbound ---------------------------------------------------------------------------

    def receive_binary(self) -> list[Event]:
        """Twilio never sends binary frames; count and maybe give up on the stream."""
        self.counters.binary_frames += 1
        return self._invalid("binary frame")

    def receive_text(self, text: str) -> list[Event]:
        try:
            msg = json.loads(text)
        except ValueError:
            return self._invalid("invalid JSON")
        if not isinstance(msg, dict) or not isinstance(msg.get("event"), str):
            return self._invalid("not an event object")
        self._consecutive_invalid = 0
        entry = self._rules.get(msg["event"])
        if entry is None:
            self.counters.unknown_events += 1
            return []
        rule, parse = entry
        if parse is None:
            if rule.ignored_as:
                setattr(self.counters, rule.ignored_as, getattr(self.counters, rule.ignored_as) + 1)
            return []
        events = parse(self, msg)
        if rule.next is not self.state and any(type(event) is rule.emits for event in events):
            self.state = rule.next
            self._rules = _RULES_BY_STATE[rule.next]
        return events

    def _invalid(self, why: str) -> list[Event]:
        self.counters.invalid_frames += 1
        self._consecutive_invalid += 1
        if self._consecutive_invalid >= MAX_CONSECUTIVE_INVALID:
            return [ProtocolViolation(1008, f"{MAX_CONSECUTIVE_INVALID} invalid frames: {why}")]
        return []

    def _check_sequence(self, msg: dict[str, Any]) -> None:
        seq = _as_int(msg.get("sequenceNumber"))
        if seq is None:
            return
        if self._last_sequence is not None and seq != self._last_sequence + 1:
            self.counters.sequence_gaps += 1
        self._last_sequence = seq

    def _belongs(self, msg: dict[str, Any]) -> bool:
        """True when ``msg`` is for this stream (the table let it through: it has started)."""
        sid = msg.get("streamSid")
        if sid is not None and sid != self.stream_sid:
            self.counters.wrong_stream_sid += 1
            return False
        return True

    def _start(self, msg: dict[str, Any]) -> list[Event]:
        start = msg.get("start")
        if not isinstance(start, dict):
            return [ProtocolViolation(1008, "start without a start object")]
        ids = {k: start.get(k) for k in ("streamSid", "callSid", "accountSid")}
        if not all(isinstance(v, str) and SID_PATTERN.fullmatch(v) for v in ids.values()):
            return [ProtocolViolation(1008, "start without valid streamSid/callSid/accountSid")]
        raw_params = start.get("customParameters") or {}
        if not isinstance(raw_params, dict):
            return [ProtocolViolation(1008, "customParameters is not an object")]
        params = {str(k): str(v) for k, v in raw_params.items()}
        media_format = start.get("mediaFormat")
        format_ok = isinstance(media_format, dict) and all(
            media_format.get(k) == v for k, v in EXPECTED_MEDIA_FORMAT.items()
        )
        self._check_sequence(msg)
        self.stream_sid = str(ids["streamSid"])
        self.call_sid = str(ids["callSid"])
        return [Start(self.stream_sid, self.call_sid, str(ids["accountSid"]), params, format_ok)]

    def _media(self, msg: dict[str, Any]) -> list[Event]:
        if not self._belongs(msg):
            return []
        self._check_sequence(msg)
        media = msg.get("media")
        if not isinstance(media, dict):
            self.counters.bad_payloads += 1
            return []
        track = media.get("track", "inbound")
        if track != "inbound":
            return []
        payload = media.get("payload")
        if not isinstance(payload, str):
            self.counters.bad_payloads += 1
            return []
        try:
            audio = binascii.a2b_base64(payload, strict_mode=True)
        except (binascii.Error, ValueError):
            self.counters.bad_payloads += 1
            return []
        if not audio:
            self.counters.empty_payloads += 1
            return []
        return [Media(audio, _as_int(media.get("timestamp")))]

    def _dtmf(self, msg: dict[str, Any]) -> list[Event]:
        if not self._belongs(msg):
            return []
        self._check_sequence(msg)
        dtmf = msg.get("dtmf")
        digit = dtmf.get("digit") if isinstance(dtmf, dict) else None
        if not isinstance(digit, str) or digit not in VALID_DIGITS:
            self.counters.ignored_digits += 1
            return []
        return [Dtmf(digit)]

    def _mark(self, msg: dict[str, Any]) -> list[Event]:
        if not self._belongs(msg):
            return []
        self._check_sequence(msg)
        mark = msg.get("mark")
        name = mark.get("name") if isinstance(mark, dict) else None
        if not isinstance(name, str):
            self.counters.stale_marks += 1
            return []
        if name in self._cleared:
            self._cleared.discard(name)
            self.counters.cleared_marks += 1
            return []
        entry = self._pending.pop(name, None)
        if entry is None:
            self.counters.stale_marks += 1
            return []
        turn_id, duration_ms = entry
        self._pending_ms -= duration_ms
        if not self._pending:
            self._pending_ms = 0.0  # no float drift across a long call
        heard = self._heard_ms
        heard[turn_id] = heard.get(turn_id, 0.0) + duration_ms
        if len(heard) > MAX_TURNS_REMEMBERED:
            del heard[min(heard)]
        return [MarkPlayed(name, turn_id, duration_ms)]

    def _stop(self, msg: dict[str, Any]) -> list[Event]:
        if self.state is State.AWAIT_START:
            return [Stop("")]
        if not self._belongs(msg):
            return []
        stop = msg.get("stop")
        call_sid = stop.get("callSid") if isinstance(stop, dict) else None
        return [Stop(call_sid if isinstance(call_sid, str) else self.call_sid or "")]

    def _connected(self, msg: dict[str, Any]) -> list[Event]:
        return [Connected(str(msg.get("protocol", "")), str(msg.get("version", "")))]

    #: the parser of each event type the table lets through
    _parsers: ClassVar[dict[type, Parser]] = {
        Connected: _connected,
        Start: _start,
        Media: _media,
        MarkPlayed: _mark,
        Dtmf: _dtmf,
        Stop: _stop,
    }

    # -- outbound --------------------------------------------------------------------------

    def media_frames(self, turn_id: int, ulaw: bytes, duration_ms: float) -> tuple[str, str]:
        """The ``media`` frame for one chunk and the ``mark`` that confirms its playback."""
        sid = self._require_active()
        self._mark_seq += 1
        name = f"t{turn_id}:{self._mark_seq}"
        self._pending[name] = (turn_id, duration_ms)
        self._pending_ms += duration_ms
        self.counters.marks_sent += 1
        payload = binascii.b2a_base64(ulaw, newline=False).decode("ascii")
        media = f'{{"event":"media","streamSid":"{sid}","media":{{"payload":"{payload}"}}}}'
        mark = f'{{"event":"mark","streamSid":"{sid}","mark":{{"name":"{name}"}}}}'
        return media, mark

    def clear_frame(self) -> str | None:
        """A ``clear`` if anything is unplayed, else None (a silent bot needs no clear).

        Every pending mark moves to the cleared set: Twilio echoes them without playing
        them, and those echoes must not count as heard.
        """
        sid = self._require_active()
        if not self._pending:
            return None
        if len(self._cleared) > MAX_CLEARED_MARKS:
            self._cleared.clear()
        self._cleared.update(self._pending)
        self._pending.clear()
        self._pending_ms = 0.0
        self.counters.clears_sent += 1
        return json.dumps({"event": "clear", "streamSid": sid}, separators=(",", ":"))

    def heard_ms(self, turn_id: int) -> float:
        return self._heard_ms.get(turn_id, 0.0)

    @property
    def pending_ms(self) -> float:
        """Audio sent whose mark has not come back yet."""
        return self._pending_ms

    @property
    def pending_marks(self) -> int:
        return len(self._pending)

    @property
    def can_send(self) -> bool:
        return self.state is State.ACTIVE

    def _require_active(self) -> str:
        if self.state is not State.ACTIVE or self.stream_sid is None:
            raise RuntimeError("nothing may be sent before start or after stop")
        return self.stream_sid


#: :data:`TRANSITIONS` regrouped for the hot path: per state, event name -> (rule, parser)
_RULES_BY_STATE: dict[State, dict[str, tuple[Rule, Parser | None]]] = {
    state: {
        name: (rule, None if rule.emits is None else TwilioProtocol._parsers[rule.emits])
        for (rule_state, name), rule in TRANSITIONS.items()
        if rule_state is state
    }
    for state in State
}
