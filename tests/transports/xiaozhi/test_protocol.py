"""The xiaozhi protocol core, exhaustively: handshake, hellos, framing, messages, hostility."""

from __future__ import annotations

import json
import struct

import pytest

from transports.xiaozhi import framing
from transports.xiaozhi.handshake import HandshakeError, parse_handshake
from transports.xiaozhi.protocol import (
    Abort,
    Hello,
    ListenStart,
    ListenStop,
    Mcp,
    Mode,
    ProtocolViolation,
    TypedText,
    UpstreamOpus,
    WakeWord,
    XiaozhiProtocol,
    parse_device_hello,
)

HELLO = {
    "type": "hello",
    "version": 1,
    "features": {"mcp": True, "aec": True},
    "transport": "websocket",
    "audio_params": {"format": "opus", "sample_rate": 16000, "channels": 1, "frame_duration": 20},
}


def greeted(version: int = 1, **hello: object) -> XiaozhiProtocol:
    proto = XiaozhiProtocol(version)
    (event,) = proto.receive_text(json.dumps({**HELLO, **hello}))
    assert isinstance(event, Hello)
    return proto


def listening(version: int = 1, mode: str = "auto") -> XiaozhiProtocol:
    proto = greeted(version)
    proto.receive_text(
        json.dumps({"session_id": "s", "type": "listen", "state": "start", "mode": mode})
    )
    return proto


# -- handshake -------------------------------------------------------------------------------


def test_handshake_from_headers() -> None:
    hs = parse_handshake(
        {
            "Authorization": "Bearer t0k",
            "Protocol-Version": "2",
            "Device-Id": "aa:bb:cc:dd:ee:ff",
            "Client-Id": "u-1",
        }
    )
    assert (hs.authorization, hs.protocol_version, hs.device_id, hs.client_id) == (
        "Bearer t0k",
        2,
        "aa:bb:cc:dd:ee:ff",
        "u-1",
    )


def test_handshake_from_query_headers_win_and_bare_tokens_become_bearer() -> None:
    hs = parse_handshake({"device-id": "dev-h"}, "device-id=dev-q&client-id=c&authorization=abc")
    assert (hs.device_id, hs.client_id, hs.authorization, hs.protocol_version) == (
        "dev-h",
        "c",
        "Bearer abc",
        1,
    )


@pytest.mark.parametrize(
    ("headers", "query"),
    [
        ({"Protocol-Version": "4"}, ""),
        ({"Protocol-Version": "x"}, ""),
        ({}, "device-id=" + "a" * 65),
        ({"Device-Id": "bad id"}, ""),
    ],
)
def test_bad_handshakes_are_400(headers: dict[str, str], query: str) -> None:
    with pytest.raises(HandshakeError) as refused:
        parse_handshake(headers, query)
    assert refused.value.status == 400


# -- hellos ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("frame", "expected"), [(20, 20), (40, 40), (60, 60), (120, 60), ("60", 60)]
)
def test_device_hello_frame_duration(frame: object, expected: int) -> None:
    hello = parse_device_hello({**HELLO, "audio_params": {"frame_duration": frame}})
    assert hello.frame_ms == expected


def test_hello_without_audio_params_or_features_is_tolerated() -> None:
    hello = parse_device_hello({"type": "hello"})
    assert (hello.frame_ms, hello.sample_rate_hz, hello.mcp, hello.version) == (
        60,
        16000,
        False,
        None,
    )
    assert parse_device_hello({**HELLO, "audio_params": "nope", "features": 3}).mcp is False


def test_our_hello_announces_what_we_encode() -> None:
    msg = json.loads(XiaozhiProtocol().hello("sid"))
    assert msg == {
        "type": "hello",
        "transport": "websocket",
        "session_id": "sid",
        "audio_params": {
            "format": "opus",
            "sample_rate": 24000,
            "channels": 1,
            "frame_duration": 60,
        },
    }


def test_one_hello_per_connection() -> None:
    proto = greeted()
    assert proto.receive_text(json.dumps(HELLO)) == []
    assert proto.device is not None and proto.device.frame_ms == 20


# -- framing -----------------------------------------------------------------------------------


@pytest.mark.parametrize("version", [1, 2, 3])
def test_frames_round_trip(version: int) -> None:
    data = framing.pack(version, b"opus", 1234)
    frame = framing.unpack(version, data)
    assert frame.payload == b"opus"
    assert frame.timestamp_ms == (1234 if version == 2 else 0)


def test_v2_and_v3_headers_are_big_endian() -> None:
    assert framing.pack(2, b"ab", 7) == struct.pack(">HHIII", 2, 0, 0, 7, 2) + b"ab"
    assert framing.pack(3, b"ab") == b"\x00\x00\x00\x02ab"
    assert framing.pack(1, b"ab") == b"ab"


@pytest.mark.parametrize(
    ("version", "data", "code"),
    [
        (2, b"\x00" * 15, 1007),
        (2, struct.pack(">HHIII", 2, 0, 0, 0, 5) + b"abc", 1007),
        (3, b"\x00\x00", 1007),
        (3, b"\x00\x00\x00\x01ab", 1007),
        (1, b"x" * (framing.MAX_PAYLOAD_BYTES + 1), 1009),
        (3, b"\x00\x00" + struct.pack(">H", 9000) + b"x" * 9000, 1009),
    ],
)
def test_lying_or_oversized_frames_close(version: int, data: bytes, code: int) -> None:
    (event,) = listening(version).receive_binary(data)
    assert isinstance(event, ProtocolViolation) and event.close_code == code


def test_audio_before_hello_closes_1008() -> None:
    (event,) = XiaozhiProtocol().receive_binary(b"opus")
    assert event == ProtocolViolation(1008, "audio before hello")


@pytest.mark.parametrize("version", [1, 2, 3])
def test_audio_counts_only_while_listening(version: int) -> None:
    proto = greeted(version)
    frame = framing.pack(version, b"pkt", 5)
    assert proto.receive_binary(frame) == []  # mic off: not listening yet
    proto.receive_text(json.dumps({"type": "listen", "state": "start", "mode": "auto"}))
    (event,) = proto.receive_binary(frame)
    assert isinstance(event, UpstreamOpus) and event.packet == b"pkt"
    proto.tts_start()  # half duplex: speaking turns the mic off
    assert proto.receive_binary(frame) == []
    assert proto.counters.discarded_packets == 2


def test_v2_non_audio_types_and_empty_payloads_are_ignored() -> None:
    proto = listening(2)
    assert proto.receive_binary(struct.pack(">HHIII", 2, 1, 0, 0, 1) + b"x") == []
    assert proto.receive_binary(framing.pack(2, b"")) == []


def test_realtime_keeps_the_mic_on_while_speaking() -> None:
    proto = listening(mode="realtime")
    assert proto.full_duplex
    proto.tts_start()
    assert proto.receive_binary(b"pkt") == [UpstreamOpus(b"pkt")]


# -- device messages --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("auto", Mode.AUTO),
        ("manual", Mode.MANUAL),
        ("realtime", Mode.REALTIME),
        ("weird", Mode.AUTO),
    ],
)
def test_listen_start_modes(mode: str, expected: Mode) -> None:
    proto = greeted()
    assert proto.receive_text(json.dumps({"type": "listen", "state": "start", "mode": mode})) == [
        ListenStart(expected)
    ]


def test_listen_stop_carries_the_mode() -> None:
    proto = listening(mode="manual")
    assert proto.receive_text(json.dumps({"type": "listen", "state": "stop"})) == [
        ListenStop(Mode.MANUAL)
    ]
    assert not proto.listening


@pytest.mark.parametrize(
    ("text", "event"),
    [
        ("你好小智", WakeWord("你好小智")),
        ("", WakeWord("")),
        ("what time is it", TypedText("what time is it")),
    ],
)
def test_listen_detect(text: str, event: object) -> None:
    proto = greeted()
    assert proto.receive_text(json.dumps({"type": "listen", "state": "detect", "text": text})) == [
        event
    ]


def test_abort_mcp_and_unknown_types() -> None:
    proto = greeted()
    assert proto.receive_text('{"type":"abort","reason":"wake_word_detected"}') == [
        Abort("wake_word_detected")
    ]
    assert proto.receive_text('{"type":"abort"}') == [Abort("")]
    assert proto.receive_text('{"type":"mcp","payload":{"jsonrpc":"2.0","id":1}}') == [
        Mcp({"jsonrpc": "2.0", "id": 1})
    ]
    assert proto.receive_text('{"type":"goodbye"}') == []
    assert proto.receive_text('{"type":"listen","state":"sideways"}') == []
    assert proto.counters.ignored_messages == 2


def test_messages_before_hello_are_ignored() -> None:
    proto = XiaozhiProtocol()
    assert proto.receive_text('{"type":"listen","state":"start"}') == []
    assert not proto.listening


def test_bad_json_is_counted_then_closes() -> None:
    proto = greeted()
    for bad in ["{", "[]", '"x"', '{"type": 3}'] * 12 + ["nope", "nope", "nope"]:
        events = proto.receive_text(bad)
    assert events == [ProtocolViolation(1008, "more than 50 invalid messages")]


def test_oversized_text_closes_1009() -> None:
    (event,) = greeted().receive_text(" " * 70_000)
    assert isinstance(event, ProtocolViolation) and event.close_code == 1009


# -- our messages -------------------------------------------------------------------------------


def test_outbound_builders() -> None:
    proto = greeted(3)
    assert json.loads(proto.tts_start()) == {"type": "tts", "state": "start"}
    assert proto.audio(b"pkt") == b"\x00\x00\x00\x03pkt"
    assert json.loads(proto.sentence_start("hi")) == {
        "type": "tts",
        "state": "sentence_start",
        "text": "hi",
    }
    assert json.loads(proto.tts_stop()) == {"type": "tts", "state": "stop"}
    assert json.loads(proto.stt("你好")) == {"type": "stt", "text": "你好"}
    assert json.loads(proto.llm("happy", "😀")) == {"type": "llm", "emotion": "happy", "text": "😀"}
    assert json.loads(proto.alert("err", "oops", "sad")) == {
        "type": "alert",
        "status": "err",
        "message": "oops",
        "emotion": "sad",
    }
    with pytest.raises(RuntimeError):
        proto.audio(b"after stop")
