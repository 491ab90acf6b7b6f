"""Speech fixtures as each wire carries them."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.audio import ULAW_8K, AudioSpec, Converter
from pipeline.wav import read_wav

FIXTURES = Path(__file__).parent.parent / "fixtures"


def load_ulaw(name: str, gain: float = 1.0) -> bytes:
    """A speech fixture as Twilio would send it: μ-law, 8 kHz."""
    pcm, rate_hz = read_wav(FIXTURES / name)
    if gain != 1.0:
        samples = np.frombuffer(pcm, dtype=np.int16).astype(np.float32) * gain
        pcm = samples.clip(-32768, 32767).astype(np.int16).tobytes()
    converter = Converter(AudioSpec("pcm16", rate_hz), ULAW_8K)
    return converter.process(pcm) + converter.flush()
