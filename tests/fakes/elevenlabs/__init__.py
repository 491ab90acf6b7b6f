"""A fake ElevenLabs text-to-speech: a real WebSocket server on loopback that speaks the API's
documented wire format, for the bridge's tests and benchmarks (DESIGN.md, "A fake of a paid
service").

Layout:

* :mod:`.wire`: formats, the tone and its alignment, message and error payloads;
* :mod:`.records`: :class:`Fault` (what a test injects) and :class:`Connection` (what the fake
  received and sent, with times, credentials redacted);
* :mod:`.session`: one connection's protocol: contexts, generation, inactivity, faults;
* :mod:`.server`: :class:`FakeElevenLabs`, the ASGI app, its handshake and lifecycle.

``tests/fakes/elevenlabs_server.py`` re-exports this API and is the command line.

Documents it follows (checked against the versions fetched for this work):

* ElevenLabs' AsyncAPI definition, ``fern/apis/api/asyncapi.yml`` in ``elevenlabs/elevenlabs-docs``
  (rendered as https://elevenlabs.io/docs/api-reference/text-to-speech/v-1-text-to-speech-voice-id-stream-input
  and ``…-multi-stream-input``);
* the guides ``fern/docs/pages/developer-guides/websockets.mdx`` ("Generate audio in real-time")
  and ``fern/docs/pages/best-practices/conversational-agents.mdx`` ("Multi-Context Websocket");
* the SDK models in ``elevenlabs/elevenlabs-python`` ``src/elevenlabs/types/`` and its
  ``realtime_tts.py`` (a 1000 close ends a stream normally);
* how a client uses it: pipecat's ``src/pipecat/services/elevenlabs/{tts,tts_base}.py``;
* live behaviour the documents leave out, from issue threads, cited where used.
"""

from tests.fakes.elevenlabs.records import ClientMessage, Connection, Endpoint, Fault, ServerMessage
from tests.fakes.elevenlabs.server import API_KEY, FakeElevenLabs
from tests.fakes.elevenlabs.wire import (
    OUTPUT_FORMATS,
    TONE_AMPLITUDE,
    TONE_HZ,
    TTS_MS_PER_CHAR,
    AudioFormat,
    audio_format,
    chars_heard,
    tts_ms,
)

__all__ = [
    "API_KEY",
    "OUTPUT_FORMATS",
    "TONE_AMPLITUDE",
    "TONE_HZ",
    "TTS_MS_PER_CHAR",
    "AudioFormat",
    "ClientMessage",
    "Connection",
    "Endpoint",
    "FakeElevenLabs",
    "Fault",
    "ServerMessage",
    "audio_format",
    "chars_heard",
    "tts_ms",
]
