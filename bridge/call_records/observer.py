"""Session hooks -> call, turn and tool call rows, written as the call goes.

The call row is written when the session is created, when it is transferred and again when
it ends; each turn row when the turn opens (end of user speech, digits keyed) and again
whenever something about it is learnt (reply latency, transcripts, barge-in, agent error);
each tool call row when the call starts, when it ends and if its spoken answer is cut off.
A crash therefore loses at most what was learnt about the turn in flight since its last hook.
All of it is cheap, synchronous bookkeeping on the event loop; the SQL happens on the writer
thread.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from bridge.call_records.model import CallRow, ToolCallRow, TurnRow
from bridge.call_records.writer import RecordWriter
from pipeline.observers import ObservedCall, SessionObserver
from pipeline.tools.base import ToolCallRecord
from transports.base import mask_phone

#: turns of one call kept in memory for late updates; older ones are complete
KEEP_TURNS = 8


@dataclass(slots=True)
class _Call:
    row: CallRow
    turns: dict[int, TurnRow] = field(default_factory=dict)
    #: the newest user turn: agent errors (which carry no turn id) belong to it
    last_turn_id: int | None = None


class CallRecorder(SessionObserver):
    def __init__(
        self,
        writer: RecordWriter,
        recording_path: Callable[[ObservedCall], str] | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._writer = writer
        self._recording_path = recording_path
        self._now = wall_clock
        self._calls: dict[ObservedCall, _Call] = {}

    def _call(self, session: ObservedCall) -> _Call:
        """The call's state, created (and its row written) on whichever hook comes first."""
        state = self._calls.get(session)
        if state is None:
            info = session.call
            row = CallRow(
                call_id=info.call_id,
                transport=info.transport,
                caller=info.caller,
                # callers are masked by the transport; the called number is masked here
                callee=mask_phone(info.callee) if info.transport == "twilio" else info.callee,
                started_at_s=self._now(),
                recording_path=self._recording_path(session) if self._recording_path else "",
            )
            state = self._calls[session] = _Call(row)
            self._writer.submit(row)
        return state

    def _turn(self, state: _Call, turn_id: int) -> TurnRow:
        turn = state.turns.get(turn_id)
        if turn is None:
            turn = state.turns[turn_id] = TurnRow(state.row.call_id, turn_id, self._now())
            if len(state.turns) > KEEP_TURNS:
                del state.turns[min(state.turns)]
        return turn

    def on_session_created(self, session: ObservedCall) -> None:
        self._call(session)

    def on_call_started(self, session: ObservedCall) -> None:
        self._call(session)

    def on_user_turn(self, session: ObservedCall, turn_id: int, speech_ms: float) -> None:
        state = self._call(session)
        turn = self._turn(state, turn_id)
        turn.user_speech_ms = round(speech_ms, 1)
        state.last_turn_id = turn_id
        self._writer.submit(turn)

    def on_turn_latency(self, session: ObservedCall, turn_id: int, latency_ms: float) -> None:
        turn = self._turn(self._call(session), turn_id)
        turn.latency_ms = round(latency_ms, 1)
        self._writer.submit(turn)

    def on_transcript(self, session: ObservedCall, turn_id: int, role: str, text: str) -> None:
        if role not in ("user", "assistant"):
            return  # keypad digits come through on_keypad
        turn = self._turn(self._call(session), turn_id)
        if role == "user":
            turn.user_text = _join(turn.user_text, text)
        else:
            turn.assistant_text = _join(turn.assistant_text, text)
        self._writer.submit(turn)

    def on_keypad(self, session: ObservedCall, turn_id: int, digits: str) -> None:
        """Digits are kept twice: on their turn (what made it) and, in order, on the call."""
        state = self._call(session)
        state.row.dtmf += digits
        self._writer.submit(state.row)
        turn = self._turn(state, turn_id)
        turn.dtmf += digits
        state.last_turn_id = turn_id
        self._writer.submit(turn)

    def on_tool_call(self, session: ObservedCall, record: ToolCallRecord) -> None:
        state = self._call(session)
        self._writer.submit(ToolCallRow.of(state.row.call_id, record))

    def on_transfer(self, session: ObservedCall, destination: str) -> None:
        state = self._call(session)
        state.row.transferred_to = destination
        self._writer.submit(state.row)

    def on_barge_in(self, session: ObservedCall, turn_id: int, heard_ms: float) -> None:
        state = self._call(session)
        state.row.barge_ins += 1
        turn = self._turn(state, turn_id)
        turn.interrupted = True
        turn.heard_ms = round(heard_ms, 1)
        self._writer.submit(turn)

    def on_agent_error(self, session: ObservedCall, kind: str) -> None:
        state = self._call(session)
        state.row.agent_errors += 1
        if state.last_turn_id is None:
            self._writer.submit(state.row)
            return
        turn = self._turn(state, state.last_turn_id)
        turn.agent_error = _join(turn.agent_error, kind, ",")
        self._writer.submit(turn)

    def on_call_ended(self, session: ObservedCall) -> None:
        state = self._call(session)
        del self._calls[session]
        row = state.row
        row.ended_at_s = self._now()
        row.end_reason = session.end_reason
        row.agent_errors = max(row.agent_errors, session.stats.agent_errors)
        row.barge_ins = max(row.barge_ins, session.stats.barge_ins)
        self._writer.submit(row)


def _join(before: str, text: str, sep: str = " ") -> str:
    return f"{before}{sep}{text}" if before else text
