"""Who watches a call: metrics, call records and recordings, through one set of hooks.

Observers see a call's milestones (created, started, turns, latency, barge-in, transcripts,
agent errors, ended) without the session knowing who they are. They run synchronously on the
event loop inside the call's own code path, so they must be cheap and must not raise.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Protocol

from pipeline.agents.base import CallInfo
from pipeline.call_logger import CallLog
from pipeline.ports import AudioTap, CallPort
from pipeline.tools.base import ToolCallRecord

log = logging.getLogger("pipeline.observers")


@dataclass(slots=True)
class SessionStats:
    """Counters for the end-of-call summary line, metrics and call records."""

    frames_in: int = 0
    bytes_in: int = 0
    user_turns: int = 0
    agent_turns: int = 0
    #: replies cut off by the caller (real interruptions)
    barge_ins: int = 0
    #: sounds over a reply judged not to be interruptions (the reply went on)
    false_interruptions: int = 0
    agent_errors: int = 0
    turn_latency_ms: list[float] = field(default_factory=list)

    def summary(self, reason: str, duration_s: float, chunks_sent: int, chunks_dropped: int) -> str:
        """The call's one summary line, logged when it ends."""
        return (
            f"call ended reason={reason} duration_s={duration_s:.1f} "
            f"user_turns={self.user_turns} agent_turns={self.agent_turns} "
            f"barge_ins={self.barge_ins} false_interruptions={self.false_interruptions} "
            f"chunks_sent={chunks_sent} "
            f"chunks_dropped={chunks_dropped} agent_errors={self.agent_errors}"
        )


class ObservedCall(Protocol):
    """What an observer may see of a call (a :class:`~pipeline.session.CallSession`)."""

    call: CallInfo
    port: CallPort
    stats: SessionStats
    log: CallLog

    @property
    def end_reason(self) -> str: ...

    def attach_tap(self, tap: AudioTap) -> None:
        """Show ``tap`` every inbound frame and outbound chunk from now on."""


class SessionObserver:
    """Hooks for metrics and call records; the default does nothing.

    Hooks run synchronously on the event loop inside the call's own code path, so they must be
    cheap and must not raise (an :class:`Observers` group logs and swallows what they raise).
    """

    def on_session_created(self, session: ObservedCall) -> None:
        """The session exists and nothing runs yet (no greeting, no audio): attach taps here."""

    def on_call_started(self, session: ObservedCall) -> None:
        """The session is registered and its agent started."""

    def on_call_ended(self, session: ObservedCall) -> None:
        """The session is closed; ``session.end_reason`` and ``session.stats`` are final."""

    def on_user_turn(self, session: ObservedCall, turn_id: int, speech_ms: float) -> None:
        """The endpointer (or the far end) committed a user turn of ``speech_ms``."""

    def on_turn_latency(self, session: ObservedCall, turn_id: int, latency_ms: float) -> None:
        pass

    def on_barge_in(self, session: ObservedCall, turn_id: int, heard_ms: float) -> None:
        """A real interruption cut ``turn_id`` after ``heard_ms`` of it."""

    def on_false_interruption(self, session: ObservedCall, turn_id: int, paused_ms: float) -> None:
        """A sound over ``turn_id`` was not an interruption; it went on after ``paused_ms``."""

    def on_transcript(self, session: ObservedCall, turn_id: int, role: str, text: str) -> None:
        pass

    def on_agent_error(self, session: ObservedCall, kind: str) -> None:
        pass

    def on_keypad(self, session: ObservedCall, turn_id: int, digits: str) -> None:
        """The caller keyed ``digits``, which became user turn ``turn_id``."""

    def on_tool_call(self, session: ObservedCall, record: ToolCallRecord) -> None:
        """A tool call started, ended, or lost its spoken answer to a barge-in (the same
        ``record.seq`` again, updated)."""

    def on_transfer(self, session: ObservedCall, destination: str) -> None:
        """The call was handed to ``destination`` (a transfer target's name and number)."""


class Observers(SessionObserver):
    """Fans every hook out to several observers (metrics, call records, recordings).

    One failing observer is logged and skipped: bookkeeping must never break a live call.
    """

    def __init__(self, *observers: SessionObserver) -> None:
        self._observers: list[SessionObserver] = list(observers)

    def add(self, observer: SessionObserver) -> None:
        self._observers.append(observer)

    def _each(self, hook: str, *args: Any) -> None:
        for observer in self._observers:
            try:
                getattr(observer, hook)(*args)
            except Exception:
                log.exception("observer %s.%s failed", type(observer).__name__, hook)

    def on_session_created(self, session: ObservedCall) -> None:
        self._each("on_session_created", session)

    def on_call_started(self, session: ObservedCall) -> None:
        self._each("on_call_started", session)

    def on_call_ended(self, session: ObservedCall) -> None:
        self._each("on_call_ended", session)

    def on_user_turn(self, session: ObservedCall, turn_id: int, speech_ms: float) -> None:
        self._each("on_user_turn", session, turn_id, speech_ms)

    def on_turn_latency(self, session: ObservedCall, turn_id: int, latency_ms: float) -> None:
        self._each("on_turn_latency", session, turn_id, latency_ms)

    def on_barge_in(self, session: ObservedCall, turn_id: int, heard_ms: float) -> None:
        self._each("on_barge_in", session, turn_id, heard_ms)

    def on_false_interruption(self, session: ObservedCall, turn_id: int, paused_ms: float) -> None:
        self._each("on_false_interruption", session, turn_id, paused_ms)

    def on_transcript(self, session: ObservedCall, turn_id: int, role: str, text: str) -> None:
        self._each("on_transcript", session, turn_id, role, text)

    def on_agent_error(self, session: ObservedCall, kind: str) -> None:
        self._each("on_agent_error", session, kind)

    def on_keypad(self, session: ObservedCall, turn_id: int, digits: str) -> None:
        self._each("on_keypad", session, turn_id, digits)

    def on_tool_call(self, session: ObservedCall, record: ToolCallRecord) -> None:
        self._each("on_tool_call", session, record)

    def on_transfer(self, session: ObservedCall, destination: str) -> None:
        self._each("on_transfer", session, destination)
