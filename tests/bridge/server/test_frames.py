"""The frame splitter against websockets' own parser.

The property: feeding a stream to the splitter, and the rest (from the first unusual frame on)
to the library, gives the application the same messages and the same close code as the
library alone, however the stream is cut into reads.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bridge.server.frames import OP_BINARY, OP_TEXT, UsualFrames, split_usual
from bridge.settings import Settings
from tests.bridge.server.wire import (
    BINARY,
    CLOSE,
    CONT,
    INVALID_DATA,
    PING,
    PONG,
    TEXT,
    LengthForm,
    WireFrame,
    chunked,
    encode,
    library_alone,
    splitter_then_library,
)

#: the message size limit's lower bound and default (BRIDGE_MAX_MESSAGE_BYTES)
SMALL = int(Settings.__dataclass_fields__["max_message_bytes"].metadata["min"])
DEFAULT = Settings.from_env({}, dotenv_path=None).max_message_bytes
LIMITS = (SMALL, DEFAULT)

MEDIA = (
    b'{"event":"media","sequenceNumber":"42","media":{"track":"inbound","chunk":"41",'
    b'"timestamp":"820","payload":"' + b"/" * 216 + b'"},"streamSid":"MZ' + b"0" * 32 + b'"}'
)


def media_frame(mask: bytes = b"\x01\x02\x03\x04") -> WireFrame:
    return WireFrame(TEXT, MEDIA, mask=mask)


# -- split_usual: the pure core -------------------------------------------------------------


def test_typical_twilio_media_frame_is_split_and_unmasked() -> None:
    data = media_frame().encode()
    assert 300 <= len(data) <= 400
    assert split_usual(data, DEFAULT) == ([(OP_TEXT, MEDIA)], len(data), False)


def test_several_frames_and_an_incomplete_tail() -> None:
    frames = [WireFrame(TEXT, b"hi"), WireFrame(BINARY, bytes(300)), WireFrame(TEXT, b"x" * 70)]
    data = encode(frames)
    tail = len(frames[-1].encode())
    assert split_usual(data[:-1], DEFAULT) == (
        [(OP_TEXT, b"hi"), (OP_BINARY, bytes(300))],
        len(data) - tail,
        False,
    )


@pytest.mark.parametrize(
    "odd",
    [
        WireFrame(PING, b"p"),
        WireFrame(PONG, b""),
        WireFrame(CLOSE, b"\x03\xe8"),
        WireFrame(TEXT, b"part", fin=False),
        WireFrame(CONT, b"rest"),
        WireFrame(TEXT, b"rsv", rsv=0b100),
        WireFrame(BINARY, b"rsv3", rsv=0b001),
        WireFrame(TEXT, b"bare", masked=False),
        WireFrame(0x3, b"reserved opcode"),
        WireFrame(BINARY, b"", declared=DEFAULT + 1),
        WireFrame(BINARY, b"", length_form="64", declared=1 << 40),
    ],
    ids=repr,
)
def test_first_unusual_frame_hands_over_the_exact_rest(odd: WireFrame) -> None:
    before = [WireFrame(TEXT, b"a"), WireFrame(BINARY, b"b" * 200)]
    after = [WireFrame(TEXT, b"never parsed here")]
    data = encode([*before, odd, *after])
    frames, consumed, unusual = split_usual(data, DEFAULT)
    assert frames == [(OP_TEXT, b"a"), (OP_BINARY, b"b" * 200)]
    assert unusual and data[consumed:] == encode([odd, *after])


def test_unusual_frame_is_recognised_before_its_payload_arrives() -> None:
    data = WireFrame(BINARY, b"", declared=DEFAULT + 1).encode()
    assert split_usual(data, DEFAULT) == ([], 0, True)
    # but not before its length is known: the 16-bit length is still missing
    assert split_usual(data[:3], DEFAULT) == ([], 0, False)


@pytest.mark.parametrize("form", ["16", "64"])
def test_non_minimal_lengths_are_accepted_like_the_library_does(form: LengthForm) -> None:
    data = WireFrame(TEXT, b"short", length_form=form).encode()
    assert split_usual(data, DEFAULT) == ([(OP_TEXT, b"short")], len(data), False)


def test_size_limit_is_inclusive() -> None:
    exact = WireFrame(BINARY, bytes(SMALL)).encode()
    assert split_usual(exact, SMALL) == ([(OP_BINARY, bytes(SMALL))], len(exact), False)
    over = WireFrame(BINARY, bytes(SMALL + 1)).encode()
    assert split_usual(over, SMALL) == ([], 0, True)


def test_feed_keeps_a_partial_frame_until_it_completes() -> None:
    data = encode([media_frame(), WireFrame(BINARY, b"z" * 70_000)])
    usual = UsualFrames(1 << 20)
    got = []
    for offset in range(0, len(data), 997):
        frames, rest = usual.feed(data[offset : offset + 997])
        assert rest is None
        got += frames
    assert got == [(OP_TEXT, MEDIA), (OP_BINARY, b"z" * 70_000)]
    assert usual.pending == 0


# -- the differential property --------------------------------------------------------------


def _payload(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


masks = st.one_of(st.just(b"\x00\x00\x00\x00"), st.binary(min_size=4, max_size=4))
forms: st.SearchStrategy[LengthForm] = st.sampled_from(["minimal", "minimal", "16", "64"])


@st.composite
def payloads(draw: st.DrawFn, max_size: int) -> bytes:
    size = draw(
        st.one_of(
            st.integers(0, 125),  # 7-bit length
            st.integers(126, 400),  # 16-bit length
            st.sampled_from([0, 125, 126, 127, max_size - 1, max_size, max_size + 1]),
            st.sampled_from([65_535, 65_536, 65_537]),  # either side of the 64-bit form
        )
    )
    return _payload(size, draw(st.integers(0, 2**32)))


@st.composite
def text_payloads(draw: st.DrawFn, max_size: int) -> bytes:
    kind = draw(st.sampled_from(["unicode", "ascii", "invalid"]))
    if kind == "unicode":
        return draw(st.text(max_size=200)).encode()
    if kind == "ascii":
        return b"a" * draw(st.sampled_from([0, 125, 126, 300, max_size, max_size + 1]))
    return draw(st.binary(min_size=1, max_size=200))  # mostly not UTF-8


@st.composite
def usual_frames(draw: st.DrawFn, max_size: int) -> WireFrame:
    is_text = draw(st.booleans())
    payload = draw(text_payloads(max_size) if is_text else payloads(max_size))
    form = draw(forms)
    if form == "16" and len(payload) >= 1 << 16:
        form = "64"
    return WireFrame(TEXT if is_text else BINARY, payload, mask=draw(masks), length_form=form)


@st.composite
def control_frames(draw: st.DrawFn) -> WireFrame:
    opcode = draw(st.sampled_from([PING, PONG, CLOSE]))
    if opcode == CLOSE:
        payload = draw(
            st.one_of(
                st.just(b""),
                st.binary(min_size=1, max_size=1),  # too short
                st.builds(
                    lambda code, reason: code.to_bytes(2, "big") + reason,
                    st.sampled_from([1000, 1001, 1005, 1011, 3000, 4000, 999, 2000]),
                    st.one_of(st.text(max_size=20).map(str.encode), st.just(b"\xff")),
                ),
            )
        )
    else:
        payload = draw(st.binary(max_size=130))  # over 125 is a protocol error
    return WireFrame(opcode, payload, mask=draw(masks), length_form=draw(forms))


@st.composite
def fragmented_messages(draw: st.DrawFn, max_size: int) -> list[WireFrame]:
    """A text or binary message in fragments, maybe with control frames between them."""
    is_text = draw(st.booleans())
    whole = draw(text_payloads(max_size)) if is_text else draw(payloads(max_size))
    cuts = sorted(draw(st.lists(st.integers(0, len(whole)), min_size=1, max_size=3)))
    pieces = [whole[a:b] for a, b in zip([0, *cuts], [*cuts, len(whole)], strict=True)]
    frames = []
    for index, piece in enumerate(pieces):
        opcode = (TEXT if is_text else BINARY) if index == 0 else CONT
        frames.append(WireFrame(opcode, piece, fin=index == len(pieces) - 1, mask=draw(masks)))
        if draw(st.integers(0, 3)) == 0:
            frames.append(draw(control_frames()))
    return frames


@st.composite
def odd_frames(draw: st.DrawFn, max_size: int) -> WireFrame:
    base = draw(usual_frames(max_size))
    change = draw(st.sampled_from(["rsv", "unmasked", "opcode", "fin", "cont", "declared"]))
    if change == "rsv":
        return WireFrame(base.opcode, base.payload, rsv=draw(st.integers(1, 7)), mask=base.mask)
    if change == "unmasked":
        return WireFrame(base.opcode, base.payload, masked=False)
    if change == "opcode":
        reserved = draw(st.sampled_from([0x3, 0x4, 0x5, 0x6, 0x7, 0xB, 0xC, 0xD, 0xE, 0xF]))
        return WireFrame(reserved, base.payload, mask=base.mask)
    if change == "fin":
        return WireFrame(base.opcode, base.payload, fin=False, mask=base.mask)
    if change == "cont":
        return WireFrame(CONT, base.payload, fin=draw(st.booleans()), mask=base.mask)
    declared = draw(st.sampled_from([max_size + 1, 1 << 32, (1 << 63) - 1]))
    return WireFrame(base.opcode, b"", declared=declared, length_form="64", mask=base.mask)


@st.composite
def streams(draw: st.DrawFn) -> tuple[int, list[WireFrame]]:
    max_size = draw(st.sampled_from(LIMITS))
    pieces = draw(
        st.lists(
            st.one_of(
                usual_frames(max_size).map(lambda f: [f]),
                usual_frames(max_size).map(lambda f: [f]),
                usual_frames(max_size).map(lambda f: [f]),
                control_frames().map(lambda f: [f]),
                odd_frames(max_size).map(lambda f: [f]),
                fragmented_messages(max_size),
            ),
            min_size=1,
            max_size=8,
        )
    )
    return max_size, [frame for piece in pieces for frame in piece]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams(), st.data())
def test_splitter_then_library_equals_library_alone(
    stream: tuple[int, list[WireFrame]], data: st.DataObject
) -> None:
    max_size, frames = stream
    wire = encode(frames)
    cuts = data.draw(st.lists(st.integers(0, len(wire)), max_size=12), label="cuts")
    chunks = chunked(wire, cuts)
    assert splitter_then_library(chunks, max_size) == library_alone(chunks, max_size)


# -- every byte offset ----------------------------------------------------------------------

EVERY_OFFSET = {
    "media": [media_frame(), media_frame(b"\xff\x00\xff\x00")],
    "16-bit and 64-bit lengths": [
        WireFrame(BINARY, _payload(300, 1)),
        WireFrame(TEXT, b"long form", length_form="64"),
        WireFrame(TEXT, b"", length_form="16"),
    ],
    "ping between texts": [WireFrame(TEXT, b"one"), WireFrame(PING, b"?"), WireFrame(TEXT, b"2")],
    "fragments": [
        WireFrame(TEXT, "héllo ".encode()[:2], fin=False),
        WireFrame(PONG, b""),
        WireFrame(CONT, "héllo wörld".encode()[2:], fin=True),
        WireFrame(BINARY, b"after"),
    ],
    "close then more": [WireFrame(TEXT, b"bye"), WireFrame(CLOSE, b"\x03\xe8ok"), media_frame()],
    "invalid utf-8": [WireFrame(TEXT, b"fine"), WireFrame(TEXT, b"\xc3\x28"), media_frame()],
    "oversize": [media_frame(), WireFrame(BINARY, b"", declared=DEFAULT + 1), media_frame()],
    "rsv bits": [media_frame(), WireFrame(TEXT, b"deflated?", rsv=0b100)],
    "unmasked": [media_frame(), WireFrame(TEXT, b"no mask", masked=False)],
}


@pytest.mark.parametrize("name", sorted(EVERY_OFFSET))
def test_split_at_every_byte_offset(name: str) -> None:
    wire = encode(EVERY_OFFSET[name])
    whole = library_alone([wire], DEFAULT)
    if name in ("invalid utf-8",):
        assert whole.close_code == INVALID_DATA
    for offset in range(len(wire) + 1):
        chunks = chunked(wire, [offset])
        assert splitter_then_library(chunks, DEFAULT) == library_alone(chunks, DEFAULT) == whole
    one_by_one = [wire[i : i + 1] for i in range(len(wire))]
    assert splitter_then_library(one_by_one, DEFAULT) == whole


def test_expected_outcomes_of_the_reference_itself() -> None:
    """The reference really exercises what the property claims: each error has its code."""
    codes = {
        name: library_alone([encode(frames)], DEFAULT).close_code
        for name, frames in EVERY_OFFSET.items()
    }
    assert codes == {
        "media": None,
        "16-bit and 64-bit lengths": None,
        "ping between texts": None,
        "fragments": None,
        "close then more": None,
        "invalid utf-8": INVALID_DATA,
        "oversize": 1009,
        "rsv bits": 1002,
        "unmasked": 1002,
    }
