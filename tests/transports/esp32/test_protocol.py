"""The Elato protocol core: state machine, upstream gating, and the outbound self-checks."""

from __future__ import annotations

import json
from collections.abc import Callable

import opuslib
import pytest

from transports.esp32.opus import OpusPacketizer
from transports.esp32.protocol import (
    CREATED_GAP_MS,
    MAX_DEVICE_FRAME_BYTES,
    MAX_INVALID_TEXTS,
    AuthSettings,
    DeviceState,
    EndOfSpeech,
    EndSession,
    Esp32Protocol,
    Interrupt,
    OutboundViolation,
    ProtocolViolation,
    UpstreamAudio,
)


def authed() -> Esp32Protocol:
    proto = Esp32Protocol()
    proto.auth(AuthSettings())
    return proto


def listening(now_ms: float = 0.0) -> Esp32Protocol:
    proto = authed()
    proto.complete(now_ms, 0.0)
    proto.refresh(now_ms + CREATED_GAP_MS)
    assert proto.state is DeviceState.LISTENING
    return proto


def test_auth_has_exactly_the_four_fields_with_their_json_types() -> None:
    proto = Esp32Protocol()
    auth = json.loads(proto.auth(AuthSettings(volume_control=140, pitch_factor=1, is_ota=False)))
    assert auth == {
        "type": "auth",
        "volume_control": 100,
        "pitch_factor": 1.0,
        "is_ota": False,
        "is_reset": False,
    }
    assert isinstance(auth["volume_control"], int) and isinstance(auth["pitch_factor"], float)
    with pytest.raises(OutboundViolation):
        proto.auth(AuthSettings())


def test_nothing_before_auth() -> None:
    proto = Esp32Protocol()
    builds: list[Callable[[], str]] = [
        lambda: proto.created(0),
        proto.committed,
        lambda: proto.complete(0, 0),
    ]
    for build in builds:
        with pytest.raises(OutboundViolation):
            build()


def test_bracket_and_gap_rules() -> None:
    proto = authed()
    assert json.loads(proto.created(0)) == {"type": "server", "msg": "RESPONSE.CREATED"}
    with pytest.raises(OutboundViolation):
        proto.created(1)  # brackets never nest
    proto.audio(b"\x01" * 300)
    done = json.loads(proto.complete(1000, unplayed_ms=400, volume=55))
    assert done == {"type": "server", "msg": "RESPONSE.COMPLETE", "volume_control": 55}
    with pytest.raises(OutboundViolation):
        proto.audio(b"\x01")  # binary outside a bracket
    # the next CREATED must wait 1200 ms + what was still unplayed
    assert proto.created_wait_ms(1000) == CREATED_GAP_MS + 400
    with pytest.raises(OutboundViolation):
        proto.created(1000 + CREATED_GAP_MS)
    assert proto.refresh(1000 + CREATED_GAP_MS + 400) is DeviceState.LISTENING
    proto.created(1000 + CREATED_GAP_MS + 400)


def test_oversized_or_empty_packets_are_blocked() -> None:
    proto = authed()
    proto.created(0)
    with pytest.raises(OutboundViolation):
        proto.audio(b"\x00" * MAX_DEVICE_FRAME_BYTES)
    with pytest.raises(OutboundViolation):
        proto.audio(b"")
    assert proto.audio(b"\x00" * (MAX_DEVICE_FRAME_BYTES - 1))


def test_commit_then_error_then_listen_again() -> None:
    proto = listening()
    assert json.loads(proto.committed())["msg"] == "AUDIO.COMMITTED"
    assert proto.state is DeviceState.COMMITTED
    assert proto.receive_binary(b"\x00\x01" * 100, 5000) == []  # upstream discarded
    assert proto.counters.upstream_discarded_bytes == 200
    assert json.loads(proto.error(5000))["msg"] == "RESPONSE.ERROR"
    assert proto.refresh(5000) is DeviceState.HOLD
    assert proto.receive_binary(b"\x00\x01", 5001) == [UpstreamAudio(b"\x00\x01")]


def test_upstream_is_a_byte_stream_with_odd_lengths() -> None:
    proto = listening()
    data = bytes(range(256)) * 40
    out = bytearray()
    pos = 0
    for size in (1, 63, 64, 1023, 1024, 3000):
        for event in proto.receive_binary(data[pos : pos + size], 10_000):
            assert isinstance(event, UpstreamAudio) and len(event.pcm16) % 2 == 0
            out += event.pcm16
        pos += size
    assert bytes(out) == data[: len(out)] and len(out) >= pos - 1


def test_empty_binary_is_ignored_and_upstream_rate_is_capped() -> None:
    proto = listening()
    assert proto.receive_binary(b"", 10_000) == []
    assert proto.counters.empty_binary == 1
    # 8x real time for 5 s -> close 1008
    events: list[object] = []
    chunk = b"\x00" * 1024
    t = 10_000.0
    while not events and t < 15_000:
        for _ in range(8):
            events += [
                e for e in proto.receive_binary(chunk, t) if isinstance(e, ProtocolViolation)
            ]
        t += 32
    assert events and events[0] == ProtocolViolation(1008, "upstream faster than 4x real time")


def test_real_time_upstream_is_never_capped() -> None:
    proto = listening()
    chunk = b"\x00" * 1024
    for i in range(1000):  # 32 s at exactly real time
        events = proto.receive_binary(chunk, 10_000 + i * 32)
        assert events == [UpstreamAudio(chunk)]


@pytest.mark.parametrize(
    "text",
    [
        '{"type":"foo"}',
        "hello",
        "[]",
        '{"type":"instruction"}',
        '{"type":"instruction","msg":"x"}',
        "{",
    ],
)
def test_garbage_text_is_ignored(text: str) -> None:
    proto = listening()
    assert proto.receive_text(text) == []
    assert proto.counters.invalid_texts == 1


def test_too_many_invalid_texts_close_1008() -> None:
    proto = listening()
    for _ in range(MAX_INVALID_TEXTS):
        assert proto.receive_text("nope") == []
    assert proto.receive_text("nope") == [ProtocolViolation(1008, "more than 100 invalid messages")]


def test_instructions_depend_on_state() -> None:
    proto = listening()
    assert proto.receive_text('{"type":"instruction","msg":"end_of_speech"}') == [EndOfSpeech()]
    assert proto.receive_text('{"type":"instruction","msg":"INTERRUPT","audio_end_ms":1000}') == []
    proto.created(100_000)
    interrupt = '{"type":"instruction","msg":"INTERRUPT","audio_end_ms":%s}'
    assert proto.receive_text(interrupt % 1000) == [Interrupt(1000)]
    assert proto.receive_text(interrupt % '"1000"') == [Interrupt(None)]
    assert proto.receive_text(interrupt % -5) == [Interrupt(None)]
    assert proto.receive_text('{"type":"instruction","msg":"end_of_speech"}') == []
    assert proto.receive_text('{"type":"instruction","msg":"END_SESSION"}') == [EndSession()]
    proto.session_end()
    assert proto.receive_text('{"type":"instruction","msg":"END_SESSION"}') == []
    with pytest.raises(OutboundViolation):
        proto.created(10**9)


def test_packetizer_pads_the_tail_and_packets_decode_to_one_frame() -> None:
    packetizer = OpusPacketizer(120)
    decoder = opuslib.Decoder(48000, 1)
    full = packetizer.encode(b"\x10\x00" * 2880)
    tail = packetizer.encode(b"\x10\x00" * 100)  # zero-padded to 120 ms, never dropped
    for packet in (full, tail):
        assert 0 < len(packet) < 1500
        assert len(decoder.decode(packet, 5760)) == 5760 * 2  # exactly 120 ms at 48 kHz
    with pytest.raises(ValueError):
        packetizer.encode(b"\x00" * (2880 * 2 + 2))
    with pytest.raises(ValueError):
        OpusPacketizer(100)
