"""Twilio's callbacks and the session's rows, in any order, merge into one call row."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from bridge.call_records.model import CallRow, Row, TurnRow, TwilioStatusRow
from bridge.call_records.service import CallRecords
from bridge.call_records.store import open_store
from bridge.call_records.url import parse_records_url
from bridge.call_records.writer import RecordWriter
from bridge.settings import Settings
from tests.bridge.call_records.helpers import detail, opened, write

START = 1_700_000_000.0


def session_rows() -> list[Row]:
    """What the session writes: the call as it starts, a turn, the call as it ends."""
    return [
        CallRow("CA1", "twilio", "********1111", "********2222", START),
        TurnRow("CA1", 1, START + 3, 900.0, 350.0, "hello", "hi"),
        CallRow(
            "CA1", "twilio", "********1111", "********2222", START, START + 20, "stop", "5", 1, 1
        ),
    ]


def callbacks() -> list[Row]:
    """Answering-machine detection, then the final status with its duration."""
    return [
        TwilioStatusRow("CA1", START + 2, answered_by="human"),
        TwilioStatusRow("CA1", START + 21, "completed", 21.0),
    ]


def assert_merged(url: str) -> None:
    found = detail(url, "CA1")
    summary = found.summary
    call = summary.call
    assert (call.transport, call.caller, call.callee) == ("twilio", "********1111", "********2222")
    assert (call.started_at_s, call.ended_at_s, call.end_reason) == (START, START + 20, "stop")
    assert (call.dtmf, call.agent_errors, call.barge_ins) == ("5", 1, 1)
    assert (summary.twilio_status, summary.twilio_duration_s) == ("completed", 21.0)
    assert summary.answered_by == "human" and summary.turns == 1


@pytest.mark.parametrize("order", ["callbacks first", "callbacks last", "interleaved"])
def test_callbacks_and_session_rows_merge_in_any_order(store_url: str, order: str) -> None:
    session, twilio = session_rows(), callbacks()
    if order == "callbacks first":
        rows = twilio + session
    elif order == "callbacks last":
        rows = session + twilio
    else:
        rows = [r for pair in itertools.zip_longest(twilio, session) for r in pair if r]
    write(store_url, *[[r] for r in rows])  # one transaction each
    assert_merged(store_url)


def test_callbacks_and_session_rows_merge_within_one_batch(store_url: str) -> None:
    write(store_url, callbacks()[:1] + session_rows() + callbacks()[1:])
    assert_merged(store_url)


def test_a_session_snapshot_never_erases_twilio_columns(store_url: str) -> None:
    """The call row is written again and again during the call (transfer, end): none of
    those writes may touch what a callback stored in between."""
    first, turn, last = session_rows()
    write(store_url, [first], callbacks(), [first, turn], [last])
    assert_merged(store_url)


def test_an_empty_callback_erases_nothing(store_url: str) -> None:
    write(
        store_url,
        session_rows(),
        callbacks(),
        [TwilioStatusRow("CA1", START + 30)],  # says nothing
        [TwilioStatusRow("CA1", START + 31, "completed")],  # no duration, no verdict
        [TwilioStatusRow("CA1", START + 32, answered_by="")],
    )
    assert_merged(store_url)


def test_a_late_non_final_status_does_not_undo_a_final_one(store_url: str) -> None:
    write(
        store_url,
        session_rows(),
        [TwilioStatusRow("CA1", START + 21, "completed", 21.0)],
        [TwilioStatusRow("CA1", START + 1, "ringing")],  # delivered late
        [TwilioStatusRow("CA1", START + 2, "in-progress", answered_by="human")],
    )
    assert_merged(store_url)


def test_a_call_whose_stream_never_connected_gets_a_row_of_its_own(store_url: str) -> None:
    write(
        store_url,
        [TwilioStatusRow("CAbusy", START, "busy", 0.0, caller="********1111", callee="****2222")],
        [TwilioStatusRow("CAlong", START + 60, "completed", 45.0)],
        [TwilioStatusRow("CAringing", START, "ringing")],
    )
    busy = detail(store_url, "CAbusy").summary
    call = busy.call
    assert (call.transport, call.caller, call.callee) == ("twilio", "********1111", "****2222")
    assert (call.started_at_s, call.ended_at_s, busy.duration_s) == (START, START, 0.0)
    assert (busy.twilio_status, busy.twilio_duration_s, busy.turns) == ("busy", 0.0, 0)
    assert call.end_reason == "" and call.dtmf == ""
    # started = the callback's time less Twilio's duration; ended = when it came (final)
    long_call = detail(store_url, "CAlong").summary
    assert (long_call.call.started_at_s, long_call.call.ended_at_s) == (START + 15, START + 60)
    # not final: not over as far as the records know
    ringing = detail(store_url, "CAringing").summary
    assert (ringing.call.started_at_s, ringing.call.ended_at_s) == (START, None)
    with opened(store_url, create=False) as store:
        listed = [s.call.call_id for s in store.recent_calls(10)]
    assert listed[0] == "CAlong" and sorted(listed[1:]) == ["CAbusy", "CAringing"]


def test_the_stream_connecting_after_a_callback_keeps_the_callbacks_columns(
    store_url: str,
) -> None:
    """The session's first call row is an insert of a call the callback created already."""
    write(
        store_url,
        [TwilioStatusRow("CA1", START - 1, "in-progress", answered_by="human", caller="x")],
        session_rows(),
        [TwilioStatusRow("CA1", START + 21, "completed", 21.0)],
    )
    assert_merged(store_url)  # and the session's caller replaced the callback's


def test_the_writer_never_coalesces_two_callbacks(tmp_path: Path) -> None:
    """Within one batch a newer snapshot replaces an older one of the same row; two
    callbacks are not snapshots of one row (each carries other columns), so both stay."""
    url = f"sqlite:///{tmp_path / 'calls.db'}"
    target = parse_records_url(url)
    assert target is not None
    writer = RecordWriter(lambda: open_store(target), linger_s=60)
    writer.start()
    try:
        assert writer.flush(10)
        for row in callbacks():
            writer.submit(row)
        turn = TurnRow("CA1", 1, START)
        writer.submit(turn)
        turn.user_text = "hello"
        writer.submit(turn)
        assert writer.flush(10)
        assert writer.stats.rows_written == 3  # two callbacks, one turn
    finally:
        writer.close()
    summary = detail(url, "CA1").summary
    assert (summary.twilio_status, summary.answered_by) == ("completed", "human")


def settings(url: str) -> Settings:
    return Settings.from_env({"BRIDGE_RECORDS_URL": url}, dotenv_path=None)


def test_call_records_take_twilio_status_from_the_web_routes(store_url: str) -> None:
    records = CallRecords(settings(store_url), wall_clock=lambda: START + 40)
    records.start()
    try:
        records.twilio_status(
            "CAx", status="no-answer", duration_s=None, caller="+15550001111", callee="+15550002222"
        )
        records.twilio_status("CAx", answered_by="unknown")
        records.twilio_status("", status="completed")  # no call sid: nothing to key it by
        assert records.writer is not None and records.writer.flush(10)
    finally:
        if records.writer is not None:
            records.writer.close()
    summary = detail(store_url, "CAx").summary
    # numbers are masked as the session masks them (masking twice changes nothing)
    assert (summary.call.caller, summary.call.callee) == ("********1111", "********2222")
    assert (summary.twilio_status, summary.answered_by) == ("no-answer", "unknown")
    assert (summary.call.started_at_s, summary.call.ended_at_s) == (START + 40, START + 40)
    with opened(store_url, create=False) as store:
        assert [s.call.call_id for s in store.recent_calls(10)] == ["CAx"]


def test_twilio_status_is_a_no_op_when_records_are_off() -> None:
    records = CallRecords(settings("none"))
    records.twilio_status("CA1", status="completed", duration_s=3.0)  # nothing to write to
    assert records.writer is None
