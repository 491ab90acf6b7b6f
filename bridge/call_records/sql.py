"""The schema and statements both backends share: portable SQL, one placeholder style apart.

Only types and syntax that SQLite (3.24+) and PostgreSQL (9.5+) both understand are used:
``TEXT``, ``INTEGER``, ``DOUBLE PRECISION``, ``INSERT … ON CONFLICT … DO UPDATE`` and
``ALTER TABLE … ADD COLUMN``. Booleans are stored as 0/1 integers; times are Unix seconds
(``_s``). Turns and tool calls carry no foreign key to their call: each row is written on its
own, so a lost call row never costs its turns.

The schema is kept as data (:data:`TABLES`) so that one description both creates a new
database and upgrades an older one: a table that is missing is created, a column that is
missing is added. A column added after a table's first version must therefore be nullable or
have a default (``ADD COLUMN`` cannot fill existing rows otherwise), and keys never change.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, fields
from typing import Any

from bridge.call_records.model import (
    FINAL_TWILIO_STATUSES,
    CallRow,
    CallSummary,
    Row,
    ToolCallRow,
    TurnRow,
    TwilioStatusRow,
)


@dataclass(frozen=True, slots=True)
class Table:
    name: str
    #: (name, type and constraints), in order
    columns: tuple[tuple[str, str], ...]
    key: tuple[str, ...]
    #: ``CREATE INDEX IF NOT EXISTS`` statements
    indexes: tuple[str, ...] = ()

    def create(self) -> str:
        body = [f"{name} {ddl}" for name, ddl in self.columns]
        body.append(f"PRIMARY KEY ({', '.join(self.key)})")
        return f"CREATE TABLE IF NOT EXISTS {self.name} (\n    " + ",\n    ".join(body) + "\n)"


CALLS = Table(
    "calls",
    (
        ("call_id", "TEXT NOT NULL"),
        ("transport", "TEXT NOT NULL"),
        ("caller", "TEXT NOT NULL DEFAULT ''"),
        ("callee", "TEXT NOT NULL DEFAULT ''"),
        ("started_at_s", "DOUBLE PRECISION NOT NULL"),
        ("ended_at_s", "DOUBLE PRECISION"),
        ("end_reason", "TEXT NOT NULL DEFAULT ''"),
        ("dtmf", "TEXT NOT NULL DEFAULT ''"),
        ("agent_errors", "INTEGER NOT NULL DEFAULT 0"),
        ("barge_ins", "INTEGER NOT NULL DEFAULT 0"),
        ("recording_path", "TEXT NOT NULL DEFAULT ''"),
        # added with tool calls and transfers
        ("transferred_to", "TEXT NOT NULL DEFAULT ''"),
        ("answered_by", "TEXT NOT NULL DEFAULT ''"),
        ("twilio_status", "TEXT NOT NULL DEFAULT ''"),
        ("twilio_duration_s", "DOUBLE PRECISION"),
    ),
    ("call_id",),
    ("CREATE INDEX IF NOT EXISTS calls_started_at ON calls (started_at_s)",),
)
TURNS = Table(
    "turns",
    (
        ("call_id", "TEXT NOT NULL"),
        ("turn_id", "INTEGER NOT NULL"),
        ("at_s", "DOUBLE PRECISION NOT NULL"),
        ("user_speech_ms", "DOUBLE PRECISION"),
        ("latency_ms", "DOUBLE PRECISION"),
        ("user_text", "TEXT NOT NULL DEFAULT ''"),
        ("assistant_text", "TEXT NOT NULL DEFAULT ''"),
        ("interrupted", "INTEGER NOT NULL DEFAULT 0"),
        ("heard_ms", "DOUBLE PRECISION"),
        ("agent_error", "TEXT NOT NULL DEFAULT ''"),
        # added with keypad turns
        ("dtmf", "TEXT NOT NULL DEFAULT ''"),
    ),
    ("call_id", "turn_id"),
)
TOOL_CALLS = Table(
    "tool_calls",
    (
        ("call_id", "TEXT NOT NULL"),
        ("seq", "INTEGER NOT NULL"),
        ("turn_id", "INTEGER NOT NULL"),
        ("name", "TEXT NOT NULL"),
        ("arguments", "TEXT NOT NULL DEFAULT ''"),
        ("started_at_s", "DOUBLE PRECISION NOT NULL"),
        ("result", "TEXT NOT NULL DEFAULT ''"),
        ("error", "TEXT NOT NULL DEFAULT ''"),
        ("duration_ms", "DOUBLE PRECISION"),
        ("speech_cancelled", "INTEGER NOT NULL DEFAULT 0"),
    ),
    # the key's first column also serves "the tool calls of one call"
    ("call_id", "seq"),
)
TABLES = (CALLS, TURNS, TOOL_CALLS)

#: a fresh database's statements (``upgrade_statements`` of an empty database)
SCHEMA: tuple[str, ...] = tuple(s for t in TABLES for s in (t.create(), *t.indexes))

#: the session's columns of ``calls``; Twilio's (below) are written only by TwilioStatusRow
CALL_COLUMNS = tuple(f.name for f in fields(CallRow))
TWILIO_COLUMNS = ("twilio_status", "twilio_duration_s", "answered_by")
TURN_COLUMNS = tuple(f.name for f in fields(TurnRow))
TOOL_CALL_COLUMNS = tuple(f.name for f in fields(ToolCallRow))


def upgrade_statements(columns_of: Callable[[str], Collection[str]]) -> list[str]:
    """What brings a database to :data:`TABLES`, given each table's present columns (none
    for a missing table): creates, ``ADD COLUMN``\\ s and the (idempotent) indexes."""
    statements: list[str] = []
    for table in TABLES:
        present = {c.lower() for c in columns_of(table.name)}
        if not present:
            statements.append(table.create())
        else:
            statements.extend(
                f"ALTER TABLE {table.name} ADD COLUMN {name} {ddl}"
                for name, ddl in table.columns
                if name not in present
            )
        statements.extend(table.indexes)
    return statements


def needs_upgrade(columns_of: Callable[[str], Collection[str]]) -> bool:
    """True when a database holding call records (it has ``calls``) lacks part of the schema."""
    present = {t.name: {c.lower() for c in columns_of(t.name)} for t in TABLES}
    if not present[CALLS.name]:
        return False  # not a records database (yet): only a writer creates one
    return any(name not in present[t.name] for t in TABLES for name, _ in t.columns)


def _upsert(table: str, columns: Sequence[str], keys: Sequence[str], mark: str) -> str:
    updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c not in keys)
    return (
        f"INSERT INTO {table} ({', '.join(columns)}) "
        f"VALUES ({', '.join(mark for _ in columns)}) "
        f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {updates}"
    )


def _upsert_twilio_status(mark: str) -> str:
    """Create the call's row, or merge into it only what this callback knows.

    A final status is never replaced by a non-final one: Twilio does not promise its
    callbacks arrive in order, and "ringing" arriving late must not undo "completed".
    """
    session = ("call_id", "transport", "caller", "callee", "started_at_s", "ended_at_s")
    columns = (*session, *TWILIO_COLUMNS)
    finals = ", ".join(f"'{s}'" for s in FINAL_TWILIO_STATUSES)
    return (
        f"INSERT INTO calls ({', '.join(columns)}) "
        f"VALUES ({', '.join(mark for _ in columns)}) "
        "ON CONFLICT (call_id) DO UPDATE SET "
        "twilio_status = CASE WHEN excluded.twilio_status = '' THEN calls.twilio_status "
        f"WHEN calls.twilio_status IN ({finals}) AND excluded.twilio_status NOT IN ({finals}) "
        "THEN calls.twilio_status ELSE excluded.twilio_status END, "
        "twilio_duration_s = COALESCE(excluded.twilio_duration_s, calls.twilio_duration_s), "
        "answered_by = CASE WHEN excluded.answered_by = '' THEN calls.answered_by "
        "ELSE excluded.answered_by END"
    )


class Statements:
    """Every statement for one placeholder style (``?`` for sqlite3, ``%s`` for psycopg)."""

    def __init__(self, mark: str) -> None:
        self.upsert_call = _upsert("calls", CALL_COLUMNS, ("call_id",), mark)
        self.upsert_twilio_status = _upsert_twilio_status(mark)
        self.upsert_turn = _upsert("turns", TURN_COLUMNS, TURNS.key, mark)
        self.upsert_tool_call = _upsert("tool_calls", TOOL_CALL_COLUMNS, TOOL_CALLS.key, mark)
        call_cols = ", ".join(f"c.{c}" for c in (*CALL_COLUMNS, *TWILIO_COLUMNS))
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
        self.tool_calls_of_call = (
            f"SELECT {', '.join(TOOL_CALL_COLUMNS)} FROM tool_calls "
            f"WHERE call_id = {mark} ORDER BY seq"
        )

    def batches(self, rows: Sequence[Row]) -> list[tuple[str, list[tuple[Any, ...]]]]:
        """``rows`` as (statement, parameters) groups for ``executemany``: call rows first,
        so a reader of one batch finds the call before its turns; each kind keeps its order."""
        groups: list[tuple[str, type, list[tuple[Any, ...]]]] = [
            (self.upsert_call, CallRow, []),
            (self.upsert_twilio_status, TwilioStatusRow, []),
            (self.upsert_turn, TurnRow, []),
            (self.upsert_tool_call, ToolCallRow, []),
        ]
        for row in rows:
            for _, kind, params in groups:
                if isinstance(row, kind):
                    params.append(row_params(row))
                    break
        return [(sql, params) for sql, _, params in groups if params]


def _values(row: Row, columns: Sequence[str]) -> tuple[Any, ...]:
    values = (getattr(row, c) for c in columns)
    return tuple(int(v) if isinstance(v, bool) else v for v in values)


def row_params(row: Row) -> tuple[Any, ...]:
    if isinstance(row, CallRow):
        return _values(row, CALL_COLUMNS)
    if isinstance(row, TurnRow):
        return _values(row, TURN_COLUMNS)
    if isinstance(row, ToolCallRow):
        return _values(row, TOOL_CALL_COLUMNS)
    duration = row.twilio_duration_s
    return (
        row.call_id,
        "twilio",
        row.caller,
        row.callee,
        row.at_s if duration is None else row.at_s - duration,
        row.at_s if row.is_final else None,
        row.twilio_status,
        duration,
        row.answered_by,
    )


def summary_from(values: Sequence[Any]) -> CallSummary:
    n = len(CALL_COLUMNS)
    status, duration, answered_by, turns = values[n : n + 4]
    return CallSummary(CallRow(*values[:n]), int(turns), status, duration, answered_by)


def turn_from(values: Sequence[Any]) -> TurnRow:
    turn = TurnRow(*values)
    turn.interrupted = bool(turn.interrupted)
    return turn


def tool_call_from(values: Sequence[Any]) -> ToolCallRow:
    tool_call = ToolCallRow(*values)
    tool_call.speech_cancelled = bool(tool_call.speech_cancelled)
    return tool_call
