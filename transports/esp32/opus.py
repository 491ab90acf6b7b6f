"""Opus packets for the toy: 24 kHz mono VOIP at 24 kbit/s, one packet per WebSocket message.

All three Elato reference servers use these settings, and the firmware's decode buffer fits a
120 ms frame. The encoder is reset at the start of every response (fresh state, as the spec
asks), and the last partial frame of a response is zero-padded, never dropped.
"""

from __future__ import annotations

import opuslib

OPUS_RATE_HZ = 24000
OPUS_BITRATE_BPS = 24000
ALLOWED_FRAME_MS = (20, 40, 60, 120)
#: libopus defaults to 10 (its maximum); 5 costs ~40% less CPU per frame for speech at
#: 24 kbit/s with a barely measurable difference (bench/README.md has the figures)
DEFAULT_COMPLEXITY = 5


class OpusPacketizer:
    def __init__(self, frame_ms: int = 120, complexity: int = DEFAULT_COMPLEXITY) -> None:
        if frame_ms not in ALLOWED_FRAME_MS:
            raise ValueError(f"Opus frame must be one of {ALLOWED_FRAME_MS} ms, got {frame_ms}")
        self.frame_ms = frame_ms
        self.frame_samples = OPUS_RATE_HZ * frame_ms // 1000
        self.frame_bytes = self.frame_samples * 2
        self._encoder = opuslib.Encoder(OPUS_RATE_HZ, 1, opuslib.APPLICATION_VOIP)
        self._encoder.bitrate = OPUS_BITRATE_BPS
        self._encoder.complexity = complexity

    def reset(self) -> None:
        """Fresh encoder state for a new response."""
        self._encoder.reset_state()

    def encode(self, pcm16_24k: bytes) -> bytes:
        """One frame of PCM16 at 24 kHz (shorter input is zero-padded) to one Opus packet."""
        if len(pcm16_24k) > self.frame_bytes:
            raise ValueError(f"{len(pcm16_24k)} bytes is more than one {self.frame_ms} ms frame")
        if len(pcm16_24k) < self.frame_bytes:
            pcm16_24k = pcm16_24k + b"\x00" * (self.frame_bytes - len(pcm16_24k))
        packet: bytes = self._encoder.encode(pcm16_24k, self.frame_samples)
        return packet
