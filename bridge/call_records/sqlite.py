"""The embedded backend: one SQLite file in WAL mode (stdlib ``sqlite3``).

WAL lets ``bridge calls`` read while the server writes; ``synchronous=NORMAL`` keeps every
committed transaction through a crash of the process (only a power cut may lose the last
ones), which is the durability the records promise.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

from bridge.call_records.model import CallRow, CallSummary, Row, TurnRow
from bridge.call_records.sql import SCHEMA, Statements, row_params, summary_from, turn_from

#: how long a write waits for a lock held by a reader or another writer
BUSY_TIMEOUT_S = 5.0

_SQL = Statements("?")


class SqliteStore:
    def __init__(self, path: str, *, create: bool = True) -> None:
        file = Path(path)
        if create:
            file.parent.mkdir(parents=True, exist_ok=True)
        elif not file.is_file():
            raise FileNotFoundError(f"no call records at {file}")
        # autocommit mode: transactions are explicit (BEGIN/COMMIT) in write()
        self._db = sqlite3.connect(
            file, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
        )
        if create:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for statement in SCHEMA:
                    self._db.execute(statement)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def write(self, rows: Sequence[Row]) -> None:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            for row in rows:
                sql = _SQL.upsert_call if isinstance(row, CallRow) else _SQL.upsert_turn
                db.execute(sql, row_params(row))
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise

    def recent_calls(self, limit: int) -> list[CallSummary]:
        return [summary_from(r) for r in self._db.execute(_SQL.recent_calls, (limit,))]

    def call(self, call_id: str) -> tuple[CallSummary, list[TurnRow]] | None:
        found = self._db.execute(_SQL.one_call, (call_id,)).fetchone()
        if found is None:
            return None
        turns = [turn_from(r) for r in self._db.execute(_SQL.turns_of_call, (call_id,))]
        return summary_from(found), turns

    def close(self) -> None:
        self._db.close()
