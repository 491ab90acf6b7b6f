"""ElevenLabs' text-to-speech WebSocket wire format, as the fake writes and reads it.

Sources (checked 2026; see the package docstring for the full list):

* the API's AsyncAPI definition, ``fern/apis/api/asyncapi.yml`` in ``elevenlabs/elevenlabs-docs``
  (channels ``/v1/text-to-speech/{voice_id}/stream-input`` and ``…/multi-stream-input``): query
  parameters and their defaults, message schemas, the output format enum;
* the official SDK's generated models, ``src/elevenlabs/types/{audio_output,audio_output_multi,
  alignment,final_output_multi}.py`` in ``elevenlabs/elevenlabs-python``: the field names as the
  API sends them today (``charDurationsMs``, ``isFinal``, ``contextId``);
* error payloads and close codes as reported from the live API in issue threads
  (``livekit/agents#218``, ``elevenlabs/elevenlabs-docs#426``, ``livekit/agents-js#1985``,
  ``pipecat-ai/pipecat#4541``): ``{"message", "error", "code": 1008}`` then a 1008 close.

The fake's speech is a tone: every character of the text lasts :data:`TTS_MS_PER_CHAR`, so the
audio, its alignment and what a listener heard all follow from the text alone.
"""

from __future__ import annotations

import base64
import itertools
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from pipeline.g711 import pcm16_to_ulaw

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

#: how long the fake speaks each character (spaces and punctuation included); 20 ms is a whole
#: number of samples at every supported rate
TTS_MS_PER_CHAR = 20
TONE_HZ = 440.0
TONE_AMPLITUDE = 8000

#: ``output_format`` values the fake can really encode: (encoding, sample rate). The AsyncAPI enum
#: ``TextToSpeechOutputFormatEnum`` also lists ``mp3_*`` and ``opus_*``, which the fake refuses.
OUTPUT_FORMATS: dict[str, tuple[str, int]] = {
    "pcm_8000": ("pcm16", 8000),
    "pcm_16000": ("pcm16", 16000),
    "pcm_22050": ("pcm16", 22050),
    "pcm_24000": ("pcm16", 24000),
    "pcm_44100": ("pcm16", 44100),
    "ulaw_8000": ("ulaw", 8000),
    "alaw_8000": ("alaw", 8000),
}
#: the API's default when ``output_format`` is absent (the SDK's ``mp3_44100_128``)
DEFAULT_OUTPUT_FORMAT = "mp3_44100_128"
#: AsyncAPI ``inactivity_timeout``: default 20 s, "can be up to 180 seconds"
DEFAULT_INACTIVITY_TIMEOUT_S = 20.0
MAX_INACTIVITY_TIMEOUT_S = 180.0
#: AsyncAPI ``GenerationConfig.chunk_length_schedule`` default
DEFAULT_CHUNK_SCHEDULE = (120, 160, 250, 290)
#: ``try_trigger_generation`` generates only above "a minimum threshold of characters"; the
#: threshold is not documented: the fake uses the smallest allowed schedule value (50)
TRY_TRIGGER_MIN_CHARS = 50
#: a multi-context socket holds at most 5 contexts (guide "Multi-Context Websocket",
#: ``fern/docs/pages/best-practices/conversational-agents.mdx``)
MAX_CONTEXTS = 5
#: RFC 6455: a close reason is at most 123 bytes
CLOSE_REASON_MAX_BYTES = 123
POLICY_VIOLATION = 1008

#: error codes seen from the live API (issue threads above; ``invalid_api_key`` is also in
#: ``fern/docs/pages/developer-guides/error-messages.mdx``)
INPUT_TIMEOUT = "input_timeout_exceeded"
MAX_ACTIVE_CONTEXTS = "max_active_conversations"
INVALID_API_KEY = "invalid_api_key"
#: not documented anywhere: the fake's own names for errors whose code the reports do not show
SETTINGS_CHANGED = "settings_changed"
INVALID_MESSAGE = "invalid_message"
UNSUPPORTED_BY_FAKE = "unsupported_by_fake"


@dataclass(frozen=True, slots=True)
class AudioFormat:
    name: str
    encoding: str
    rate_hz: int

    @property
    def bytes_per_sample(self) -> int:
        return 2 if self.encoding == "pcm16" else 1


def audio_format(name: str) -> AudioFormat | None:
    """The format ``output_format=name`` asks for, or None when the fake cannot encode it."""
    found = OUTPUT_FORMATS.get(name)
    return AudioFormat(name, *found) if found else None


def tts_ms(text: str) -> int:
    """How long the fake's speech for ``text`` lasts."""
    return len(text) * TTS_MS_PER_CHAR


def chars_heard(text: str, heard_ms: float) -> str:
    """The part of ``text`` a listener heard after ``heard_ms`` of its speech: what a client
    should keep of a turn cut off at that point (a character counts once it has started)."""
    count = max(0, min(len(text), int(-(-heard_ms // TTS_MS_PER_CHAR))))
    return text[:count]


def speak(text: str, fmt: AudioFormat) -> list[bytes]:
    """The speech for ``text`` in ``fmt``, one piece per character: a continuous tone from
    phase 0, cut at the characters' boundaries so any run of them is its exact audio."""
    ms = TTS_MS_PER_CHAR
    total = round(len(text) * ms * fmt.rate_hz / 1000)
    t = np.arange(total) / fmt.rate_hz
    samples = (TONE_AMPLITUDE * np.sin(2 * np.pi * TONE_HZ * t)).astype("<i2")
    bounds = [round(i * ms * fmt.rate_hz / 1000) for i in range(len(text) + 1)]
    return [encode(samples[a:b].tobytes(), fmt) for a, b in itertools.pairwise(bounds)]


def encode(pcm16: bytes, fmt: AudioFormat) -> bytes:
    if fmt.encoding == "ulaw":
        return pcm16_to_ulaw(pcm16)
    if fmt.encoding == "alaw":
        return bytes(audioop.lin2alaw(pcm16, 2))
    return pcm16


def alignment(chars: str) -> dict[str, list[Any]]:
    """``Alignment`` / ``NormalizedAlignment`` of one audio message. Times are relative to
    the message's own audio chunk, "not the full audio response" (both schemas say so)."""
    n = len(chars)
    return {
        "chars": list(chars),
        "charStartTimesMs": [i * TTS_MS_PER_CHAR for i in range(n)],
        "charDurationsMs": [TTS_MS_PER_CHAR] * n,
    }


def audio_message(chunk: bytes, chars: str, context_id: str | None, multi: bool) -> dict[str, Any]:
    """``AudioOutput`` (stream-input: with ``isFinal: false`` as in the AsyncAPI example) or
    ``AudioOutputMulti`` (multi-stream-input: with ``contextId``)."""
    message: dict[str, Any] = {"audio": base64.b64encode(chunk).decode("ascii")}
    if not multi:
        message["isFinal"] = False
    message["normalizedAlignment"] = alignment(chars)
    message["alignment"] = alignment(chars)
    if multi and context_id is not None:
        message["contextId"] = context_id
    return message


def final_message(context_id: str | None, multi: bool) -> dict[str, Any]:
    """``FinalOutput`` / ``FinalOutputMulti``: ``{"isFinal": true}`` (+ ``contextId``)."""
    message: dict[str, Any] = {"isFinal": True}
    if multi and context_id is not None:
        message["contextId"] = context_id
    return message


def error_message(error: str, message: str, code: int = POLICY_VIOLATION) -> dict[str, Any]:
    """The error the API sends before it closes the socket (as logged in livekit/agents#218)."""
    return {"message": message, "error": error, "code": code}


def close_reason(message: str) -> str:
    """``message`` cut to fit a close frame (which is why elevenlabs-docs#426 saw it cut)."""
    data = message.encode()[:CLOSE_REASON_MAX_BYTES]
    return data.decode("utf-8", errors="ignore")


def input_timeout_text(timeout_s: float) -> str:
    """The live API's wording, quoted by its maintainer in elevenlabs-docs#426."""
    return (
        f"Have not received a new text input within the timeout of {timeout_s:g} seconds. "
        "Streaming input terminated. Please make sure to either feed the input in the timely "
        'manner, or to send the end of input text (empty string "") when done.'
    )


def max_contexts_text(limit: int) -> str:
    """Wording reported from the live API in livekit/agents-js#1985."""
    return (
        f"Maximum simultaneous contexts per WebSocket connection exceeded ({limit}). "
        "Please close an existing context before opening a new one."
    )


def settings_changed_text(field: str) -> str:
    """The 1008 reason reported in pipecat-ai/pipecat#4541 (for ``voice_settings``)."""
    return (
        f"{field} field must be provided in the first message and then either be not "
        "provided or not change."
    )


def http_error_body(status: int, message: str) -> dict[str, Any]:
    """The REST API's error body, ``{"detail": {"status", "message"}}`` (as returned for a bad
    key, SillyTavern/SillyTavern#4483); the statuses other than 401/429 are the fake's."""
    name = {
        401: INVALID_API_KEY,
        403: "forbidden",
        404: "not_found",
        429: "too_many_concurrent_requests",
        503: "service_unavailable",
    }.get(status, "internal_server_error")
    return {"detail": {"status": name, "message": message}}


def flag(query: dict[str, str], name: str, default: bool) -> bool:
    value = query.get(name)
    return default if value is None else value.lower() in ("true", "1")
