"""CallRecorder's hooks for keypad turns, tool calls and transfers, down to the rows read
back from a real database."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest

from bridge.call_records.model import CallRow
from bridge.call_records.observer import CallRecorder
from bridge.call_records.store import open_store
from bridge.call_records.url import parse_records_url
from bridge.call_records.writer import RecordWriter
from pipeline.tools.base import ToolCallRecord
from tests.bridge.call_records.helpers import FakeCall, detail, opened, tool_row, write

START = 1_700_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def writer(store_url: str) -> Iterator[RecordWriter]:
    target = parse_records_url(store_url)
    assert target is not None
    writer = RecordWriter(lambda: open_store(target), linger_s=0.0)
    writer.start()
    yield writer
    writer.close()


def test_keypad_digits_are_kept_on_their_turn_and_on_the_call(
    store_url: str, writer: RecordWriter
) -> None:
    clock = Clock()
    recorder = CallRecorder(writer, wall_clock=clock)
    session = FakeCall()
    recorder.on_session_created(session.observed)
    recorder.on_user_turn(session.observed, 1, 1200.0)
    recorder.on_transcript(session.observed, 1, "user", "my order")
    clock.now += 5
    recorder.on_user_turn(session.observed, 2, 0.0)
    recorder.on_keypad(session.observed, 2, "42")
    recorder.on_transcript(session.observed, 2, "assistant", "order 42 has shipped")
    recorder.on_agent_error(session.observed, "TimeoutError")  # belongs to the keyed turn
    clock.now += 5
    recorder.on_keypad(session.observed, 3, "1")  # the hook may come first
    recorder.on_transcript(session.observed, 3, "dtmf", "1")  # an old agent's report: ignored
    session.end_reason = "stop"
    clock.now += 5
    recorder.on_call_ended(session.observed)
    assert writer.flush(10)

    found = detail(store_url, "CA1")
    call = found.summary.call
    assert (call.dtmf, call.end_reason, call.agent_errors) == ("421", "stop", 1)
    assert call.callee == "********2222"  # masked by the recorder
    assert [(t.turn_id, t.dtmf) for t in found.turns] == [(1, ""), (2, "42"), (3, "1")]
    first, keyed, last = found.turns
    assert first.user_text == "my order" and first.user_speech_ms == 1200.0
    assert keyed.assistant_text == "order 42 has shipped" and keyed.agent_error == "TimeoutError"
    assert (keyed.user_speech_ms, keyed.at_s) == (0.0, START + 5)
    assert (last.user_text, last.assistant_text, last.at_s) == ("", "", START + 10)


def test_each_tool_call_snapshot_updates_one_row(store_url: str, writer: RecordWriter) -> None:
    """Started, ended, then its spoken answer cut off: three hooks, one row, the last word."""
    recorder = CallRecorder(writer, wall_clock=Clock())
    session = FakeCall()
    record = ToolCallRecord(1, 2, "order_status", '{"order_id": "42"}', START + 1)
    recorder.on_tool_call(session.observed, record)
    assert writer.flush(10)
    [running] = detail(store_url, "CA1").tool_calls
    assert (running.duration_ms, running.result, running.speech_cancelled) == (None, "", False)

    record.duration_ms, record.result = 312.4, '{"status": "shipped"}'
    recorder.on_tool_call(session.observed, record)
    record.speech_cancelled = True
    recorder.on_tool_call(session.observed, record)
    record.speech_cancelled = False  # the recorder kept a snapshot, not the record
    failing = ToolCallRecord(2, 2, "weather", '{"city": "Oslo"}', START + 2)
    recorder.on_tool_call(session.observed, failing)
    recorder.on_tool_call(
        session.observed, replace(failing, error="timed out after 5.0 s", duration_ms=5000.0)
    )
    assert writer.flush(10)

    done, failed = detail(store_url, "CA1").tool_calls
    assert done == tool_row(
        "CA1", 1, 2, "order_status", '{"order_id": "42"}', START + 1,
        '{"status": "shipped"}', "", 312.4, True,
    )  # fmt: skip
    assert (failed.seq, failed.name, failed.error, failed.duration_ms) == (
        2, "weather", "timed out after 5.0 s", 5000.0,
    )  # fmt: skip
    assert failed.result == "" and not failed.speech_cancelled
    # the call's row exists too, even though no other hook came first
    assert detail(store_url, "CA1").summary.call.transport == "twilio"


def test_tool_calls_are_read_in_order_and_per_call(store_url: str) -> None:
    rows = [
        tool_row("CA1", seq, 1, f"tool{seq}", "{}", START + seq, duration_ms=1.0)
        for seq in (3, 1, 2)
    ]
    write(store_url, [*rows, tool_row("CA2", 1, 1, "other", "{}", START)])
    write(store_url, [replace(rows[0], result="late", duration_ms=9.0)])
    with opened(store_url, create=False) as store:
        assert store.call("CA1") is None  # no call row (yet): no call to show
    # the tool calls were kept all the same, and come with the call once its row exists
    write(store_url, [CallRow("CA1", "twilio", "", "", START)])
    tools = detail(store_url, "CA1").tool_calls
    assert [(t.seq, t.name, t.result, t.duration_ms) for t in tools] == [
        (1, "tool1", "", 1.0), (2, "tool2", "", 1.0), (3, "tool3", "late", 9.0),
    ]  # fmt: skip


def test_a_transfer_is_kept_with_the_call(store_url: str, writer: RecordWriter) -> None:
    recorder = CallRecorder(writer, wall_clock=Clock())
    session = FakeCall()
    recorder.on_call_started(session.observed)
    recorder.on_transfer(session.observed, "billing +15551230002")
    assert writer.flush(10)
    mid_call = detail(store_url, "CA1").summary.call
    assert mid_call.transferred_to == "billing +15551230002" and mid_call.ended_at_s is None
    session.end_reason = "transferred"
    recorder.on_call_ended(session.observed)
    assert writer.flush(10)
    call = detail(store_url, "CA1").summary.call
    assert (call.transferred_to, call.end_reason) == ("billing +15551230002", "transferred")
