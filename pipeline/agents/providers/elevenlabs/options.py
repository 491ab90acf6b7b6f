"""What the ElevenLabs speech stage is configured with, and the socket address it builds.

The multi-stream-input socket is
``wss://api.elevenlabs.io/v1/text-to-speech/<voice_id>/multi-stream-input?model_id=…&
output_format=…`` with the key in the ``xi-api-key`` header. The voice is part of the path,
so a reply in another voice needs a socket of its own.

The audio is asked for in the far end's own format where ElevenLabs has it: ``ulaw_8000`` for a
phone line, so nothing is transcoded on the way out (DESIGN.md, "Convert once"), and PCM at the
far end's rate for toys and browsers (``pcm_24000`` when that rate is not offered: the
pipeline then resamples once).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import quote, urlencode

from pipeline.agents.providers.websocket import origin
from pipeline.audio import PCM16_24K, ULAW_8K, AudioSpec

ELEVENLABS_URL = "wss://api.elevenlabs.io"
DEFAULT_MODEL = "eleven_flash_v2_5"
#: the settings an operator sets (named in start-up errors and the permanent-failure log)
URL_SETTING = "BRIDGE_ELEVENLABS_URL"
KEY_SETTING = "BRIDGE_ELEVENLABS_API_KEY"
#: the API's ``inactivity_timeout`` default and ceiling (AsyncAPI definition)
DEFAULT_INACTIVITY_TIMEOUT_S = 20.0
MAX_INACTIVITY_TIMEOUT_S = 180.0
#: the docs' advice: an empty text to a context about every 10 s keeps an idle socket open
DEFAULT_KEEPALIVE_INTERVAL_S = 10.0
#: PCM rates every plan can ask for (``pcm_44100`` and up need a Pro subscription)
PCM_RATES_HZ = (8000, 16000, 22050, 24000)
#: "WebSockets are not available for the eleven_v3 model" (ElevenLabs' WebSocket guide)
NO_WEBSOCKET_MODELS = frozenset({"eleven_v3"})


@dataclass(frozen=True, slots=True)
class ElevenLabsOptions:
    """One process's ElevenLabs speech settings (shared by every call)."""

    api_key: str = field(repr=False)
    #: the default voice; a persona's (or a turn's) voice replaces it
    voice_id: str
    model: str = DEFAULT_MODEL
    #: scheme, host and port only (a test's fake, a proxy); the path is the API's own
    base_url: str = ELEVENLABS_URL
    #: the context's ``voice_settings`` (stability, similarity_boost, speed...); None: the
    #: voice's own settings
    voice_settings: Mapping[str, float | bool] | None = None
    #: how long the socket may go without a message from us before a keep-alive is sent
    keepalive_interval_s: float = DEFAULT_KEEPALIVE_INTERVAL_S
    #: the ``inactivity_timeout`` query parameter; None: the API's default (20 s)
    inactivity_timeout_s: float | None = None

    def __post_init__(self) -> None:
        # frozen: normalise through object.__setattr__, once, at start-up
        object.__setattr__(self, "base_url", origin(self.base_url, URL_SETTING))
        if not self.api_key:
            raise ValueError(f"{KEY_SETTING} is empty")
        if not self.voice_id:
            raise ValueError("ElevenLabs needs a default voice id")
        if self.model in NO_WEBSOCKET_MODELS:
            raise ValueError(f"ElevenLabs model {self.model} has no streaming (WebSocket) API")
        timeout_s = self.inactivity_timeout_s
        if timeout_s is not None and not 0 < timeout_s <= MAX_INACTIVITY_TIMEOUT_S:
            raise ValueError(f"inactivity_timeout_s must be in (0, {MAX_INACTIVITY_TIMEOUT_S:g}]")
        limit_s = timeout_s if timeout_s is not None else DEFAULT_INACTIVITY_TIMEOUT_S
        if not 0 < self.keepalive_interval_s < limit_s:
            raise ValueError(
                f"keepalive_interval_s must be positive and under the inactivity timeout "
                f"({limit_s:g} s), or ElevenLabs closes an idle socket"
            )

    def url(self, voice_id: str, output_format: str) -> str:
        params: dict[str, str] = {"model_id": self.model, "output_format": output_format}
        if self.inactivity_timeout_s is not None:
            params["inactivity_timeout"] = f"{self.inactivity_timeout_s:g}"
        return f"{self.where(voice_id)}?{urlencode(params)}"

    def where(self, voice_id: str) -> str:
        """For logs: the address without the query (the key is never in it anyway)."""
        return f"{self.base_url}/v1/text-to-speech/{quote(voice_id, safe='')}/multi-stream-input"

    def headers(self) -> dict[str, str]:
        return {"xi-api-key": self.api_key}


def output_format(audio_out: AudioSpec) -> tuple[str, AudioSpec]:
    """The ``output_format`` to ask for, and the audio it gives, for a far end playing
    ``audio_out``."""
    if audio_out == ULAW_8K:
        return "ulaw_8000", ULAW_8K
    if audio_out.encoding == "pcm16" and audio_out.rate_hz in PCM_RATES_HZ:
        return f"pcm_{audio_out.rate_hz}", audio_out
    return f"pcm_{PCM16_24K.rate_hz}", PCM16_24K
