"""ElevenLabs streaming speech (multi-stream-input): one socket per call, one context per reply.

Modules: :mod:`.options` (settings, address, output format), :mod:`.wire` (the messages),
:mod:`.spans` (which sentence each piece of audio speaks), :mod:`.connection` (the socket:
reader, keep-alive, watchdog), :mod:`.turn` (one reply), :mod:`.stage` (the stage and its
factory).
"""

from pipeline.agents.providers.elevenlabs.options import ElevenLabsOptions
from pipeline.agents.providers.elevenlabs.stage import ElevenLabsSpeech, ElevenLabsSpeechFactory

__all__ = ["ElevenLabsOptions", "ElevenLabsSpeech", "ElevenLabsSpeechFactory"]
