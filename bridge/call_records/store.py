"""What the writer thread and the CLI need from a records database, and how to open one."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from bridge.call_records.model import CallDetail, CallSummary, Row
from bridge.call_records.url import RecordsTarget


class RecordStore(Protocol):
    """One connection to the records database. Not thread-safe: one thread uses it."""

    def write(self, rows: Sequence[Row]) -> None:
        """Upsert ``rows`` in one transaction (all or nothing)."""

    def recent_calls(self, limit: int) -> list[CallSummary]:
        """The ``limit`` most recently started calls, newest first."""
        ...

    def call(self, call_id: str) -> CallDetail | None:
        """One call with its turns and tool calls in order, or None."""
        ...

    def close(self) -> None: ...


def open_store(target: RecordsTarget, *, create: bool = True) -> RecordStore:
    """Connect and (with ``create``) make sure the schema exists; idempotent.

    Either way an existing database of an older version is upgraded in place (columns and
    tables added), so a newer ``bridge calls`` can read what an older server wrote.
    """
    if target.kind == "sqlite":
        from bridge.call_records.sqlite import SqliteStore

        return SqliteStore(target.location, create=create)
    from bridge.call_records.postgres import PostgresStore

    return PostgresStore(target.location, create=create)
