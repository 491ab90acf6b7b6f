"""A records database written by the previous version is upgraded in place at start-up."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import psycopg
import pytest

from bridge.call_records.model import CallRow, TurnRow, TwilioStatusRow
from bridge.call_records.sql import TABLES
from tests.bridge.call_records.helpers import detail, opened, tool_row, write

#: the schema before transfers, keypad turns, tool calls and Twilio's status (verbatim)
OLD_SCHEMA = (
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
OLD_ROWS = (
    "INSERT INTO calls (call_id, transport, caller, callee, started_at_s, ended_at_s, "
    "end_reason, dtmf, agent_errors, barge_ins, recording_path) "
    "VALUES ('CAold', 'twilio', '****1111', '****2222', 1000.0, 1030.0, 'stop', '12', 1, 2, '')",
    "INSERT INTO turns (call_id, turn_id, at_s, user_speech_ms, latency_ms, user_text, "
    "assistant_text, interrupted, heard_ms, agent_error) "
    "VALUES ('CAold', 1, 1005.0, 900.0, 400.0, 'hello', 'hi', 1, 250.0, '')",
)


def make_old_database(url: str) -> None:
    """The previous version's schema and one call in it, through the driver directly."""
    if url.startswith("sqlite:///"):
        path = Path(url[len("sqlite:///") :])
        path.parent.mkdir(parents=True, exist_ok=True)
        with sqlite3.connect(path) as db:
            for statement in (*OLD_SCHEMA, *OLD_ROWS):
                db.execute(statement)
        return
    with psycopg.connect(url, autocommit=True) as pg:
        for statement in (*OLD_SCHEMA, *OLD_ROWS):
            pg.execute(statement)


def columns(url: str, table: str) -> set[str]:
    if url.startswith("sqlite:///"):
        with sqlite3.connect(url[len("sqlite:///") :]) as db:
            return {r[1] for r in db.execute(f"PRAGMA table_info({table})")}
    with psycopg.connect(url) as pg:
        rows = pg.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = %s",
            (table,),
        ).fetchall()
    return {str(r[0]) for r in rows}


def assert_current(url: str) -> None:
    for table in TABLES:
        assert columns(url, table.name) == {name for name, _ in table.columns}, table.name


def test_an_old_database_is_upgraded_at_start_up_and_keeps_its_rows(store_url: str) -> None:
    make_old_database(store_url)
    assert "transferred_to" not in columns(store_url, "calls")
    with opened(store_url):  # what the server's writer does at start-up
        pass
    assert_current(store_url)

    old = detail(store_url, "CAold")
    call = old.summary.call
    assert (call.caller, call.end_reason, call.dtmf, call.agent_errors) == (
        "****1111",
        "stop",
        "12",
        1,
    )
    assert (call.transferred_to, old.summary.twilio_status, old.summary.answered_by) == ("", "", "")
    assert old.summary.twilio_duration_s is None and old.summary.turns == 1
    [turn] = old.turns
    assert (turn.user_text, turn.interrupted, turn.heard_ms, turn.dtmf) == (
        "hello",
        True,
        250.0,
        "",
    )
    assert old.tool_calls == []

    # the new columns and table work, on the old call and on a new one
    write(
        store_url,
        [
            CallRow(
                "CAold",
                "twilio",
                "****1111",
                "****2222",
                1000.0,
                1030.0,
                "transferred",
                transferred_to="billing +15551230002",
            ),
            TurnRow("CAold", 2, 1010.0, 0.0, dtmf="42#"),
            tool_row(
                "CAold",
                1,
                2,
                "order_status",
                '{"order_id": "42"}',
                1010.5,
                result='{"status": "shipped"}',
                duration_ms=312.0,
            ),
            TwilioStatusRow("CAold", 1031.0, "completed", 31.0, "human"),
        ],
    )
    upgraded = detail(store_url, "CAold")
    assert upgraded.summary.call.transferred_to == "billing +15551230002"
    assert upgraded.summary.twilio_status == "completed"
    assert [t.dtmf for t in upgraded.turns] == ["", "42#"]
    assert [(t.name, t.duration_ms) for t in upgraded.tool_calls] == [("order_status", 312.0)]


def test_upgrading_is_idempotent(store_url: str) -> None:
    make_old_database(store_url)
    for _ in range(3):
        with opened(store_url):
            pass
    assert_current(store_url)
    assert detail(store_url, "CAold").summary.call.dtmf == "12"


def test_a_reader_upgrades_an_old_database_too(store_url: str) -> None:
    """``bridge calls`` of this version against a database an older server still writes:
    it must read it, so it adds the columns (without creating anything else)."""
    make_old_database(store_url)
    assert detail(store_url, "CAold").turns[0].user_text == "hello"  # create=False
    assert_current(store_url)


def test_a_reader_leaves_a_current_database_alone(store_url: str) -> None:
    with opened(store_url):
        pass
    with opened(store_url, create=False) as store:
        assert store.call("CAnope") is None
    assert_current(store_url)


def test_a_fresh_database_gets_the_whole_schema(store_url: str) -> None:
    with opened(store_url):
        pass
    assert_current(store_url)


def test_instances_starting_together_upgrade_once_without_errors(store_url: str) -> None:
    """Several servers (threads here) open one old database at the same moment: the lock
    (advisory on PostgreSQL, the write lock on SQLite) makes each decide what is missing only
    when it holds it, so no one adds a column twice."""
    make_old_database(store_url)
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def open_one() -> None:
        try:
            start.wait(5)
            with opened(store_url):
                pass
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    assert_current(store_url)
    assert detail(store_url, "CAold").summary.call.barge_ins == 2


def test_a_missing_sqlite_file_is_not_created_by_a_reader(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'absent.db'}"
    with pytest.raises(FileNotFoundError), opened(url, create=False):
        pass
    assert not (tmp_path / "absent.db").exists()
