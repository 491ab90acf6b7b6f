"""The rows of the call records: one per call, one per turn.

Rows are written as whole snapshots (an upsert keyed by call id, or call id and turn id), so
the writer can coalesce several updates of one row into one statement and a row is always
internally consistent, whatever moment a crash picks.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class CallRow:
    call_id: str
    transport: str
    #: masked phone number (twilio) or device label (esp32)
    caller: str
    callee: str
    #: wall-clock (Unix) time the session was created
    started_at_s: float
    ended_at_s: float | None = None
    end_reason: str = ""
    #: keypad digits the caller pressed, in order
    dtmf: str = ""
    agent_errors: int = 0
    barge_ins: int = 0
    #: the call's WAV file, when recordings are on
    recording_path: str = ""

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

    @property
    def key(self) -> tuple[str, str, int]:
        return ("turn", self.call_id, self.turn_id)


Row = CallRow | TurnRow


@dataclass(frozen=True, slots=True)
class CallSummary:
    """One line of ``bridge calls``."""

    call: CallRow
    turns: int

    @property
    def duration_s(self) -> float | None:
        if self.call.ended_at_s is None:
            return None
        return self.call.ended_at_s - self.call.started_at_s
