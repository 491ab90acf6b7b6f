"""The rows of the call records: one per call, one per turn, one per tool call, and what
Twilio's callbacks say about a call.

Rows are written as whole snapshots (an upsert keyed by call id, or call id and turn id, or
call id and tool call number), so the writer can coalesce several updates of one row into one
statement and a row is always internally consistent, whatever moment a crash picks.

The one exception is :class:`TwilioStatusRow`: Twilio's callbacks each carry part of what is
known (a status, a duration, an answering-machine verdict) and arrive in any order relative to
the session's rows, so they are merged into the call's row column by column instead.
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass, field

from pipeline.tools.base import ToolCallRecord

#: Twilio's final call statuses: after one of these the call is over and nothing overrides it
FINAL_TWILIO_STATUSES = ("completed", "busy", "no-answer", "failed", "canceled")


@dataclass(slots=True)
class CallRow:
    """What the session knows of a call. Twilio's status columns are not here on purpose:
    they belong to :class:`TwilioStatusRow`, so a session snapshot can never erase them."""

    call_id: str
    transport: str
    #: masked phone number (twilio) or device label (esp32)
    caller: str
    callee: str
    #: wall-clock (Unix) time the session was created
    started_at_s: float
    ended_at_s: float | None = None
    end_reason: str = ""
    #: keypad digits the caller pressed, in order (every turn's ``dtmf`` together)
    dtmf: str = ""
    agent_errors: int = 0
    barge_ins: int = 0
    #: the call's WAV file, when recordings are on
    recording_path: str = ""
    #: where the call was handed ("billing +15551230002"); empty: never transferred
    transferred_to: str = ""

    @property
    def key(self) -> tuple[str, str]:
        return ("call", self.call_id)


@dataclass(slots=True)
class TurnRow:
    call_id: str
    turn_id: int
    #: wall-clock time the turn opened: end of the user's speech, or the agent speaking first
    at_s: float
    #: how long the user spoke (None: an agent-initiated turn such as a greeting)
    user_speech_ms: float | None = None
    #: end of user speech -> first reply audio sent
    latency_ms: float | None = None
    user_text: str = ""
    assistant_text: str = ""
    #: the user barged in; ``heard_ms`` is how much of the reply was heard before that
    interrupted: bool = False
    heard_ms: float | None = None
    #: exception class names of agent failures during this turn, comma-separated
    agent_error: str = ""
    #: keypad digits that made this turn (empty for a spoken turn)
    dtmf: str = ""

    @property
    def key(self) -> tuple[str, str, int]:
        return ("turn", self.call_id, self.turn_id)


@dataclass(slots=True)
class ToolCallRow(ToolCallRecord):
    """One tool call: :class:`~pipeline.tools.base.ToolCallRecord` (arguments and result
    already redacted) plus the call it is in."""

    call_id: str = ""

    @classmethod
    def of(cls, call_id: str, record: ToolCallRecord) -> ToolCallRow:
        """A snapshot of ``record`` now (the toolbox goes on updating the record itself)."""
        values = {f.name: getattr(record, f.name) for f in dataclasses.fields(record)}
        return cls(call_id=call_id, **values)

    @property
    def key(self) -> tuple[str, str, int]:
        return ("tool_call", self.call_id, self.seq)


#: numbers every TwilioStatusRow, so the writer never coalesces two of them (see ``key``)
_status_serials = itertools.count(1)


@dataclass(slots=True)
class TwilioStatusRow:
    """What one Twilio callback (call status, answering-machine detection) says of a call.

    It may come before the stream connects, after the session's rows, or for a call whose
    stream never connected; so its upsert creates the call's row when there is none, and
    otherwise sets only its own columns, and only those it knows: an empty status or verdict
    or a missing duration leaves what an earlier callback stored.
    """

    call_id: str
    #: wall-clock time the callback arrived
    at_s: float
    #: Twilio's CallStatus (queued, ringing, in-progress, completed, busy, ...); may be empty
    twilio_status: str = ""
    #: Twilio's CallDuration (sent with the final status)
    twilio_duration_s: float | None = None
    #: Twilio's AnsweredBy (human, machine_start, machine_end_beep, fax, unknown)
    answered_by: str = ""
    #: for a row this callback creates: the masked caller and the callee
    caller: str = ""
    callee: str = ""
    #: not stored: each callback carries different columns, so none may replace another in
    #: the writer's batch the way a newer snapshot replaces an older one
    serial: int = field(default_factory=lambda: next(_status_serials), repr=False, compare=False)

    @property
    def key(self) -> tuple[str, str, int]:
        return ("twilio_status", self.call_id, self.serial)

    @property
    def is_final(self) -> bool:
        return self.twilio_status in FINAL_TWILIO_STATUSES


Row = CallRow | TurnRow | ToolCallRow | TwilioStatusRow


@dataclass(frozen=True, slots=True)
class CallSummary:
    """One line of ``bridge calls``: the session's row, Twilio's word on it, its turn count."""

    call: CallRow
    turns: int
    twilio_status: str = ""
    twilio_duration_s: float | None = None
    answered_by: str = ""

    @property
    def duration_s(self) -> float | None:
        if self.call.ended_at_s is None:
            return None
        return self.call.ended_at_s - self.call.started_at_s


@dataclass(frozen=True, slots=True)
class CallDetail:
    """``bridge calls show``: one call with its turns and tool calls, each in order."""

    summary: CallSummary
    turns: list[TurnRow]
    tool_calls: list[ToolCallRow]
