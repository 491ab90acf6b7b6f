"""The talk page's wire, pure: what the page may send when, and what it is told."""

from __future__ import annotations

import json

import pytest

from bridge.browser.tokens import TalkTokens, TokenError
from transports.browser.protocol import (
    MAX_AUDIO_BYTES,
    MAX_CONSECUTIVE_INVALID,
    Audio,
    BrowserProtocol,
    Bye,
    Hello,
    Played,
    ProtocolViolation,
)


def opened() -> BrowserProtocol:
    proto = BrowserProtocol()
    assert proto.receive_text(json.dumps({"type": "hello", "persona": "pirate"})) == [
        Hello("pirate")
    ]
    return proto


def test_hello_first_then_audio_and_playback_reports() -> None:
    proto = opened()
    assert proto.receive_binary(b"\x01\x00" * 320) == [Audio(b"\x01\x00" * 320)]
    assert proto.receive_binary(b"") == []
    report = {"type": "played", "turn": 3, "ms": 1240.5, "final": True}
    assert proto.receive_text(json.dumps(report)) == [Played(3, 1240.5, True)]
    assert proto.receive_text('{"type": "played", "turn": 3, "ms": 7}') == [Played(3, 7.0, False)]
    assert proto.receive_text('{"type": "bye"}') == [Bye()]


@pytest.mark.parametrize(
    ("message", "code"),
    [
        (b"\x00\x00", 1008),
        ('{"type": "played", "turn": 1, "ms": 3}', 1008),
    ],
)
def test_nothing_but_hello_before_hello(message: str | bytes, code: int) -> None:
    proto = BrowserProtocol()
    events = (
        proto.receive_binary(message) if isinstance(message, bytes) else proto.receive_text(message)
    )
    assert [type(e) for e in events] == [ProtocolViolation]
    assert isinstance(events[0], ProtocolViolation) and events[0].close_code == code


def test_odd_oversized_and_unreadable_input_is_refused() -> None:
    proto = opened()
    [odd] = proto.receive_binary(b"\x00" * 641)
    [big] = proto.receive_binary(b"\x00" * (MAX_AUDIO_BYTES + 2))
    assert (odd, big) == (
        ProtocolViolation(1007, "audio is not whole 16-bit samples"),
        ProtocolViolation(1009, "audio message over 1 s"),
    )
    assert proto.receive_text("x" * 5000) == [ProtocolViolation(1009, "control message too long")]
    bad = ['{"type": "played", "turn": -1, "ms": 3}', '{"type": "played", "turn": 1, "ms": "x"}']
    bad += ["not json", "[1, 2]", '{"type": "hello"}', '{"type": "teleport"}']
    events = [proto.receive_text(bad[i % len(bad)]) for i in range(MAX_CONSECUTIVE_INVALID)]
    assert events[:-1] == [[]] * (MAX_CONSECUTIVE_INVALID - 1)
    assert events[-1] == [ProtocolViolation(1008, "too many invalid control messages")]


def test_what_the_page_is_told() -> None:
    hello = json.loads(BrowserProtocol.hello("web-1", "pirate"))
    assert hello == {
        "type": "hello",
        "session_id": "web-1",
        "persona": "pirate",
        "sample_rate": 16000,
    }
    assert json.loads(BrowserProtocol.clear(4)) == {"type": "clear", "turn": 4}
    assert json.loads(BrowserProtocol.latency(2, 351.6)) == {
        "type": "latency",
        "turn": 2,
        "ms": 352,
    }


def test_tokens_expire_and_cannot_be_forged() -> None:
    tokens = TalkTokens("a-secret-of-enough-length")
    token = tokens.mint(1000.0, 60, name="kiosk", persona="pirate")
    claims = tokens.verify(token, 1030.0)
    assert (claims.name, claims.persona, claims.expires_at_s) == ("kiosk", "pirate", 1060.0)
    with pytest.raises(TokenError, match="expired"):
        tokens.verify(token, 1060.0)
    with pytest.raises(TokenError, match="bad signature"):
        TalkTokens("another-secret-of-length").verify(token, 1030.0)
    with pytest.raises(TokenError, match="malformed"):
        tokens.verify("no-dot-here", 1030.0)
    with pytest.raises(ValueError, match="at least 16"):
        TalkTokens("short")
