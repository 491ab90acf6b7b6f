"""Read and write mono PCM16 WAV files (fixtures, the emulators' input and output)."""

from __future__ import annotations

import io
import wave
from pathlib import Path

import numpy as np


def read_wav(path: str | Path) -> tuple[bytes, int]:
    """Return (PCM16 mono little-endian, rate_hz); stereo is averaged down to mono."""
    with wave.open(str(path), "rb") as wav:
        if wav.getsampwidth() != 2:
            raise ValueError(f"{path}: only 16-bit PCM WAV is supported")
        channels = wav.getnchannels()
        rate_hz = wav.getframerate()
        frames = wav.readframes(wav.getnframes())
    if channels > 1:
        samples = np.frombuffer(frames, dtype=np.int16).reshape(-1, channels)
        frames = samples.mean(axis=1).astype(np.int16).tobytes()
    return frames, rate_hz


def wav_bytes(pcm16: bytes, rate_hz: int) -> bytes:
    """A mono PCM16 WAV file, in memory (an upload's body)."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate_hz)
        wav.writeframes(pcm16)
    return buffer.getvalue()


def write_wav(path: str | Path, pcm16: bytes, rate_hz: int) -> None:
    Path(path).write_bytes(wav_bytes(pcm16, rate_hz))
