"""The shared backend: PostgreSQL through psycopg 3, for several bridge instances.

Instances starting together may all run the ``CREATE … IF NOT EXISTS`` statements at once,
which PostgreSQL does not make race-free; a transaction-scoped advisory lock serialises them.
"""

from __future__ import annotations

from collections.abc import Sequence

import psycopg

from bridge.call_records.model import CallRow, CallSummary, Row, TurnRow
from bridge.call_records.sql import SCHEMA, Statements, row_params, summary_from, turn_from

#: an arbitrary constant naming "the bridge's schema migration" among advisory locks
SCHEMA_LOCK_ID = 0x6272_6467
CONNECT_TIMEOUT_S = 5

_SQL = Statements("%s")


class PostgresStore:
    """Autocommit connection; every method runs in its own explicit transaction."""

    def __init__(self, url: str, *, create: bool = True) -> None:
        self._db = psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT_S, autocommit=True)
        if create:
            with self._db.transaction():
                self._db.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK_ID,))
                for statement in SCHEMA:
                    self._db.execute(statement)

    def write(self, rows: Sequence[Row]) -> None:
        with self._db.transaction(), self._db.cursor() as cur:
            calls = [row_params(r) for r in rows if isinstance(r, CallRow)]
            turns = [row_params(r) for r in rows if isinstance(r, TurnRow)]
            # calls before turns keeps "the call row exists first" for readers of a batch
            if calls:
                cur.executemany(_SQL.upsert_call, calls)
            if turns:
                cur.executemany(_SQL.upsert_turn, turns)

    def recent_calls(self, limit: int) -> list[CallSummary]:
        with self._db.transaction():
            rows = self._db.execute(_SQL.recent_calls, (limit,)).fetchall()
        return [summary_from(r) for r in rows]

    def call(self, call_id: str) -> tuple[CallSummary, list[TurnRow]] | None:
        with self._db.transaction():
            found = self._db.execute(_SQL.one_call, (call_id,)).fetchone()
            if found is None:
                return None
            turns = self._db.execute(_SQL.turns_of_call, (call_id,)).fetchall()
        return summary_from(found), [turn_from(r) for r in turns]

    def close(self) -> None:
        self._db.close()
