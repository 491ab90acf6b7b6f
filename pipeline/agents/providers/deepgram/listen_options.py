"""What a Deepgram recognition stream is asked for: the model, its turn-taking settings, the
audio format a call sends it, and how hard the stage tries to keep the stream up.

The audio format is chosen per call so that nothing is transcoded when the provider can take
the wire's own audio: a phone line's μ-law 8 kHz goes to Nova-3 (directly or through
Cloudflare) and to Flux at Deepgram as it is. Cloudflare's Flux takes only ``linear16``, so
there the call's μ-law is decoded to PCM16 at the same 8 kHz (upsampling adds nothing a
recogniser can use). A toy's PCM16 16 kHz goes everywhere as it is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlencode

from pipeline.agents.providers.deepgram.access import DeepgramAccess
from pipeline.agents.retry import RetryPolicy
from pipeline.audio import AudioSpec

ListenModel = Literal["nova-3", "flux"]
#: Deepgram's own name of each model (Workers AI names them ``@cf/deepgram/...``)
DEEPGRAM_MODELS: dict[ListenModel, str] = {"nova-3": "nova-3", "flux": "flux-general-en"}
#: raw sample rates Flux accepts (Deepgram's changelog of 2025-10-16)
FLUX_RATES_HZ = frozenset({8000, 16000, 24000, 44100, 48000})
#: what a call sends when its wire rate is one Flux does not take
FLUX_FALLBACK_RATE_HZ = 16000


@dataclass(frozen=True, slots=True)
class ListenOptions:
    """One process's Deepgram recognition settings (every call's stream uses them)."""

    access: DeepgramAccess
    model: ListenModel = "nova-3"
    #: Nova-3's language (Flux's model is English only)
    language: str = "en"
    #: Nova-3: silence after speech that makes a final result ``speech_final`` (a turn end);
    #: None: endpointing off, turns end by ``UtteranceEnd`` alone
    endpointing_ms: int | None = 300
    #: Nova-3: a gap after the last word that ends a turn when endpointing did not (noise
    #: keeps endpointing from firing); Deepgram's minimum is 1000
    utterance_end_ms: int = 1000
    #: Nova-3: punctuation and formatting, so the chat reads sentences
    smart_format: bool = True
    #: Flux: end-of-turn confidence that ends a turn (0.5-0.9)
    eot_threshold: float = 0.7
    #: Flux: confidence at which ``EagerEndOfTurn`` lets a reply start early (None: off)
    eager_eot_threshold: float | None = 0.5
    #: Flux: a turn ends after this much silence whatever the confidence
    eot_timeout_ms: int = 5000
    #: words the recogniser should expect (names, products)
    keyterms: tuple[str, ...] = ()
    #: no audio sent for this long: Nova-3 gets a ``KeepAlive`` (Deepgram closes a socket
    #: that hears nothing for 10 s); Flux, which has no such message, gets silence
    keepalive_s: float = 3.0
    #: Flux's keepalive: this much silence each time
    keepalive_silence_ms: int = 100
    #: a handshake that takes longer has failed
    connect_timeout_s: float = 5.0
    #: audio held while the stream is down (the oldest is dropped beyond it)
    hold_s: float = 30.0
    #: between turns, audio older than this (before the last sent) is not sent again after
    #: a drop: the provider answers well within it, so nothing said there went unheard
    idle_replay_s: float = 2.0
    #: failed connections in a row, retried with ``reconnect_policy``'s backoff, before the
    #: stream is reported lost and the call's endpointer takes over
    reconnect_attempts: int = 3
    reconnect_policy: RetryPolicy = field(default_factory=RetryPolicy)
    #: once lost: how often another connection is tried
    slow_retry_s: float = 7.5
    #: a socket that lived this long (or answered anything) was healthy: its drop starts
    #: the count of failed attempts afresh
    healthy_after_s: float = 5.0
    #: at the end of the call: how long ``CloseStream`` may take to be answered
    close_wait_s: float = 1.0

    def __post_init__(self) -> None:
        eager = self.eager_eot_threshold
        if eager is not None and eager > self.eot_threshold:
            raise ValueError("eager_eot_threshold must not exceed eot_threshold")
        if self.reconnect_attempts < 0 or self.keepalive_s <= 0 or self.hold_s <= 0:
            raise ValueError("reconnect_attempts, keepalive_s and hold_s must be positive")


def listen_spec(options: ListenOptions, wire: AudioSpec) -> AudioSpec:
    """The audio a call's stream takes, given what its wire carries (``CallInfo.audio_in``):
    the wire's own when the provider accepts it, else PCM16 at the wire's rate."""
    gateway_flux = options.model == "flux" and options.access.via == "cloudflare"
    if wire.encoding == "ulaw" and not gateway_flux:
        return wire
    rate_hz = wire.rate_hz
    if options.model == "flux" and rate_hz not in FLUX_RATES_HZ:
        rate_hz = FLUX_FALLBACK_RATE_HZ
    return AudioSpec("pcm16", rate_hz)


def encoding_name(spec: AudioSpec) -> str:
    """Deepgram's name for an encoding."""
    return "mulaw" if spec.encoding == "ulaw" else "linear16"


def query(options: ListenOptions, spec: AudioSpec) -> dict[str, str | int | float | bool]:
    """The stream's query parameters, but the model and the key terms."""
    audio: dict[str, str | int | float | bool] = {
        "encoding": encoding_name(spec),
        "sample_rate": spec.rate_hz,
    }
    if options.model == "flux":
        flux = {**audio, "eot_threshold": options.eot_threshold}
        if options.eager_eot_threshold is not None:
            flux["eager_eot_threshold"] = options.eager_eot_threshold
        flux["eot_timeout_ms"] = options.eot_timeout_ms
        return flux
    return {
        **audio,
        "channels": 1,
        "language": options.language,
        "interim_results": True,
        "endpointing": "false" if options.endpointing_ms is None else options.endpointing_ms,
        "utterance_end_ms": options.utterance_end_ms,
        "vad_events": True,
        "smart_format": options.smart_format,
    }


def stream_url(options: ListenOptions, spec: AudioSpec) -> str:
    """The socket's address; ``keyterm`` is repeated once per term, as Deepgram wants."""
    url = options.access.url(options.model, DEEPGRAM_MODELS[options.model], query(options, spec))
    if options.keyterms:
        url += "&" + urlencode([("keyterm", term) for term in options.keyterms])
    return url
