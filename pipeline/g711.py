"""G.711 mu-law codec from the standard ``audioop`` (``audioop-lts`` on Python >= 3.13).

Kept in one place so the deprecation shim and the sample width live nowhere else.
"""

from __future__ import annotations

import warnings

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

SAMPLE_WIDTH_BYTES = 2


def ulaw_to_pcm16(ulaw: bytes) -> bytes:
    """Decode mu-law bytes (one byte per sample) to little-endian signed 16-bit PCM."""
    return audioop.ulaw2lin(ulaw, SAMPLE_WIDTH_BYTES)


def pcm16_to_ulaw(pcm16: bytes) -> bytes:
    """Encode little-endian signed 16-bit PCM to mu-law; a trailing odd byte is ignored."""
    if len(pcm16) % 2:
        pcm16 = pcm16[:-1]
    return audioop.lin2ulaw(pcm16, SAMPLE_WIDTH_BYTES)


def rms_pcm16(pcm16: bytes) -> int:
    """Root-mean-square level of a PCM16 buffer (0..32767)."""
    return int(audioop.rms(pcm16, SAMPLE_WIDTH_BYTES))
