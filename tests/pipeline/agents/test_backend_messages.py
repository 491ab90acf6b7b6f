"""The Twilio-side messages the bridge sends a backend, and how it reads the backend's."""

from __future__ import annotations

import base64
import json

import pytest

from pipeline.agents.backend.messages import (
    FRAME_BYTES,
    Clear,
    Mark,
    Media,
    Rejected,
    TwilioStream,
    parse,
)

SID = "MZ" + "0" * 32


def stream() -> TwilioStream:
    return TwilioStream("CA" + "1" * 32, "AC" + "2" * 32, {"transport": "esp32"})


def test_messages_are_numbered_as_twilio_numbers_them() -> None:
    s = stream()
    assert s.connected() == {"event": "connected", "protocol": "Call", "version": "1.0.0"}
    start = s.start()
    assert start["sequenceNumber"] == "1" and start["streamSid"] == s.stream_sid
    assert start["start"]["customParameters"] == {"transport": "esp32"}
    assert start["start"]["tracks"] == ["inbound"]
    first, second = s.media(b"\xff" * FRAME_BYTES), s.media(b"\x00" * FRAME_BYTES)
    assert (first["media"]["chunk"], first["media"]["timestamp"]) == ("1", "20")
    assert (second["media"]["chunk"], second["media"]["timestamp"]) == ("2", "40")
    assert base64.b64decode(second["media"]["payload"]) == b"\x00" * FRAME_BYTES
    assert s.dtmf("5")["dtmf"] == {"track": "inbound_track", "digit": "5"}
    assert s.mark("m1")["mark"] == {"name": "m1"}
    stop = s.stop()
    assert stop["stop"] == {"accountSid": s.account_sid, "callSid": s.call_sid}
    assert stop["sequenceNumber"] == "6"
    assert stream().stream_sid != s.stream_sid  # a reconnect is a new stream


def frame(**message: object) -> str:
    return json.dumps({"streamSid": SID, **message})


def test_the_three_server_messages_are_read() -> None:
    payload = base64.b64encode(b"\x01\x02").decode()
    assert parse(frame(event="media", media={"payload": payload}), SID, 1000) == Media(b"\x01\x02")
    assert parse(frame(event="mark", mark={"name": "end"}), SID, 1000) == Mark("end")
    assert parse(frame(event="clear"), SID, 1000) == Clear()


@pytest.mark.parametrize(
    "raw",
    [
        b"\x00binary",
        "not json",
        "[1, 2]",
        frame(event="hangup"),
        frame(event=None),
        json.dumps({"event": "media", "media": {"payload": ""}}),  # no streamSid: before start
        frame(event="clear", streamSid="MZother"),
        frame(event="media"),
        frame(event="media", media={"payload": 5}),
        frame(event="media", media={"payload": "!!not base64!!"}),
        frame(event="mark", mark={}),
        frame(event="mark", mark={"name": "x" * 1000}),
        frame(event="mark", mark="end"),
        frame(event="media", media={"payload": "A" * 5000}),  # larger than allowed
    ],
)
def test_hostile_frames_are_rejected_never_raised(raw: str | bytes) -> None:
    assert isinstance(parse(raw, SID, 4000), Rejected)
