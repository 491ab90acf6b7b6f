"""Audio formats and the stateful converters that move audio between them.

Design rule: convert once per direction. A :class:`Converter` is built once per call and
direction; it decodes mu-law, resamples with one streaming soxr resampler that is never reset
between chunks (no clicks at chunk edges) and encodes mu-law, skipping every step that is not
needed. ``Converter(a, a)`` is a pass-through that returns its input unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import soxr

from pipeline.g711 import pcm16_to_ulaw, ulaw_to_pcm16

Encoding = Literal["pcm16", "ulaw"]

#: soxr quality for the live path. "LQ" buffers about 24 ms at 8 -> 16 kHz where "HQ" buffers
#: about 95 ms (bench/bench_audio.py measures it); speech intelligibility is unaffected.
LIVE_RESAMPLE_QUALITY = "LQ"


@dataclass(frozen=True, slots=True)
class AudioSpec:
    """A raw mono audio format: encoding and sample rate."""

    encoding: Encoding
    rate_hz: int

    @property
    def bytes_per_sample(self) -> int:
        return 2 if self.encoding == "pcm16" else 1

    @property
    def bytes_per_ms(self) -> float:
        return self.rate_hz * self.bytes_per_sample / 1000

    def duration_ms(self, n_bytes: int) -> float:
        return n_bytes / self.bytes_per_ms

    def bytes_for_ms(self, ms: float) -> int:
        """Whole-sample byte count for ``ms`` milliseconds."""
        return int(self.rate_hz * ms / 1000) * self.bytes_per_sample

    def __str__(self) -> str:
        return f"{self.encoding}@{self.rate_hz}"


ULAW_8K = AudioSpec("ulaw", 8000)
PCM16_8K = AudioSpec("pcm16", 8000)
PCM16_16K = AudioSpec("pcm16", 16000)
PCM16_24K = AudioSpec("pcm16", 24000)


class StreamResampler:
    """One streaming PCM16 resampler; state carries across chunks until :meth:`flush`."""

    __slots__ = ("_in_rate_hz", "_out_rate_hz", "_quality", "_stream")

    def __init__(self, in_rate_hz: int, out_rate_hz: int, quality: str = LIVE_RESAMPLE_QUALITY):
        self._in_rate_hz = in_rate_hz
        self._out_rate_hz = out_rate_hz
        self._quality = quality
        self._stream = self._new_stream()

    def _new_stream(self) -> soxr.ResampleStream:
        return soxr.ResampleStream(
            self._in_rate_hz, self._out_rate_hz, 1, dtype="int16", quality=self._quality
        )

    def process(self, pcm16: bytes) -> bytes:
        if not pcm16:
            return b""
        samples = np.frombuffer(pcm16, dtype=np.int16)
        return bytes(self._stream.resample_chunk(samples).tobytes())

    def flush(self) -> bytes:
        """Drain the samples buffered inside the filter and start a fresh stream."""
        tail = self._stream.resample_chunk(np.zeros(0, dtype=np.int16), last=True)
        self._stream = self._new_stream()
        return bytes(tail.tobytes())

    def reset(self) -> None:
        """Drop buffered samples (used when a turn is interrupted)."""
        self._stream = self._new_stream()


class SampleAligner:
    """Treats PCM16 as a byte stream: an odd trailing byte waits for the next chunk.

    Devices send microphone audio in messages of any length; a sample split across two
    messages must be joined, never dropped or shifted.
    """

    __slots__ = ("_carry",)

    def __init__(self) -> None:
        self._carry = b""

    def align(self, data: bytes) -> bytes:
        if self._carry:
            data = self._carry + data
            self._carry = b""
        if len(data) % 2:
            self._carry = data[-1:]
            data = data[:-1]
        return data

    def reset(self) -> None:
        self._carry = b""


class Converter:
    """Stateful one-direction converter from ``src`` to ``dst`` format.

    PCM16 input is treated as a byte stream: an odd trailing byte is carried over to the
    next call so a sample split across messages is never lost or misaligned.
    """

    __slots__ = ("_aligner", "_resampler", "dst", "src")

    def __init__(self, src: AudioSpec, dst: AudioSpec) -> None:
        self.src = src
        self.dst = dst
        self._aligner = SampleAligner()
        self._resampler = (
            StreamResampler(src.rate_hz, dst.rate_hz) if src.rate_hz != dst.rate_hz else None
        )

    @property
    def is_passthrough(self) -> bool:
        return self.src == self.dst

    def to_pcm16(self, data: bytes) -> bytes:
        """Decode the source encoding to PCM16 at the source rate (sample-aligned)."""
        if self.src.encoding == "ulaw":
            return ulaw_to_pcm16(data)
        return self._aligner.align(data)

    def process(self, data: bytes) -> bytes:
        if self.is_passthrough and self.src.encoding == "ulaw":
            return data
        pcm = self.to_pcm16(data)
        if self._resampler is not None:
            pcm = self._resampler.process(pcm)
        return pcm16_to_ulaw(pcm) if self.dst.encoding == "ulaw" else pcm

    def flush(self) -> bytes:
        """End of a stream (a turn): emit what the resampler holds and start afresh."""
        self._aligner.reset()
        if self._resampler is None:
            return b""
        tail = self._resampler.flush()
        return pcm16_to_ulaw(tail) if self.dst.encoding == "ulaw" else tail

    def reset(self) -> None:
        self._aligner.reset()
        if self._resampler is not None:
            self._resampler.reset()


class Reframer:
    """Cuts a byte stream into fixed-size frames; the remainder waits for more input."""

    __slots__ = ("_buffer", "frame_bytes")

    def __init__(self, frame_bytes: int) -> None:
        if frame_bytes <= 0:
            raise ValueError("frame_bytes must be positive")
        self.frame_bytes = frame_bytes
        self._buffer = bytearray()

    def push(self, data: bytes) -> list[bytes]:
        self._buffer += data
        n = len(self._buffer) // self.frame_bytes * self.frame_bytes
        if n == 0:
            return []
        view = bytes(self._buffer[:n])
        del self._buffer[:n]
        size = self.frame_bytes
        return [view[i : i + size] for i in range(0, n, size)]

    def take_rest(self) -> bytes:
        rest = bytes(self._buffer)
        self._buffer.clear()
        return rest

    def __len__(self) -> int:
        return len(self._buffer)
