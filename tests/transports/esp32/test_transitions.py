"""Walk the Elato core's tables: every (state, outbound frame) pair is either the table's
transition or refused with OutboundViolation, and every inbound message counts exactly in
the states the table names."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable

import pytest

from transports.esp32.protocol import (
    INBOUND,
    OUTBOUND,
    AuthSettings,
    DeviceState,
    EndOfSpeech,
    EndSession,
    Esp32Protocol,
    Interrupt,
    Outbound,
    OutboundViolation,
    UpstreamAudio,
)

#: a time inside the listen hold of a bracket closed at 0 ms, and one after it
IN_HOLD_MS, AFTER_HOLD_MS = 0.0, 5000.0


def in_state(state: DeviceState) -> Esp32Protocol:
    proto = Esp32Protocol()
    proto.auth(AuthSettings())
    if state is DeviceState.RESPONDING:
        proto.created(IN_HOLD_MS)
    elif state in (DeviceState.HOLD, DeviceState.LISTENING):
        proto.complete(IN_HOLD_MS, 0.0)
        if state is DeviceState.LISTENING:
            proto.refresh(AFTER_HOLD_MS)
    elif state is DeviceState.COMMITTED:
        proto.committed()
    elif state is DeviceState.ENDING:
        proto.session_end()
    assert proto.state is state
    return proto


def builder(proto: Esp32Protocol, frame: Outbound) -> Callable[[], object]:
    now_ms = AFTER_HOLD_MS if proto.state is DeviceState.LISTENING else IN_HOLD_MS
    return {
        Outbound.CREATED: lambda: proto.created(now_ms),
        Outbound.AUDIO: lambda: proto.audio(b"\xfc\xff\xfe"),
        Outbound.COMMITTED: proto.committed,
        Outbound.COMPLETE: lambda: proto.complete(now_ms, 0.0),
        Outbound.ERROR: lambda: proto.error(now_ms),
        Outbound.SESSION_END: proto.session_end,
    }[frame]


FRAMES = [f for f in Outbound if f is not Outbound.AUTH]


@pytest.mark.parametrize(("state", "frame"), list(itertools.product(DeviceState, FRAMES)))
def test_every_outbound_frame_in_every_state(state: DeviceState, frame: Outbound) -> None:
    proto = in_state(state)
    build = builder(proto, frame)
    after = OUTBOUND.get((state, frame))
    if after is None:
        with pytest.raises(OutboundViolation):
            build()
        assert proto.state is state  # a refused frame changes nothing
    else:
        build()
        assert proto.state is after


def test_auth_is_the_first_frame_and_only_once() -> None:
    proto = Esp32Protocol()
    with pytest.raises(OutboundViolation):
        proto.created(0)
    proto.auth(AuthSettings())
    with pytest.raises(OutboundViolation):
        proto.auth(AuthSettings())


def inbound(proto: Esp32Protocol, kind: str) -> list[object]:
    now_ms = AFTER_HOLD_MS if proto.state is DeviceState.LISTENING else IN_HOLD_MS
    if kind == "audio":
        return list(proto.receive_binary(b"\x01\x00" * 160, now_ms))
    message = {"type": "instruction", "msg": kind, "audio_end_ms": 480}
    return list(proto.receive_text(json.dumps(message)))


EVENT_OF = {
    "audio": UpstreamAudio,
    "end_of_speech": EndOfSpeech,
    "INTERRUPT": Interrupt,
    "END_SESSION": EndSession,
}


@pytest.mark.parametrize(("state", "kind"), list(itertools.product(DeviceState, INBOUND)))
def test_every_inbound_message_in_every_state(state: DeviceState, kind: str) -> None:
    proto = in_state(state)
    events = inbound(proto, kind)
    if state in INBOUND[kind]:
        assert [type(e) for e in events] == [EVENT_OF[kind]]
    else:
        assert events == []
        ignored = proto.counters.upstream_discarded_bytes + proto.counters.ignored_instructions
        assert ignored > 0
    assert proto.state is state  # the device's messages never move our state
