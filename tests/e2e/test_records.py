"""Call records end to end: real calls over real sockets, rows in SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from bridge.call_records.service import CallRecords
from tests.fakes.agents import Factory, FailingTurnAgent, ToneAgent
from tests.support import records as records_fixtures
from tests.support.records import TranscriptAgent, wait_for_call
from tests.support.serverthread import MakeServer, ServerThread
from tests.support.toys import hello_16k, open_toy
from tests.support.twilio_calls import (
    assert_heard_own_words,
    background,
    open_call,
    say,
    say_and_listen,
)

postgres_url = records_fixtures.postgres_url
store_url = records_fixtures.store_url
ROOT = Path(__file__).resolve().parents[2]
CALLER = "+15550001111"
CALLEE = "+15550002222"


def records_of(server: ServerThread) -> CallRecords:
    records = server.app.state.bridge.records
    assert isinstance(records, CallRecords)
    return records


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bridge.cli", *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_phone_call_is_recorded_turn_by_turn_and_listed_by_the_cli(
    make_server: MakeServer, store_url: str, hello_ulaw: bytes
) -> None:
    factory = Factory(lambda call: TranscriptAgent(call, reply_ms=600))
    server = make_server(factory, BRIDGE_RECORDS_URL=store_url)
    peer = await open_call(server, params={"from": CALLER, "to": CALLEE})
    # a keypad entry ("7", then "#" ends it) is a turn of its own, answered like speech
    talker = background(peer.silence(20_000))
    try:
        await peer.send_dtmf("7")
        await peer.send_dtmf("#")
        await peer.wait_for_media(1)
        await peer.wait_quiet(quiet_s=0.8, timeout_s=20)
    finally:
        talker.cancel()
    for _ in range(2):
        await say_and_listen(peer, hello_ulaw)
    await peer.send_stop()
    await peer.wait_closed()
    await peer.close()
    # Twilio's status callback comes after the stream has ended
    records = records_of(server)
    records.twilio_status(peer.call_sid, status="completed", duration_s=9.0, answered_by="human")
    assert records.writer is not None and await asyncio.to_thread(records.writer.flush)

    found = await asyncio.to_thread(wait_for_call, store_url, peer.call_sid)
    summary, turns = found.summary, found.turns
    call = summary.call
    assert (call.transport, call.caller, call.callee) == ("twilio", "********1111", "********2222")
    assert call.end_reason == "stop" and call.dtmf == "7"
    assert (summary.twilio_status, summary.twilio_duration_s) == ("completed", 9.0)
    assert summary.answered_by == "human"
    assert call.ended_at_s is not None and 2 < call.ended_at_s - call.started_at_s < 60
    assert summary.turns == 3 and [t.turn_id for t in turns] == [1, 2, 3]
    keyed = turns[0]
    assert (keyed.dtmf, keyed.user_text, keyed.assistant_text) == ("7", "", "you pressed 7")
    assert keyed.latency_ms is not None and 0 <= keyed.latency_ms < 2000
    assert not keyed.interrupted and call.barge_ins == 0
    for n, turn in enumerate(turns[1:], start=1):
        assert turn.user_text == f"question {n}" and turn.assistant_text == f"answer {n}"
        assert turn.user_speech_ms is not None and 500 < turn.user_speech_ms < 5000
        # measured from the turn's commit (after the silence window) to the first reply audio
        assert turn.latency_ms is not None and 0 <= turn.latency_ms < 2000
        assert not turn.interrupted and turn.heard_ms is None and turn.agent_error == ""
        assert call.started_at_s <= turn.at_s <= call.ended_at_s
        assert turn.dtmf == ""

    listing = await asyncio.to_thread(run_cli, "calls", env={"BRIDGE_RECORDS_URL": store_url})
    assert listing.returncode == 0, listing.stderr
    header, line = listing.stdout.splitlines()[:2]
    assert header.split()[:2] == ["CALL", "ID"]
    assert line.split()[:5] == [peer.call_sid, "twilio", "********1111", "->", "********2222"]
    assert line.split()[-2:] == ["3", "stop"]

    as_json = await asyncio.to_thread(run_cli, "calls", "--url", store_url, "--json")
    assert as_json.returncode == 0, as_json.stderr
    [listed] = json.loads(as_json.stdout)
    assert listed["call_id"] == peer.call_sid and listed["turns"] == 3
    assert listed["duration_s"] == pytest.approx(call.ended_at_s - call.started_at_s, abs=0.01)
    assert (listed["twilio_status"], listed["answered_by"]) == ("completed", "human")

    shown = await asyncio.to_thread(run_cli, "calls", "show", peer.call_sid, "--url", store_url)
    assert shown.returncode == 0, shown.stderr
    assert "reason: stop" in shown.stdout and "dtmf 7" in shown.stdout
    assert "user:      question 2" in shown.stdout and "assistant: answer 2" in shown.stdout
    assert "keypad:    7" in shown.stdout and "assistant: you pressed 7" in shown.stdout
    assert "twilio status completed, duration 9s" in shown.stdout
    assert "answered by human" in shown.stdout
    assert shown.stdout.count("latency ") == 3

    detail = await asyncio.to_thread(
        run_cli, "calls", "show", peer.call_sid, "--json", "--url", store_url
    )
    shown_json = json.loads(detail.stdout)
    rows = shown_json["turn_rows"]
    assert [r["user_text"] for r in rows] == ["", "question 1", "question 2"]
    assert [r["dtmf"] for r in rows] == ["7", "", ""]
    assert shown_json["tool_calls"] == [] and shown_json["transferred_to"] == ""

    missing = await asyncio.to_thread(run_cli, "calls", "show", "CAnope", "--url", store_url)
    assert missing.returncode == 1 and "no call 'CAnope'" in missing.stderr


async def test_barge_in_and_agent_errors_are_recorded(
    make_server: MakeServer, store_url: str, hello_ulaw: bytes, interrupt_ulaw: bytes
) -> None:
    server = make_server(
        Factory(lambda call: ToneAgent(call, reply_ms=5000)), BRIDGE_RECORDS_URL=store_url
    )
    peer = await open_call(server)
    await say(peer, hello_ulaw)
    await peer.wait_for_media(10)
    await peer.stream(interrupt_ulaw)
    await say(peer, b"", lead_ms=0, tail_ms=1500)
    await peer.send_stop()
    await peer.wait_closed()
    await peer.close()
    found = await asyncio.to_thread(wait_for_call, store_url, peer.call_sid)
    summary, turns = found.summary, found.turns
    assert summary.call.barge_ins == 1
    assert turns[0].interrupted and turns[0].heard_ms is not None
    assert 0 < turns[0].heard_ms < 5000

    failing = make_server(Factory(FailingTurnAgent), BRIDGE_RECORDS_URL=store_url)
    peer = await open_call(failing)
    await say(peer, hello_ulaw, tail_ms=1500)
    await peer.send_stop()
    await peer.wait_closed()
    await peer.close()
    found = await asyncio.to_thread(wait_for_call, store_url, peer.call_sid)
    summary, turns = found.summary, found.turns
    assert summary.call.agent_errors == 1 and turns[0].agent_error == "RuntimeError"


async def test_toy_session_is_recorded(make_server: MakeServer, store_url: str) -> None:
    server = make_server(BRIDGE_RECORDS_URL=store_url)  # the echo agent
    toy = await open_toy(server, token=None)
    await toy.wait_responses(1)  # the greeting slot
    await toy.speak(hello_16k())
    await toy.wait_responses(2)
    await toy.send_instruction("END_SESSION")
    await toy.wait_closed()
    await toy.close()
    records = records_of(server)
    assert records.writer is not None
    await asyncio.to_thread(records.writer.flush)  # the call row exists from the start
    listing = await asyncio.to_thread(run_cli, "calls", "--json", "--url", store_url)
    [row] = json.loads(listing.stdout)
    assert row["transport"] == "esp32" and row["call_id"].startswith("esp32-")
    assert row["caller"]  # the device label
    found = await asyncio.to_thread(wait_for_call, store_url, row["call_id"])
    summary, turns = found.summary, found.turns
    assert summary.turns == 1 and summary.call.end_reason
    assert turns[0].user_speech_ms is not None and turns[0].user_speech_ms > 500
    assert turns[0].latency_ms is not None


# -- a failing database never breaks a call -------------------------------------------------


async def echo_call_works(server: ServerThread, hello_ulaw: bytes) -> str:
    peer = await open_call(server)
    sent = await say_and_listen(peer, hello_ulaw)
    assert_heard_own_words(peer, hello_ulaw, sent)
    await peer.send_stop()
    assert await peer.wait_closed() == 1000
    await peer.close()
    return peer.call_sid


async def test_unreachable_postgres_costs_no_call(
    make_server: MakeServer, hello_ulaw: bytes
) -> None:
    server = make_server(BRIDGE_RECORDS_URL="postgresql://nobody:x@127.0.0.1:1/none")
    await echo_call_works(server, hello_ulaw)
    await echo_call_works(server, hello_ulaw)
    writer = records_of(server).writer
    assert writer is not None and writer.stats.failures >= 1
    assert writer.stats.rows_written == 0


async def test_unwritable_sqlite_path_costs_no_call(
    make_server: MakeServer, tmp_path: Path, hello_ulaw: bytes
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    server = make_server(BRIDGE_RECORDS_URL=f"sqlite:///{blocker / 'calls.db'}")
    await echo_call_works(server, hello_ulaw)
    writer = records_of(server).writer
    assert writer is not None and writer.stats.failures >= 1


async def test_locked_sqlite_delays_records_but_loses_none(
    make_server: MakeServer, tmp_path: Path, hello_ulaw: bytes
) -> None:
    """Another process holds the write lock for the whole call: the call goes on, the writer
    thread waits and retries, and once the lock is gone the record is complete."""
    db_path = tmp_path / "calls.db"
    url = f"sqlite:///{db_path}"
    server = make_server(BRIDGE_RECORDS_URL=url)
    writer = records_of(server).writer
    assert writer is not None
    assert await asyncio.to_thread(writer.flush)  # schema created
    locker = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False)
    locker.execute("BEGIN EXCLUSIVE")
    try:
        call_sid = await echo_call_works(server, hello_ulaw)
        assert writer.stats.rows_written == 0
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    found = await asyncio.to_thread(wait_for_call, url, call_sid, timeout_s=30)
    summary, turns = found.summary, found.turns
    assert summary.call.end_reason == "stop" and len(turns) == 1
    assert turns[0].latency_ms is not None
    assert writer.stats.rows_dropped == 0


def test_records_url_is_validated_and_none_disables(tmp_path: Path) -> None:
    bad = run_cli("calls", "--url", "mysql://x")
    assert bad.returncode == 2 and "sqlite:///FILE" in bad.stderr
    off = run_cli("calls", "--url", "none")
    assert off.returncode == 1 and "off" in off.stderr
    absent = run_cli("calls", "--url", f"sqlite:///{tmp_path / 'absent.db'}")
    assert absent.returncode == 1 and "no call records" in absent.stderr
    assert not (tmp_path / "absent.db").exists()
    served = subprocess.run(
        [sys.executable, "-m", "bridge.cli", "serve", "--port", "1"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT), "BRIDGE_RECORDS_URL": "mysql://x"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert served.returncode == 2 and "BRIDGE_RECORDS_URL" in served.stderr


async def test_records_off_adds_no_observer_and_no_thread(make_server: MakeServer) -> None:
    before = {t.name for t in threading.enumerate()}
    server = make_server(BRIDGE_RECORDS_URL="none")
    records = records_of(server)
    assert records.writer is None and records.observers == []
    assert "records-writer" not in {t.name for t in threading.enumerate()} - before


async def test_the_writer_lingers_so_a_turns_updates_share_one_transaction(tmp_path: Path) -> None:
    """A turn's rows arrive in a burst (commit, transcript, first audio): the writer waits for
    the rest instead of starting a transaction on the first, and flush() cuts the wait short.
    The linger here is longer than flush()'s timeout, so a flush that waited it out fails."""
    from bridge.call_records.model import CallRow, TurnRow
    from bridge.call_records.store import open_store
    from bridge.call_records.url import parse_records_url
    from bridge.call_records.writer import RecordWriter

    target = parse_records_url(f"sqlite:///{tmp_path / 'calls.db'}")
    assert target is not None
    writer = RecordWriter(lambda: open_store(target), linger_s=60)
    writer.start()
    try:
        assert await asyncio.to_thread(writer.flush, 10)  # connected, schema created
        turn = TurnRow("CA1", 2, at_s=1.0, user_speech_ms=900.0)
        writer.submit(CallRow("CA1", "twilio", "+1555", "+1556", started_at_s=1.0))
        writer.submit(turn)
        await asyncio.sleep(0.1)  # the agent transcribes
        turn.user_text = "what time is it"
        writer.submit(turn)
        await asyncio.sleep(0.1)  # and answers
        turn.latency_ms = 321.0
        writer.submit(turn)
        assert writer.stats.rows_written == 0  # still lingering
        assert await asyncio.to_thread(writer.flush, 10)
        assert writer.stats.rows_written == 2  # one call row, one turn row: one batch
    finally:
        writer.close()
    store = open_store(target, create=False)
    try:
        found = store.call("CA1")
        assert found is not None
        [row] = found.turns
        assert (row.user_text, row.latency_ms) == ("what time is it", 321.0)
    finally:
        store.close()
