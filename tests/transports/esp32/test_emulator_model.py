"""The pure model of an ESP32 toy (Elato firmware), driven with explicit times: no sockets, no
clock, so every timing rule (the 50 ms CREATED->SPEAKING delay, the listen hold, the play clock
and the ring) is checked exactly and in milliseconds."""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

import numpy as np
import opuslib
import pytest

from tests.transports.esp32.messages import (
    COMMITTED,
    COMPLETE,
    CREATED,
    ERROR,
    SESSION_END,
    server_msg,
)
from transports.esp32.emulator import model as model_module
from transports.esp32.emulator import playback as playback_module
from transports.esp32.emulator.device import ToyState
from transports.esp32.emulator.model import ToyAction, ToyModel

OPUS_RATE_HZ = 24000
PACKET_MS = 120
PACKET_S = PACKET_MS / 1000
PACKET_SAMPLES = OPUS_RATE_HZ * PACKET_MS // 1000
HOLD_S = 1.0
SPEAKING_DELAY_S = 0.05
RING_S = 10240 / 2 / 48000
AUTH: dict[str, Any] = {
    "type": "auth",
    "volume_control": 70,
    "pitch_factor": 1.0,
    "is_ota": False,
    "is_reset": False,
}


def opus_packets(count: int) -> list[bytes]:
    """``count`` 120 ms packets of a 440 Hz tone, from one encoder (as a server sends them)."""
    encoder = opuslib.Encoder(OPUS_RATE_HZ, 1, opuslib.APPLICATION_VOIP)
    t = np.arange(count * PACKET_SAMPLES)
    tone = (np.sin(2 * np.pi * 440 * t / OPUS_RATE_HZ) * 8000).astype("<i2")
    frames = tone.reshape(count, PACKET_SAMPLES)
    return [encoder.encode(f.tobytes(), PACKET_SAMPLES) for f in frames]


def authed(**kwargs: Any) -> ToyModel:
    """A toy connected at t=0 that has read its auth message."""
    toy = ToyModel(**kwargs)
    toy.connected(0.0)
    toy.receive_text(json.dumps(AUTH), 0.0)
    return toy


def listening(at_s: float = 0.0, **kwargs: Any) -> ToyModel:
    """A toy that got a bare COMPLETE (no greeting) at ``at_s`` and whose hold has ended."""
    toy = authed(**kwargs)
    toy.receive_text(COMPLETE, at_s)
    toy.advance(at_s + HOLD_S)
    assert toy.state == ToyState.LISTENING
    return toy


def states(toy: ToyModel) -> list[str]:
    return [state for _, state in toy.state_history]


@pytest.mark.parametrize("module", [model_module, playback_module])
def test_the_model_does_no_io(module: Any) -> None:
    tree = ast.parse(Path(module.__file__).read_text())
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert not imported & {"asyncio", "socket", "time", "websockets", "threading"}, imported


# -- connect, auth and the hold ------------------------------------------------------------------


def test_connect_auth_and_a_bare_complete_then_the_hold() -> None:
    toy = authed()
    assert toy.state == ToyState.PROCESSING and toy.connected_at == 0.0
    assert toy.auth == AUTH and (toy.volume_control, toy.pitch_factor) == (70, 1.0)
    toy.receive_text(COMPLETE, 0.2)
    (bare,) = toy.responses
    assert bare.ok is True and not bare.bracketed and bare.created_at == bare.ended_at == 0.2
    assert toy.hold_pending and toy.due_s() == pytest.approx(0.2 + HOLD_S)
    toy.advance(0.2 + HOLD_S - 0.001)
    assert toy.state == ToyState.PROCESSING and not toy.mic_open
    toy.advance(0.2 + HOLD_S)
    assert toy.state == ToyState.LISTENING and toy.mic_open and not toy.hold_pending
    assert toy.due_s() is None
    assert toy.state_history == [(0.0, "PROCESSING"), (0.2 + HOLD_S, "LISTENING")]
    assert toy.protocol_errors == []


def test_every_complete_restarts_the_hold() -> None:
    toy = authed()
    toy.receive_text(COMPLETE, 0.0)
    toy.receive_text(ERROR, 0.6)
    assert toy.due_s() == pytest.approx(0.6 + HOLD_S)
    assert [r.ok for r in toy.ended_responses()] == [True, False]


@pytest.mark.parametrize(
    ("messages", "expected"),
    [
        ([{**AUTH, "volume_control": "70"}], ["auth: volume_control has the wrong JSON type"]),
        ([AUTH, AUTH], ["second auth"]),
        ([{"type": "server", "msg": "RESPONSE.ERROR"}, AUTH], ["first message is not auth"]),
    ],
)
def test_auth_problems_are_recorded(messages: list[dict[str, Any]], expected: list[str]) -> None:
    toy = ToyModel()
    toy.connected(0.0)
    for message in messages:
        toy.receive_text(json.dumps(message), 0.0)
    for prefix in expected:
        assert any(e.startswith(prefix) for e in toy.protocol_errors), toy.protocol_errors


def test_missing_auth_fields_read_as_zero_like_arduinojson() -> None:
    toy = ToyModel()
    toy.connected(0.0)
    toy.receive_text(json.dumps({"type": "auth"}), 0.0)
    assert (toy.volume_control, toy.pitch_factor) == (0, 0.0)
    assert sum(e.startswith("auth: missing") for e in toy.protocol_errors) == 4


# -- a response: SPEAKING after 50 ms, decode, the play clock -------------------------------------


def test_created_enters_speaking_after_the_delay_and_blocks_reading() -> None:
    toy = listening()
    toy.receive_text(CREATED, 2.0)
    assert toy.state == ToyState.LISTENING  # the mic still runs during the 50 ms sleep
    assert toy.due_s() == toy.read_at_s() == pytest.approx(2.0 + SPEAKING_DELAY_S)
    toy.advance(2.0 + SPEAKING_DELAY_S)
    assert toy.state == ToyState.SPEAKING and not toy.mic_open
    read_at_s = toy.read_at_s()
    assert read_at_s is None or read_at_s <= 2.0 + SPEAKING_DELAY_S


def test_packets_are_decoded_and_played_at_real_time() -> None:
    toy = listening()
    packets = opus_packets(10)
    toy.receive_text(CREATED, 2.0)
    start_s = 2.0 + SPEAKING_DELAY_S
    for packet in packets:
        toy.receive_binary(packet, start_s)
    response = toy.responses[-1]
    assert response.packets == packets and response.packet_times == [start_s] * 10
    assert response.decoded_ms == pytest.approx(10 * PACKET_MS)
    assert toy.played_ms(start_s) == 0
    assert toy.played_ms(start_s + 0.5) == pytest.approx(500)
    # the ring holds ~107 ms: the device reads again once all but that has played
    assert toy.read_at_s() == pytest.approx(start_s + 10 * PACKET_S - RING_S)
    toy.receive_text(COMPLETE, start_s + 0.6)
    toy.advance(start_s + 0.6 + HOLD_S)  # the hold outlasts the audio: nothing is cut
    assert toy.played_ms(start_s + 5) == pytest.approx(10 * PACKET_MS)
    assert toy.dropped_binary == 0 and toy.protocol_errors == []


def test_a_packet_after_an_underrun_plays_from_its_arrival() -> None:
    toy = listening()
    first, second = opus_packets(2)
    toy.receive_text(CREATED, 0.0)
    toy.receive_binary(first, 0.1)
    toy.receive_binary(second, 1.0)  # the first finished at 0.22
    assert toy.played_ms(1.0) == pytest.approx(PACKET_MS)
    assert toy.played_ms(1.06) == pytest.approx(PACKET_MS + 60)


def test_listening_flushes_what_has_not_played() -> None:
    toy = authed(hold_ms=100)
    toy.receive_text(CREATED, 0.0)
    for packet in opus_packets(10):
        toy.receive_binary(packet, 0.05)
    toy.receive_text(COMPLETE, 0.3)
    toy.advance(0.4)  # the hold ends 250 ms into 1.2 s of audio
    assert toy.state == ToyState.LISTENING
    assert toy.played_ms(0.4) == pytest.approx(350)
    assert toy.played_ms(2.0) == pytest.approx(350)


def test_without_realtime_playback_audio_counts_as_played_once_decoded() -> None:
    toy = authed(realtime_playback=False)
    toy.receive_text(CREATED, 0.0)
    toy.advance(0.05)
    for packet in opus_packets(5):
        toy.receive_binary(packet, 0.05)
    assert toy.played_ms(0.05) == pytest.approx(5 * PACKET_MS)
    assert toy.read_at_s() is None


def test_24_khz_firmware_decodes_at_24_khz() -> None:
    toy = authed(decode_rate_hz=24000)
    toy.receive_text(CREATED, 0.0)
    toy.receive_binary(opus_packets(1)[0], 0.05)
    (response,) = toy.responses
    assert response.rate_hz == 24000 and len(response.pcm_48k) == PACKET_SAMPLES * 2


def test_volume_on_complete_is_checked_and_applied() -> None:
    toy = authed()
    toy.receive_text(server_msg("RESPONSE.COMPLETE", volume_control=40), 0.0)
    assert toy.volume_control == 40 and toy.responses[0].volume_control == 40
    toy.receive_text(server_msg("RESPONSE.ERROR", volume_control=400), 0.1)
    toy.receive_text(server_msg("RESPONSE.ERROR", volume_control="loud"), 0.2)
    assert any("out of range: 400" in e for e in toy.protocol_errors)
    assert any("is not an integer: 'loud'" in e for e in toy.protocol_errors)


# -- what the device drops ------------------------------------------------------------------------


def test_created_inside_the_hold_drops_the_whole_response() -> None:
    toy = authed()
    toy.receive_text(COMPLETE, 0.0)
    packets = opus_packets(2)
    toy.receive_text(CREATED, 0.5)
    toy.advance(0.55)
    assert toy.state == ToyState.SPEAKING and toy.hold_pending
    for packet in packets:
        toy.receive_binary(packet, 0.6)
    toy.receive_text(COMPLETE, 0.7)
    _, dropped = toy.responses
    assert dropped.dropped and dropped.packets == packets and not dropped.pcm_48k
    assert toy.dropped_binary == 2
    assert toy.protocol_errors == ["CREATED inside hold (the device drops this response)"]
    toy.advance(0.7 + HOLD_S)
    assert toy.state == ToyState.LISTENING


def test_a_hold_ending_during_the_speaking_delay_waits_for_it() -> None:
    toy = authed()
    toy.receive_text(COMPLETE, 0.0)
    toy.receive_text(CREATED, 0.98)  # inside the hold: dropped, and the hold ends at 1.0
    assert toy.due_s() == pytest.approx(1.03)
    toy.advance(1.01)
    assert toy.state == ToyState.PROCESSING and toy.hold_pending
    toy.advance(1.03)
    assert states(toy)[-2:] == ["SPEAKING", "LISTENING"]
    assert toy.state_history[-1][0] == toy.state_history[-2][0] == 1.03


def test_binary_outside_a_bracket_is_reported_and_dropped() -> None:
    toy = listening()
    early, inside = opus_packets(2)
    toy.receive_binary(early, 1.5)
    toy.receive_text(CREATED, 2.0)
    toy.receive_binary(inside, 2.05)
    toy.receive_text(COMPLETE, 2.1)
    toy.receive_binary(early, 2.2)
    assert toy.dropped_binary == 2
    assert [e.startswith("binary outside") for e in toy.protocol_errors] == [True, True]
    (_, response) = toy.responses
    assert response.packets == [inside] and response.decoded_ms == pytest.approx(PACKET_MS)


def test_bad_packets_are_reported() -> None:
    toy = authed()
    toy.receive_text(CREATED, 0.0)
    toy.advance(0.05)
    for packet in (b"\xff\xff\xff", bytes(15 * 1024), b""):
        toy.receive_binary(packet, 0.1)
    toy.fragment_lost()
    errors = toy.protocol_errors
    assert any("does not decode" in e for e in errors), errors
    assert any("15360 bytes" in e for e in errors), errors
    assert any("empty binary" in e for e in errors), errors
    assert any("fragmented" in e for e in errors), errors
    assert toy.dropped_binary == 2


def test_created_while_responding_closes_the_previous_response() -> None:
    toy = authed()
    toy.receive_text(CREATED, 0.0)
    toy.advance(0.05)
    toy.receive_text(CREATED, 0.3)
    first, second = toy.responses
    assert first.ended_at == 0.3 and first.ok is None and second.ended_at is None
    assert toy.protocol_errors == ["CREATED while already responding"]


# -- text the device does not expect --------------------------------------------------------------


def test_bad_json_sends_the_device_idle_and_a_pending_hold_still_ends() -> None:
    toy = authed()
    toy.receive_text(COMPLETE, 0.0)
    toy.receive_text("hello", 0.1)
    assert toy.state == ToyState.IDLE
    assert toy.protocol_errors[0].startswith("non-JSON text (device goes IDLE)")
    assert (0.1, "text", "hello") in toy.messages
    toy.advance(HOLD_S)
    assert states(toy) == ["PROCESSING", "IDLE", "LISTENING"]


def test_unknown_text_is_reported_and_ignored() -> None:
    toy = authed()
    for text in (json.dumps({"type": "foo"}), "[]", server_msg("SESSION.CREATED")):
        assert toy.receive_text(text, 0.1) == []
    errors = toy.protocol_errors
    assert [e.split(" (")[0].split(":")[0] for e in errors] == [
        "unknown message type",
        "text is not a JSON object",
        "unknown server msg",
    ]
    assert toy.state == ToyState.PROCESSING


def test_committed_stops_listening() -> None:
    toy = listening()
    toy.receive_text(COMMITTED, 2.0)
    assert toy.state == ToyState.PROCESSING and not toy.mic_open
    assert toy.protocol_errors == []
    toy.receive_text(CREATED, 2.5)
    toy.receive_text(COMMITTED, 2.6)
    assert toy.protocol_errors == ["AUDIO.COMMITTED inside a response (the device stops playing)"]


# -- ending ---------------------------------------------------------------------------------------


def test_session_end_sleeps_closes_and_reports_anything_later() -> None:
    toy = authed()
    toy.receive_text(COMPLETE, 0.0)
    assert toy.receive_text(SESSION_END, 0.5) == [ToyAction.CLOSE_SOCKET]
    assert toy.session_ended and toy.state == ToyState.SLEEP
    assert not toy.hold_pending and toy.due_s() is None
    toy.advance(5.0)
    assert toy.state == ToyState.SLEEP
    toy.receive_text(COMPLETE, 0.6)
    toy.receive_binary(b"\x01", 0.7)
    assert toy.protocol_errors == [
        f"message after SESSION.END: {COMPLETE}",
        "message after SESSION.END: binary of 1 bytes",
    ]
    toy.disconnected(1.0)
    assert toy.state == ToyState.SLEEP


def test_a_disconnect_goes_idle_and_stops_the_timers() -> None:
    toy = authed()
    toy.receive_text(COMPLETE, 0.0)
    toy.disconnected(0.5)
    assert toy.state == ToyState.IDLE and toy.due_s() is None
    toy.advance(5.0)
    assert states(toy) == ["PROCESSING", "IDLE"]


def test_invalid_decode_rate_is_refused() -> None:
    with pytest.raises(ValueError, match="decode_rate_hz"):
        ToyModel(decode_rate_hz=44100)
