"""The schema and statements both backends share: portable SQL, one placeholder style apart.

Only types and syntax that SQLite (3.24+) and PostgreSQL (9.5+) both understand are used:
``TEXT``, ``INTEGER``, ``DOUBLE PRECISION`` and ``INSERT … ON CONFLICT … DO UPDATE``.
Booleans are stored as 0/1 integers; times are Unix seconds (``_s``). Turns carry no foreign
key to their call: each row is written on its own, so a lost call row never costs its turns.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields
from typing import Any

from bridge.call_records.model import CallRow, CallSummary, Row, TurnRow

SCHEMA: tuple[str, ...] = (
    """CREATE TABLE IF NOT EXISTS calls (
        call_id TEXT PRIMARY KEY,
        transport TEXT NOT NULL,
        caller TEXT NOT NULL DEFAULT '',
        callee TEXT NOT NULL DEFAULT '',
        started_at_s DOUBLE PRECISION NOT NULL,
        ended_at_s DOUBLE PRECISION,
        end_reason TEXT NOT NULL DEFAULT '',
        dtmf TEXT NOT NULL DEFAULT '',
        agent_errors INTEGER NOT NULL DEFAULT 0,
        barge_ins INTEGER NOT NULL DEFAULT 0,
        recording_path TEXT NOT NULL DEFAULT ''
    )""",
    "CREATE INDEX IF NOT EXISTS calls_started_at ON calls (started_at_s)",
    """CREATE TABLE IF NOT EXISTS turns (
        call_id TEXT NOT NULL,
        turn_id INTEGER NOT NULL,
        at_s DOUBLE PRECISION NOT NULL,
        user_speech_ms DOUBLE PRECISION,
        latency_ms DOUBLE PRECISION,
        user_text TEXT NOT NULL DEFAULT '',
        assistant_text TEXT NOT NULL DEFAULT '',
        interrupted INTEGER NOT NULL DEFAULT 0,
        heard_ms DOUBLE PRECISION,
        agent_error TEXT NOT NULL DEFAULT '',
        PRIMARY KEY (call_id, turn_id)
    )""",
)

CALL_COLUMNS = tuple(f.name for f in fields(CallRow))
TURN_COLUMNS = tuple(f.name for f in fields(TurnRow))


def _upsert(table: str, columns: Sequence[str], keys: Sequence[str], mark: str) -> str:
    updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c not in keys)
    return (
        f"INSERT INTO {table} ({', '.join(columns)}) "
        f"VALUES ({', '.join(mark for _ in columns)}) "
        f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {updates}"
    )


class Statements:
    """Every statement for one placeholder style (``?`` for sqlite3, ``%s`` for psycopg)."""

    def __init__(self, mark: str) -> None:
        self.upsert_call = _upsert("calls", CALL_COLUMNS, ("call_id",), mark)
        self.upsert_turn = _upsert("turns", TURN_COLUMNS, ("call_id", "turn_id"), mark)
        call_cols = ", ".join(f"c.{c}" for c in CALL_COLUMNS)
        self.recent_calls = (
            f"SELECT {call_cols}, "
            "(SELECT COUNT(*) FROM turns t WHERE t.call_id = c.call_id) "
            f"FROM calls c ORDER BY c.started_at_s DESC LIMIT {mark}"
        )
        self.one_call = (
            f"SELECT {call_cols}, "
            "(SELECT COUNT(*) FROM turns t WHERE t.call_id = c.call_id) "
            f"FROM calls c WHERE c.call_id = {mark}"
        )
        self.turns_of_call = (
            f"SELECT {', '.join(TURN_COLUMNS)} FROM turns WHERE call_id = {mark} ORDER BY turn_id"
        )


def row_params(row: Row) -> tuple[Any, ...]:
    if isinstance(row, CallRow):
        return tuple(getattr(row, c) for c in CALL_COLUMNS)
    return tuple(
        int(row.interrupted) if c == "interrupted" else getattr(row, c) for c in TURN_COLUMNS
    )


def summary_from(values: Sequence[Any]) -> CallSummary:
    n = len(CALL_COLUMNS)
    return CallSummary(CallRow(*values[:n]), int(values[n]))


def turn_from(values: Sequence[Any]) -> TurnRow:
    turn = TurnRow(*values)
    turn.interrupted = bool(turn.interrupted)
    return turn
