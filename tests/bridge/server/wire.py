"""WebSocket frames built byte by byte, including the ones a well-behaved client never sends.

websockets' own serializer refuses odd frames (RSV bits, unmasked client frames, non-minimal
lengths), so the tests of the frame splitter encode their frames here. :func:`outcome` turns
the library's events into what an application would see: messages (fragments joined, text
decoded, a non-UTF-8 text closing 1007 as uvicorn does), control frames, and the close code
when the library failed the connection.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise
from typing import Literal

from websockets.frames import Frame, Opcode
from websockets.protocol import State
from websockets.server import ServerProtocol
from websockets.utils import apply_mask

from bridge.server.frames import OP_TEXT, UsualFrames

CONT, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
INVALID_DATA = 1007

LengthForm = Literal["minimal", "16", "64"]


@dataclass(frozen=True)
class WireFrame:
    """One frame as it goes on the wire, valid or not."""

    opcode: int
    payload: bytes
    fin: bool = True
    rsv: int = 0
    masked: bool = True
    mask: bytes = b"\x37\xfa\x21\x3d"
    length_form: LengthForm = "minimal"
    #: a declared payload length other than the payload's own (oversize without the bytes)
    declared: int | None = None

    def encode(self) -> bytes:
        length = len(self.payload) if self.declared is None else self.declared
        head = bytearray([(0x80 if self.fin else 0) | (self.rsv << 4) | self.opcode])
        mask_bit = 0x80 if self.masked else 0
        form: str = self.length_form
        if form == "minimal":
            form = "7" if length < 126 else "16" if length < 1 << 16 else "64"
        if form == "7":
            head.append(mask_bit | length)
        elif form == "16":
            head.append(mask_bit | 126)
            head += length.to_bytes(2, "big")
        else:
            head.append(mask_bit | 127)
            head += length.to_bytes(8, "big")
        if not self.masked:
            return bytes(head) + self.payload
        return bytes(head) + self.mask + apply_mask(self.payload, self.mask)

    @property
    def usual(self) -> bool:
        """What the splitter may take itself (given a payload within the size limit)."""
        return (
            self.fin
            and not self.rsv
            and self.masked
            and self.opcode in (TEXT, BINARY)
            and self.declared is None
        )


def encode(frames: list[WireFrame]) -> bytes:
    return b"".join(f.encode() for f in frames)


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    """``data`` cut at the given offsets (any order, repeats allowed)."""
    points = sorted({c for c in cuts if 0 < c < len(data)})
    edges = [0, *points, len(data)]
    return [data[a:b] for a, b in pairwise(edges) if b > a]


Message = tuple[str, str | bytes]


@dataclass
class Outcome:
    """What the application sees: messages and control frames in order, and the close code
    (None while the connection is fine)."""

    messages: list[Message]
    close_code: int | None


def outcome(events: list[Frame], conn: ServerProtocol | None) -> Outcome:
    seen: list[Message] = []
    parts: list[bytes] = []
    is_text = False
    for frame in events:
        data = bytes(frame.data)
        if frame.opcode in (Opcode.TEXT, Opcode.BINARY):
            is_text = frame.opcode is Opcode.TEXT
            parts = [data]
        elif frame.opcode is Opcode.CONT:
            parts.append(data)
        else:
            seen.append((frame.opcode.name.lower(), data))
            continue
        if frame.fin:
            whole = b"".join(parts)
            if not is_text:
                seen.append(("bytes", whole))
                continue
            try:
                seen.append(("text", whole.decode()))
            except UnicodeDecodeError:
                return Outcome(seen, INVALID_DATA)
    close = conn.close_sent if conn is not None and conn.parser_exc is not None else None
    return Outcome(seen, None if close is None else close.code)


def frames_of(conn: ServerProtocol) -> list[Frame]:
    return [event for event in conn.events_received() if isinstance(event, Frame)]


def library(max_size: int) -> ServerProtocol:
    return ServerProtocol(state=State.OPEN, max_size=max_size)


def library_alone(chunks: list[bytes], max_size: int) -> Outcome:
    """The reference: websockets' parser on every byte."""
    conn = library(max_size)
    events: list[Frame] = []
    for chunk in chunks:
        conn.receive_data(chunk)
        events += frames_of(conn)
    return outcome(events, conn)


def splitter_then_library(chunks: list[bytes], max_size: int) -> Outcome:
    """Ours: the splitter until the first unusual frame, the library on the rest (what
    BatchedWebSocketProtocol.data_received does)."""
    usual = UsualFrames(max_size)
    conn: ServerProtocol | None = None
    events: list[Frame] = []
    for chunk in chunks:
        data = chunk
        if conn is None:
            frames, rest = usual.feed(chunk)
            events += [
                Frame(Opcode.TEXT if op == OP_TEXT else Opcode.BINARY, payload)
                for op, payload in frames
            ]
            if rest is None:
                continue
            conn = library(max_size)
            data = rest
        conn.receive_data(data)
        events += frames_of(conn)
    return outcome(events, conn)
