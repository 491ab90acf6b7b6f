"""What an Aura socket is asked for: the voice, named as each route names it, and the audio.

A voice is chosen when the socket opens (it is in the query), and so is the audio format, so
both are decided here, once per call:

* **Format.** A phone plays μ-law at 8 kHz; Aura can speak exactly that
  (``encoding=mulaw&sample_rate=8000``), so the call's audio is never decoded, resampled or
  re-encoded on its way out. A toy plays PCM16 (24 kHz): Aura speaks ``linear16`` at that
  rate. Where the far end's format is not one Aura offers, linear16 at
  :data:`DEFAULT_LINEAR16_RATE_HZ` is asked for and the call's session converts it.
  Cloudflare's Workers AI pages do not say whether ``@cf/deepgram/aura-2-en`` speaks μ-law
  over the socket, so ``encoding="linear16"`` is there to force the fallback.
* **Voice.** Deepgram names a voice by its model (``aura-2-thalia-en``); Workers AI has one
  model, ``@cf/deepgram/aura-2-en``, and names the voice with ``speaker`` (``thalia``).
  Either spelling is accepted for either route.
"""

from __future__ import annotations

import re
from typing import Literal

from pipeline.agents.providers.deepgram.access import DeepgramAccess
from pipeline.audio import AudioSpec

#: ``auto``: μ-law for a μ-law far end, linear16 at the far end's rate otherwise
AuraEncoding = Literal["auto", "mulaw", "linear16"]
#: the rates Aura speaks each raw encoding at (``deepgram-python-sdk``
#: ``speak_v1sample_rate.py``; μ-law is G.711's 8 kHz, or 16 kHz)
LINEAR16_RATES_HZ = frozenset({8000, 16000, 24000, 32000, 48000})
MULAW_RATES_HZ = frozenset({8000, 16000})
#: Aura's own default, and what a toy plays
DEFAULT_LINEAR16_RATE_HZ = 24000

#: ``aura-2-thalia-en``, ``aura-asteria-en``: the speaker's name is the middle part
_DEEPGRAM_VOICE = re.compile(r"aura-(?:\d+-)?(?P<speaker>[a-z]+)-(?P<language>[a-z]{2})")


def output_spec(encoding: AuraEncoding, far_end: AudioSpec, linear16_rate_hz: int) -> AudioSpec:
    """The audio a call's Aura socket should produce for a far end that plays ``far_end``."""
    if encoding == "mulaw" or (encoding == "auto" and far_end.encoding == "ulaw"):
        usable = far_end.encoding == "ulaw" and far_end.rate_hz in MULAW_RATES_HZ
        return AudioSpec("ulaw", far_end.rate_hz if usable else 8000)
    if encoding == "auto" and far_end.rate_hz in LINEAR16_RATES_HZ:
        return AudioSpec("pcm16", far_end.rate_hz)
    return AudioSpec("pcm16", linear16_rate_hz)


def audio_query(spec: AudioSpec) -> dict[str, str | int]:
    """The query parameters that ask Aura for ``spec``."""
    return {
        "encoding": "mulaw" if spec.encoding == "ulaw" else "linear16",
        "sample_rate": spec.rate_hz,
    }


def deepgram_model(voice: str) -> str:
    """Deepgram's model name for a voice: ``thalia`` becomes ``aura-2-thalia-en``."""
    return voice if voice.startswith("aura") else f"aura-2-{voice}-en"


def workers_ai_speaker(voice: str) -> str:
    """Workers AI's ``speaker`` for a voice: ``aura-2-thalia-en`` becomes ``thalia``."""
    match = _DEEPGRAM_VOICE.fullmatch(voice)
    return match["speaker"] if match else voice


def speak_url(access: DeepgramAccess, voice: str, spec: AudioSpec) -> str:
    """The socket's address for ``voice`` speaking ``spec``, on the access's route."""
    query: dict[str, str | int] = audio_query(spec)
    if access.via == "cloudflare":
        query = {"speaker": workers_ai_speaker(voice), **query}
    return access.url("aura", deepgram_model(voice), query)
