"""``bridge calls show``: transfers, Twilio's word, keypad turns and tool calls, as text and
as JSON, from a real database through the real command."""

from __future__ import annotations

import argparse
import json

import pytest

from bridge.call_records import report
from bridge.call_records.model import (
    CallDetail,
    CallRow,
    CallSummary,
    TurnRow,
    TwilioStatusRow,
)
from bridge.cli.records import calls_command
from tests.bridge.call_records.helpers import tool_row, write

START = 1_700_000_000.0
LONG_RESULT = json.dumps({"status": "shipped", "items": [f"item {n}" for n in range(40)]})


def a_call(url: str) -> None:
    write(
        url,
        [
            CallRow(
                "CA1", "twilio", "********1111", "********2222", START, START + 42.0,
                "transferred", dtmf="42", transferred_to="billing +15551230002",
            ),
            TurnRow("CA1", 1, START + 2, 1500.0, 400.0, "where is my order", "which order?"),
            TurnRow("CA1", 2, START + 8, 0.0, 380.0, assistant_text="it shipped", dtmf="42"),
            tool_row(
                "CA1", 1, 2, "order_status", '{"order_id": "42"}', START + 8.1,
                LONG_RESULT, duration_ms=312.4,
            ),
            tool_row(
                "CA1", 2, 2, "weather", '{"city": "Oslo"}', START + 8.5,
                '{"error": "timed out after 5.0 s"}', "timed out after 5.0 s", 5000.0, True,
            ),
            tool_row("CA1", 3, 4, "lookup", "{}", START + 30),  # never ended, no turn row
            TwilioStatusRow("CA1", START + 1, answered_by="human"),
            TwilioStatusRow("CA1", START + 43, "completed", 43.0),
        ],
    )  # fmt: skip


def run(url: str, *args: str, as_json: bool = False) -> int:
    action = "show" if args else "list"
    namespace = argparse.Namespace(
        url=url, json=as_json, action=action, limit=20, call_id=args[0] if args else ""
    )
    return calls_command(namespace)


def test_the_text_report_shows_the_new_facts(
    store_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    a_call(store_url)
    assert run(store_url, "CA1") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[:6] == [
        "call CA1 (twilio) ********1111 -> ********2222",
        "  started 2023-11-14 22:13:20 UTC, ended 2023-11-14 22:14:02 (42.0s), reason: transferred",
        "  turns 2, barge-ins 0, agent errors 0, dtmf 42",
        "  twilio status completed, duration 43s",
        "  answered by human",
        "  transferred to billing +15551230002",
    ]
    turn2 = lines.index("turn 2 at 2023-11-14 22:13:28: speech 0 ms, latency 380 ms")
    assert lines[turn2 - 2 : turn2] == [
        "  user:      where is my order",
        "  assistant: which order?",
    ]
    shipped = lines[turn2 + 3]
    assert lines[turn2 + 1 : turn2 + 3] == ["  keypad:    42", "  assistant: it shipped"]
    assert shipped.startswith('  tool order_status {"order_id": "42"} 312 ms -> {"status": ')
    assert shipped.endswith("...") and len(shipped) < 200
    assert lines[turn2 + 4 :] == [
        '  tool weather {"city": "Oslo"} 5000 ms error: timed out after 5.0 s',
        "    (answer not spoken: the caller interrupted)",
        "turn 4: (no turn record)",
        "  tool lookup {} (no end recorded)",
    ]


def test_the_json_report_has_everything_unshortened(
    store_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    a_call(store_url)
    assert run(store_url, "CA1", as_json=True) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["transferred_to"] == "billing +15551230002" and shown["dtmf"] == "42"
    assert (shown["twilio_status"], shown["twilio_duration_s"]) == ("completed", 43.0)
    assert shown["answered_by"] == "human" and shown["duration_s"] == 42.0
    assert [t["dtmf"] for t in shown["turn_rows"]] == ["", "42"]
    first, second, third = shown["tool_calls"]
    assert first == {
        "call_id": "CA1",
        "seq": 1,
        "turn_id": 2,
        "name": "order_status",
        "arguments": '{"order_id": "42"}',
        "started_at_s": START + 8.1,
        "result": LONG_RESULT,
        "error": "",
        "duration_ms": 312.4,
        "speech_cancelled": False,
    }
    assert second["speech_cancelled"] is True and second["error"] == "timed out after 5.0 s"
    assert third["duration_ms"] is None

    assert run(store_url, as_json=True) == 0
    [listed] = json.loads(capsys.readouterr().out)
    assert (listed["call_id"], listed["turns"], listed["twilio_status"]) == ("CA1", 2, "completed")
    assert listed["transferred_to"] == "billing +15551230002"


def test_the_listing_shows_twilios_status_for_a_call_that_never_connected(
    store_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    write(store_url, [TwilioStatusRow("CAbusy", START, "busy", 0.0, caller="********1111")])
    assert run(store_url) == 0
    line = capsys.readouterr().out.splitlines()[1]
    assert line.split() == ["CAbusy", "twilio", "********1111", "2023-11-14", "22:13:20", "0.0s",
                            "0", "busy"]  # fmt: skip
    assert run(store_url, "CAbusy") == 0
    shown = capsys.readouterr().out
    assert "twilio status busy, duration 0s" in shown and "answered by" not in shown


def test_a_plain_call_shows_no_empty_lines_for_what_it_did_not_do() -> None:
    summary = CallSummary(CallRow("toy-1", "esp32", "kitchen", "", START, START + 5, "bye"), 1)
    text = report.call_text(CallDetail(summary, [TurnRow("toy-1", 1, START + 1, 800.0)], []))
    assert text.splitlines() == [
        "call toy-1 (esp32) kitchen",
        "  started 2023-11-14 22:13:20 UTC, ended 2023-11-14 22:13:25 (5.0s), reason: bye",
        "  turns 1, barge-ins 0, agent errors 0",
        "turn 1 at 2023-11-14 22:13:21: speech 800 ms, latency - ms",
    ]
