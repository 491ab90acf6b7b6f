"""Walk the Twilio core's transition table: every (state, inbound event) pair, each fed a
well-formed message of its kind, must land in the table's state with the table's event."""

from __future__ import annotations

import json
from dataclasses import asdict

import pytest

from tests.transports.twilio.samples import CALL, CONNECTED, SID, START, mark, media
from transports.twilio.protocol import EVENT_NAMES, TRANSITIONS, State, TwilioProtocol

DTMF = json.dumps({"event": "dtmf", "streamSid": SID, "dtmf": {"digit": "5"}})
STOP = json.dumps({"event": "stop", "streamSid": SID, "stop": {"callSid": CALL}})


def in_state(state: State) -> TwilioProtocol:
    """A protocol driven into ``state`` by the messages Twilio sends, with one mark pending."""
    proto = TwilioProtocol()
    if state is not State.AWAIT_START:
        proto.receive_text(START)
        proto.media_frames(1, b"\xff" * 320, 40.0)
    if state is State.STOPPED:
        proto.receive_text(STOP)
    assert proto.state is state
    return proto


def message(name: str, proto: TwilioProtocol) -> str:
    pending = next(iter(proto._pending), "t1:1")
    return {
        "connected": CONNECTED,
        "start": START,
        "media": media(b"\xff" * 160),
        "mark": mark(pending),
        "dtmf": DTMF,
        "stop": STOP,
    }[name]


@pytest.mark.parametrize(("state", "name"), sorted(TRANSITIONS, key=str))
def test_every_transition(state: State, name: str) -> None:
    rule = TRANSITIONS[(state, name)]
    proto = in_state(state)
    before = asdict(proto.counters)
    events = proto.receive_text(message(name, proto))
    assert proto.state is rule.next
    if rule.emits is None:
        assert events == []
        after = asdict(proto.counters)
        changed = {key for key in after if after[key] != before[key]}
        assert changed == ({rule.ignored_as} if rule.ignored_as else set())
    else:
        assert [type(event) for event in events] == [rule.emits]


def test_the_table_covers_every_state_and_event() -> None:
    assert {(s, n) for s in State for n in EVENT_NAMES} == set(TRANSITIONS)


def test_an_unknown_event_changes_nothing_but_its_counter() -> None:
    for state in State:
        proto = in_state(state)
        assert proto.receive_text('{"event": "party"}') == []
        assert proto.state is state and proto.counters.unknown_events == 1
