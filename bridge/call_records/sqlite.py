"""The embedded backend: one SQLite file in WAL mode (stdlib ``sqlite3``).

WAL lets ``bridge calls`` read while the server writes; ``synchronous=NORMAL`` keeps every
committed transaction through a crash of the process (only a power cut may lose the last
ones), which is the durability the records promise.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

from bridge.call_records.model import CallDetail, CallSummary, Row
from bridge.call_records.sql import (
    Statements,
    needs_upgrade,
    summary_from,
    tool_call_from,
    turn_from,
    upgrade_statements,
)

#: how long a write waits for a lock held by a reader or another writer
BUSY_TIMEOUT_S = 5.0

_SQL = Statements("?")


class SqliteStore:
    def __init__(self, path: str, *, create: bool = True) -> None:
        """Open (with ``create``, make) the file and bring its schema up to date.

        Without ``create`` the file must exist; an older schema is still upgraded (the
        columns are only added), since this version's reader cannot read it otherwise.
        """
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
        if create or needs_upgrade(self._columns):
            self._upgrade()

    def _columns(self, table: str) -> list[str]:
        """``table``'s columns; none when it does not exist."""
        return [r[1] for r in self._db.execute(f"PRAGMA table_info({table})")]

    def _upgrade(self) -> None:
        """Create what is missing, under the write lock: two processes starting together
        cannot both add one column (the second finds it there once it has the lock)."""
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            for statement in upgrade_statements(self._columns):
                db.execute(statement)
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise

    def write(self, rows: Sequence[Row]) -> None:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            for sql, params in _SQL.batches(rows):
                db.executemany(sql, params)
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise

    def recent_calls(self, limit: int) -> list[CallSummary]:
        return [summary_from(r) for r in self._db.execute(_SQL.recent_calls, (limit,))]

    def call(self, call_id: str) -> CallDetail | None:
        db = self._db
        # one read transaction: the call, its turns and tool calls as of one moment
        db.execute("BEGIN")
        try:
            found = db.execute(_SQL.one_call, (call_id,)).fetchone()
            if found is None:
                return None
            turns = [turn_from(r) for r in db.execute(_SQL.turns_of_call, (call_id,))]
            tools = [tool_call_from(r) for r in db.execute(_SQL.tool_calls_of_call, (call_id,))]
        finally:
            db.execute("COMMIT")
        return CallDetail(summary_from(found), turns, tools)

    def close(self) -> None:
        self._db.close()
