"""The lean WebSocket frame splitter: bytes in, the usual frames out, the rest to the library.

What Twilio and the toys send all day is one kind of frame: complete, unfragmented (FIN set,
no RSV bits), masked, text or binary, within the message size limit. websockets' parser is a
generator that costs several times more per small frame (bench/README.md), so those frames are
split off here and unmasked with websockets' own C ``apply_mask``.

Anything else (control frames, fragments, unmasked or oversized frames, RSV bits, unknown
opcodes) is *not* judged here: the splitter stops at the first byte of the first unusual frame
and returns every byte from there on, so the library sees a stream that starts at a frame
boundary and decides what it means (pong, 1002, 1009, ...). From then on the connection
belongs to the library; the splitter is spent. tests/bridge/server/test_frames.py checks that
"splitter, then the library on the rest" equals "the library alone".

No sockets, clocks or asyncio: :class:`UsualFrames` only keeps the bytes of a frame that has
not fully arrived yet.
"""

from __future__ import annotations

try:
    from websockets.speedups import apply_mask
except ImportError:  # a pure-Python websockets build
    from websockets.frames import apply_mask  # type: ignore[attr-defined,no-redef]

OP_TEXT = 0x1
OP_BINARY = 0x2
#: FIN set, RSV1-3 clear: the high nibble of the first byte of an unfragmented frame
_FIN_ONLY = 0x80
_FIN_RSV = 0xF0
_OPCODE = 0x0F
_MASKED = 0x80
_LENGTH = 0x7F
_LENGTH_16 = 126
_LENGTH_64 = 127
_MASK_BYTES = 4

#: one usual frame: its opcode (:data:`OP_TEXT` or :data:`OP_BINARY`) and unmasked payload
Frame = tuple[int, bytes]


def split_usual(data: bytes | bytearray, max_size: int | None) -> tuple[list[Frame], int, bool]:
    """Split ``data`` into the usual frames at its start.

    Returns ``(frames, consumed, unusual)``: the complete usual frames, how many bytes they
    took, and whether ``data[consumed:]`` begins with an unusual frame (then it belongs to the
    library). Otherwise ``data[consumed:]`` is the start of a frame still arriving.
    ``max_size`` is the message size limit (None: no limit); a larger frame is unusual.
    """
    frames: list[Frame] = []
    pos = 0
    end = len(data)
    while end - pos >= 2:
        b0 = data[pos]
        b1 = data[pos + 1]
        length = b1 & _LENGTH
        head = pos + 2
        if length == _LENGTH_16:
            if end - head < 2:
                break
            length = (data[head] << 8) | data[head + 1]
            head = pos + 4
        elif length == _LENGTH_64:
            if end - head < 8:
                break
            length = int.from_bytes(data[head : head + 8], "big")
            head = pos + 10
        opcode = b0 & _OPCODE
        if (
            b0 & _FIN_RSV != _FIN_ONLY
            or not b1 & _MASKED
            or (opcode != OP_TEXT and opcode != OP_BINARY)
            or (max_size is not None and length > max_size)
        ):
            return frames, pos, True
        start = head + _MASK_BYTES
        stop = start + length
        if stop > end:
            break
        frames.append((opcode, apply_mask(data[start:stop], data[head:start])))
        pos = stop
    return frames, pos, False


class UsualFrames:
    """:func:`split_usual` over a stream that arrives in arbitrary pieces.

    :meth:`feed` returns the frames completed by each piece and, once, the bytes from the first
    unusual frame on; after that the splitter is spent and must not be fed again.
    """

    __slots__ = ("_partial", "max_size")

    def __init__(self, max_size: int | None) -> None:
        self.max_size = max_size
        #: the start of a frame still arriving (empty between frames)
        self._partial = bytearray()

    @property
    def pending(self) -> int:
        """Bytes of an incomplete frame held back."""
        return len(self._partial)

    def feed(self, data: bytes) -> tuple[list[Frame], bytes | None]:
        """The usual frames ``data`` completes, and the unusual rest (None: all usual)."""
        partial = self._partial
        if partial:
            partial += data
            frames, consumed, unusual = split_usual(partial, self.max_size)
            if unusual:
                rest = bytes(partial[consumed:])
                partial.clear()
                return frames, rest
            del partial[:consumed]
            return frames, None
        # the common case: nothing held back, so the piece is parsed without a copy
        frames, consumed, unusual = split_usual(data, self.max_size)
        if unusual:
            return frames, data[consumed:]
        if consumed < len(data):
            partial += data[consumed:]
        return frames, None
