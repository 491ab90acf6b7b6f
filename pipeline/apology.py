"""The spoken apology a caller hears when the agent cannot answer a turn.

It is a packaged recording, not synthesized on demand, because the failing stage may be the
speech synthesizer itself (a cloud TTS outage must not turn into dead air). The clip was made
offline with piper and the CC0 ``joe`` voice; its text is :data:`APOLOGY_TEXT`.
"""

from __future__ import annotations

import functools
from pathlib import Path

from pipeline.audio import AudioSpec, Converter
from pipeline.wav import read_wav

APOLOGY_TEXT = "Sorry, I'm having trouble answering right now. Please say that again in a moment."
APOLOGY_WAV = Path(__file__).parent / "assets" / "apology_16k.wav"


@functools.cache
def apology_audio(spec: AudioSpec) -> bytes:
    """The apology in ``spec``, converted once per format and cached for the process."""
    pcm, rate_hz = read_wav(APOLOGY_WAV)
    converter = Converter(AudioSpec("pcm16", rate_hz), spec)
    return converter.process(pcm) + converter.flush()
