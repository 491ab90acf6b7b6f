"""The shared backend: PostgreSQL through psycopg 3, for several bridge instances.

Instances starting together may all run the ``CREATE … IF NOT EXISTS`` and ``ADD COLUMN``
statements at once, which PostgreSQL does not make race-free; a transaction-scoped advisory
lock serialises them, and each instance decides what is missing only once it holds the lock.
"""

from __future__ import annotations

from collections.abc import Sequence

import psycopg

from bridge.call_records.model import CallDetail, CallSummary, Row
from bridge.call_records.sql import (
    Statements,
    needs_upgrade,
    summary_from,
    tool_call_from,
    turn_from,
    upgrade_statements,
)

#: an arbitrary constant naming "the bridge's schema migration" among advisory locks
SCHEMA_LOCK_ID = 0x6272_6467
CONNECT_TIMEOUT_S = 5

_SQL = Statements("%s")


class PostgresStore:
    """Autocommit connection; every method runs in its own explicit transaction."""

    def __init__(self, url: str, *, create: bool = True) -> None:
        """Connect and (with ``create``) make the schema; an older schema is upgraded either
        way, since this version's reader cannot read it otherwise."""
        self._db = psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT_S, autocommit=True)
        if not create:
            with self._db.transaction():
                if not needs_upgrade(self._columns):
                    return
        with self._db.transaction():
            self._db.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK_ID,))
            for statement in upgrade_statements(self._columns):
                self._db.execute(statement)

    def _columns(self, table: str) -> list[str]:
        """``table``'s columns in the schema new tables go to; none when it does not exist."""
        rows = self._db.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = %s",
            (table,),
        ).fetchall()
        return [str(r[0]) for r in rows]

    def write(self, rows: Sequence[Row]) -> None:
        with self._db.transaction(), self._db.cursor() as cur:
            for sql, params in _SQL.batches(rows):
                cur.executemany(sql, params)

    def recent_calls(self, limit: int) -> list[CallSummary]:
        with self._db.transaction():
            rows = self._db.execute(_SQL.recent_calls, (limit,)).fetchall()
        return [summary_from(r) for r in rows]

    def call(self, call_id: str) -> CallDetail | None:
        with self._db.transaction():
            found = self._db.execute(_SQL.one_call, (call_id,)).fetchone()
            if found is None:
                return None
            turns = self._db.execute(_SQL.turns_of_call, (call_id,)).fetchall()
            tools = self._db.execute(_SQL.tool_calls_of_call, (call_id,)).fetchall()
        return CallDetail(
            summary_from(found), [turn_from(r) for r in turns], [tool_call_from(r) for r in tools]
        )

    def close(self) -> None:
        self._db.close()
