"""The Twilio protocol core, fed Twilio's documented sample messages and hostile input."""

from __future__ import annotations

import base64
import json

import pytest

from tests.transports.twilio.samples import ACCOUNT, CALL, CONNECTED, SID, START, mark, media
from transports.twilio.protocol import (
    MAX_CONSECUTIVE_INVALID,
    Connected,
    Dtmf,
    MarkPlayed,
    Media,
    ProtocolViolation,
    Start,
    State,
    Stop,
    TwilioProtocol,
)


def started() -> TwilioProtocol:
    proto = TwilioProtocol()
    assert proto.receive_text(CONNECTED) == [Connected("Call", "1.0.0")]
    [start] = proto.receive_text(START)
    assert isinstance(start, Start)
    return proto


def test_documented_start_is_parsed() -> None:
    proto = TwilioProtocol()
    [start] = proto.receive_text(START)
    assert start == Start(
        SID, CALL, ACCOUNT, {"FirstName": "Jane", "LastName": "Doe", "RemoteParty": "Bob"}, True
    )
    assert proto.state is State.ACTIVE


def test_documented_media_dtmf_mark_stop() -> None:
    proto = started()
    doc_media = (
        '{ "event": "media", "sequenceNumber": "4", "media": { "track": "inbound", "chunk": "2",'
        ' "timestamp": "5", "payload": "no+JhoaJjpzSHxAKBgYJDhtEopGKhYWIjZq5JhQLBwYIDBUt" },'
        f' "streamSid": "{SID}" }}'
    )
    [m] = proto.receive_text(doc_media)
    assert isinstance(m, Media) and m.timestamp_ms == 5 and len(m.payload) == 36
    doc_dtmf = json.dumps(
        {
            "event": "dtmf",
            "streamSid": SID,
            "sequenceNumber": "5",
            "dtmf": {"track": "inbound_track", "digit": "1"},
        }
    )
    assert proto.receive_text(doc_dtmf) == [Dtmf("1")]
    # a mark we never sent ("my label") is stale and ignored
    assert proto.receive_text(mark("my label")) == []
    assert proto.counters.stale_marks == 1
    doc_stop = json.dumps(
        {
            "event": "stop",
            "sequenceNumber": "5",
            "stop": {"accountSid": ACCOUNT, "callSid": CALL},
            "streamSid": SID,
        }
    )
    assert proto.receive_text(doc_stop) == [Stop(CALL)]
    assert proto.state is State.STOPPED
    assert proto.receive_text(media(b"\xff" * 160, 7)) == []


def test_start_without_connected_is_accepted() -> None:
    proto = TwilioProtocol()
    assert isinstance(proto.receive_text(START)[0], Start)


def test_media_before_start_and_foreign_stream_are_dropped() -> None:
    proto = TwilioProtocol()
    assert proto.receive_text(media(b"\x00" * 160)) == []
    assert proto.counters.media_before_start == 1
    proto.receive_text(START)
    assert proto.receive_text(media(b"\x00" * 160, sid="MZother")) == []
    assert proto.counters.wrong_stream_sid == 1


@pytest.mark.parametrize("size", [1, 159, 160, 161, 800])
def test_any_payload_length_is_accepted(size: int) -> None:
    proto = started()
    [m] = proto.receive_text(media(bytes(range(256))[:size] * 1 if size <= 256 else b"\x7f" * size))
    assert isinstance(m, Media) and len(m.payload) == size


def test_empty_and_invalid_payloads_are_dropped_and_counted() -> None:
    proto = started()
    assert proto.receive_text(media(b"")) == []
    assert proto.receive_text(media("not base64!!")) == []
    assert proto.receive_text(media("abc")) == []  # bad padding
    assert proto.receive_text(json.dumps({"event": "media", "streamSid": SID, "media": 5})) == []
    assert proto.counters.empty_payloads == 1
    assert proto.counters.bad_payloads == 3
    assert proto.state is State.ACTIVE


def test_sequence_gaps_are_counted_not_fatal() -> None:
    proto = started()
    for seq in (2, 3, 7, 5, 6):
        assert len(proto.receive_text(media(b"\xff" * 160, seq))) == 1
    assert proto.counters.sequence_gaps == 2


def test_duplicate_start_unknown_event_and_extra_keys_are_ignored() -> None:
    proto = started()
    assert proto.receive_text(START) == []
    assert proto.counters.duplicate_starts == 1
    assert proto.receive_text('{"event": "bogus", "x": 1}') == []
    assert proto.counters.unknown_events == 1
    [m] = proto.receive_text(media(b"\xff" * 160, 2, extra="yes"))
    assert isinstance(m, Media)


def test_invalid_frames_close_after_twenty_in_a_row() -> None:
    proto = started()
    for _ in range(MAX_CONSECUTIVE_INVALID - 1):
        assert proto.receive_text("{not json") == []
    assert proto.receive_text(media(b"\xff" * 160)) != []  # a good frame resets the run
    for _ in range(MAX_CONSECUTIVE_INVALID - 1):
        assert proto.receive_binary() == []
    [violation] = proto.receive_text("[]")
    assert isinstance(violation, ProtocolViolation) and violation.close_code == 1008


@pytest.mark.parametrize(
    "start",
    [
        {"event": "start"},
        {"event": "start", "start": "x"},
        {"event": "start", "start": {"streamSid": SID, "callSid": CALL}},
        {"event": "start", "start": {"streamSid": 'MZ"}', "callSid": CALL, "accountSid": ACCOUNT}},
        {
            "event": "start",
            "start": {
                "streamSid": SID,
                "callSid": CALL,
                "accountSid": ACCOUNT,
                "customParameters": ["x"],
            },
        },
    ],
)
def test_malformed_start_is_a_violation(start: dict[str, object]) -> None:
    [event] = TwilioProtocol().receive_text(json.dumps(start))
    assert isinstance(event, ProtocolViolation) and event.close_code == 1008


def test_unexpected_media_format_is_flagged_but_accepted() -> None:
    body = json.loads(START)
    body["start"]["mediaFormat"]["sampleRate"] = 16000
    [start] = TwilioProtocol().receive_text(json.dumps(body))
    assert isinstance(start, Start) and not start.media_format_ok


@pytest.mark.parametrize("digit", list("0123456789*#A"))
def test_valid_digits(digit: str) -> None:
    proto = started()
    msg = {"event": "dtmf", "streamSid": SID, "dtmf": {"track": "inbound_track", "digit": digit}}
    assert proto.receive_text(json.dumps(msg)) == [Dtmf(digit)]


@pytest.mark.parametrize("digit", ["X", "", "12", 5, None])
def test_invalid_digits_are_ignored(digit: object) -> None:
    proto = started()
    msg = {"event": "dtmf", "streamSid": SID, "dtmf": {"digit": digit}}
    assert proto.receive_text(json.dumps(msg)) == []
    assert proto.counters.ignored_digits == 1


def test_outbound_frames_have_exactly_twilios_keys() -> None:
    proto = started()
    media_frame, mark_frame = proto.media_frames(3, b"\x01" * 320, 40.0)
    m = json.loads(media_frame)
    assert m == {"event": "media", "streamSid": SID, "media": {"payload": m["media"]["payload"]}}
    assert base64.b64decode(m["media"]["payload"]) == b"\x01" * 320
    k = json.loads(mark_frame)
    assert k == {"event": "mark", "streamSid": SID, "mark": {"name": "t3:1"}}
    assert json.loads(proto.clear_frame() or "") == {"event": "clear", "streamSid": SID}


def test_nothing_is_sent_before_start_or_after_stop() -> None:
    proto = TwilioProtocol()
    with pytest.raises(RuntimeError):
        proto.media_frames(1, b"\xff", 1.0)
    proto.receive_text(START)
    proto.receive_text(json.dumps({"event": "stop", "streamSid": SID, "stop": {}}))
    assert not proto.can_send
    with pytest.raises(RuntimeError):
        proto.clear_frame()


def test_mark_echo_advances_heard_position() -> None:
    proto = started()
    names = [
        json.loads(proto.media_frames(1, b"\xff" * 320, 40.0)[1])["mark"]["name"] for _ in range(3)
    ]
    assert proto.pending_ms == 120.0 and proto.pending_marks == 3
    [played] = proto.receive_text(mark(names[0]))
    assert played == MarkPlayed(names[0], 1, 40.0)
    assert proto.heard_ms(1) == 40.0 and proto.pending_ms == 80.0


def test_clear_moves_pending_marks_to_cleared_and_their_echoes_do_not_count() -> None:
    proto = started()
    names = [
        json.loads(proto.media_frames(1, b"\xff" * 320, 40.0)[1])["mark"]["name"] for _ in range(4)
    ]
    proto.receive_text(mark(names[0]))
    assert proto.clear_frame() is not None
    assert proto.pending_marks == 0 and proto.pending_ms == 0
    for name in names[1:]:
        assert proto.receive_text(mark(name)) == []
    assert proto.heard_ms(1) == 40.0
    assert proto.counters.cleared_marks == 3
    # echoes are consumed once: a repeat is stale
    assert proto.receive_text(mark(names[1])) == []
    assert proto.counters.stale_marks == 1


def test_no_clear_when_nothing_is_pending() -> None:
    proto = started()
    assert proto.clear_frame() is None
    _, mark_frame = proto.media_frames(1, b"\xff" * 320, 40.0)
    proto.receive_text(mark(json.loads(mark_frame)["mark"]["name"]))
    assert proto.clear_frame() is None
    assert proto.counters.clears_sent == 0


def test_mark_names_are_unique_and_short() -> None:
    proto = started()
    names = {
        json.loads(proto.media_frames(t, b"\xff", 0.125)[1])["mark"]["name"]
        for t in range(50)
        for _ in range(4)
    }
    assert len(names) == 200 and all(len(n) <= 64 and n.isascii() for n in names)
