"""Binary frames of the xiaozhi protocol, versions 1-3 (pure; integers big-endian).

The firmware (``main/protocols/websocket_protocol.cc``) picks the framing from its
``Protocol-Version`` header and uses it both ways: v1 is one raw Opus packet per message; v2
adds a 16-byte header (``u16 version | u16 type | u32 reserved | u32 timestamp_ms |
u32 payload_size``) whose timestamp is the capture time, for server-side AEC; v3 a 4-byte
header (``u8 type | u8 reserved | u16 payload_size``). A header that disagrees with the
message length is refused, never guessed around: a device that sends it is broken.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

VERSIONS = (1, 2, 3)
HEADER_V2 = struct.Struct(">HHIII")
HEADER_V3 = struct.Struct(">BBH")
#: frame type of audio (the only one the firmware sends or expects)
TYPE_AUDIO = 0
#: an Opus packet is at most 1275 bytes per 20 ms; 120 ms of the largest fits in this
MAX_PAYLOAD_BYTES = 8 * 1024


class FramingError(ValueError):
    """A binary message that is not a frame of the negotiated version."""

    def __init__(self, close_code: int, reason: str) -> None:
        super().__init__(reason)
        self.close_code = close_code
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Frame:
    payload: bytes
    frame_type: int = TYPE_AUDIO
    #: the device's capture time (v2 only; 0 otherwise)
    timestamp_ms: int = 0


def pack(version: int, payload: bytes, timestamp_ms: int = 0) -> bytes:
    """One Opus packet as a binary message of ``version``."""
    if version == 2:
        header = HEADER_V2.pack(2, TYPE_AUDIO, 0, timestamp_ms & 0xFFFFFFFF, len(payload))
        return header + payload
    if version == 3:
        return HEADER_V3.pack(TYPE_AUDIO, 0, len(payload)) + payload
    return payload


def unpack(version: int, data: bytes) -> Frame:
    """A binary message of ``version`` -> its frame; :class:`FramingError` when it is not."""
    if len(data) > MAX_PAYLOAD_BYTES + HEADER_V2.size:
        raise FramingError(1009, f"binary message of {len(data)} bytes")
    if version == 2:
        if len(data) < HEADER_V2.size:
            raise FramingError(1007, "v2 frame shorter than its header")
        _, frame_type, _, timestamp_ms, size = HEADER_V2.unpack_from(data)
        payload = data[HEADER_V2.size :]
    elif version == 3:
        if len(data) < HEADER_V3.size:
            raise FramingError(1007, "v3 frame shorter than its header")
        frame_type, _, size = HEADER_V3.unpack_from(data)
        timestamp_ms = 0
        payload = data[HEADER_V3.size :]
    else:
        return _checked(Frame(data))
    if size != len(payload):
        raise FramingError(1007, f"v{version} header says {size} bytes, {len(payload)} follow")
    return _checked(Frame(payload, frame_type, timestamp_ms))


def _checked(frame: Frame) -> Frame:
    if len(frame.payload) > MAX_PAYLOAD_BYTES:
        raise FramingError(1009, f"Opus packet of {len(frame.payload)} bytes")
    return frame
