"""The pure model of Twilio's side of a Media Stream, driven with explicit times (no sockets,
no clock): what is played when, which marks are echoed when, and the messages Twilio sends."""

from __future__ import annotations

import ast
import base64
import json
from pathlib import Path
from typing import Any

import pytest

from transports.twilio.emulator import model as model_module
from transports.twilio.emulator.model import FRAME_MS, ULAW_BYTES_PER_MS, TwilioModel

FRAME_BYTES = FRAME_MS * ULAW_BYTES_PER_MS
FRAME_S = FRAME_MS / 1000
STREAM_SID = "MZ" + "0" * 32


def media(ulaw: bytes) -> str:
    payload = base64.b64encode(ulaw).decode("ascii")
    return json.dumps({"event": "media", "streamSid": STREAM_SID, "media": {"payload": payload}})


def mark(name: str) -> str:
    return json.dumps({"event": "mark", "streamSid": STREAM_SID, "mark": {"name": name}})


CLEAR = json.dumps({"event": "clear", "streamSid": STREAM_SID})


def frame(byte: int) -> bytes:
    return bytes([byte]) * FRAME_BYTES


def names(echoes: list[dict[str, Any]]) -> list[str]:
    assert all(echo["event"] == "mark" and echo["streamSid"] == STREAM_SID for echo in echoes)
    return [echo["mark"]["name"] for echo in echoes]


def new_model(**kwargs: Any) -> TwilioModel:
    return TwilioModel(stream_sid=STREAM_SID, **kwargs)


def test_the_model_does_no_io() -> None:
    tree = ast.parse(Path(model_module.__file__).read_text())
    imported = {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not imported & {"asyncio", "socket", "time", "websockets", "threading"}, imported


# -- what Twilio sends ----------------------------------------------------------------------


def test_messages_twilio_sends_are_numbered_in_one_sequence() -> None:
    model = new_model(call_sid="CA1", account_sid="AC1", params={"token": "t"})
    assert model.connected() == {"event": "connected", "protocol": "Call", "version": "1.0.0"}
    start = model.start()
    assert start["sequenceNumber"] == "1" and start["streamSid"] == STREAM_SID
    assert start["start"]["callSid"] == "CA1" and start["start"]["accountSid"] == "AC1"
    assert start["start"]["customParameters"] == {"token": "t"}
    assert start["start"]["mediaFormat"]["encoding"] == "audio/x-mulaw"
    first, second = model.media(b"\x01\x02"), model.media(b"\x03")
    assert (first["sequenceNumber"], first["media"]["chunk"], first["media"]["timestamp"]) == (
        "2",
        "1",
        str(FRAME_MS),
    )
    assert (second["media"]["chunk"], second["media"]["timestamp"]) == ("2", str(2 * FRAME_MS))
    assert base64.b64decode(first["media"]["payload"]) == b"\x01\x02"
    dtmf = model.dtmf("5")
    assert dtmf["sequenceNumber"] == "4" and dtmf["dtmf"] == {
        "track": "inbound_track",
        "digit": "5",
    }
    (echo,) = model.receive(mark("m"), 0.0)
    assert echo["sequenceNumber"] == "5"
    stop = model.stop()
    assert stop["sequenceNumber"] == "6" and stop["stop"]["callSid"] == "CA1"


def test_generated_sids_look_like_twilio_sids() -> None:
    model = TwilioModel()
    for sid, prefix in (
        (model.call_sid, "CA"),
        (model.stream_sid, "MZ"),
        (model.account_sid, "AC"),
    ):
        assert sid.startswith(prefix) and len(sid) == 34
    assert TwilioModel().call_sid != model.call_sid


# -- playback and marks -----------------------------------------------------------------------


def test_marks_are_echoed_in_order_once_the_audio_before_them_played() -> None:
    model = new_model()
    for message in (media(frame(1)), mark("a"), media(frame(2)), mark("b")):
        assert model.receive(message, 10.0) == []
    assert model.played == frame(1)  # the first frame started on arrival
    assert model.due_s() == pytest.approx(10.0 + FRAME_S)
    assert model.advance(10.0 + FRAME_S / 2) == []
    assert names(model.advance(10.0 + FRAME_S)) == ["a"]
    assert model.played == frame(1) + frame(2)
    assert names(model.advance(10.0 + 2 * FRAME_S)) == ["b"]
    assert model.due_s() is None and not model.has_queued
    assert model.timeline.played_marks == model.timeline.echoed_marks == ["a", "b"]
    assert model.timeline.echo_times == [10.0 + FRAME_S, 10.0 + 2 * FRAME_S]


def test_a_mark_with_nothing_before_it_is_echoed_at_once() -> None:
    model = new_model()
    assert names(model.receive(mark("now"), 3.0)) == ["now"]
    assert model.timeline.played_marks == ["now"]


def test_clear_flushes_pending_marks_without_counting_them_as_played() -> None:
    model = new_model()
    for message in (media(frame(1) * 5), mark("a"), media(frame(2)), mark("b")):
        model.receive(message, 0.0)
    echoes = model.receive(CLEAR, 0.05)
    assert names(echoes) == ["a", "b"]
    assert model.timeline.echoed_marks == ["a", "b"]
    assert model.timeline.played_marks == []
    assert model.timeline.clears == [0.05]
    assert model.played == frame(1) * 5  # the interrupted frame had started; the rest is gone
    assert model.due_s() is None
    # the player is free at once: new audio starts when it arrives
    model.receive(media(frame(3)), 0.06)
    model.receive(mark("c"), 0.06)
    assert model.played.endswith(frame(3))
    assert model.due_s() == pytest.approx(0.06 + FRAME_S)


def test_marks_already_played_are_not_flushed_again() -> None:
    model = new_model()
    for message in (media(frame(1)), mark("played"), media(frame(2)), mark("flushed")):
        model.receive(message, 0.0)
    echoes = model.receive(CLEAR, 0.03)  # "played" was due at 0.02
    assert names(echoes) == ["played", "flushed"]
    assert model.timeline.played_marks == ["played"]


def test_playback_runs_at_real_time_on_an_absolute_clock() -> None:
    model = new_model()
    for byte in range(1, 4):
        model.receive(media(frame(byte)), 0.0)
    assert len(model.played) == FRAME_BYTES
    model.advance(0.05)  # late: frames 2 (due 0.02) and 3 (due 0.04) have both started
    assert model.played == frame(1) + frame(2) + frame(3)
    model.receive(mark("end"), 0.05)
    assert model.due_s() == pytest.approx(0.06)  # not 0.05 + 20 ms: no drift
    assert names(model.advance(0.06)) == ["end"]


def test_audio_after_an_underrun_starts_when_it_arrives() -> None:
    model = new_model()
    model.receive(media(frame(1)), 0.0)
    model.advance(5.0)
    model.receive(media(frame(2)), 5.0)
    model.receive(mark("m"), 5.0)
    assert model.played == frame(1) + frame(2)
    assert model.due_s() == pytest.approx(5.0 + FRAME_S)


def test_without_realtime_playback_everything_plays_on_arrival() -> None:
    model = new_model(realtime_playback=False)
    model.receive(media(frame(1) * 50), 0.0)
    assert names(model.receive(mark("m"), 0.0)) == ["m"]
    assert model.timeline.played_marks == ["m"]
    assert model.due_s() is None


# -- what the server sent -----------------------------------------------------------------------


def test_timeline_records_what_arrived_and_when() -> None:
    model = new_model()
    model.receive(media(frame(1)), 1.0)
    model.receive(b"\x00\x01", 1.5)
    model.receive(CLEAR, 2.0)
    assert model.timeline.media_times == [1.0]
    assert model.timeline.non_text_frames == 1
    assert [at for at, _ in model.timeline.received] == [1.0, 2.0]
    assert [m["event"] for m in model.outbound()] == ["media", "clear"]
    assert len(model.outbound("clear")) == 1


def test_non_json_text_is_an_error_the_caller_sees() -> None:
    with pytest.raises(ValueError):
        new_model().receive("{broken", 0.0)
