"""What each endpoint accepts in its query string, checked at the handshake.

A query Deepgram (or Cloudflare) would reject is refused with HTTP 400 before the upgrade,
as the troubleshooting pages describe for a bad request ("If the handshake fails, you'll get
an HTTP 4xx or 5xx error"). The fake also refuses, with 400, what it cannot imitate (any
encoding but ``linear16`` and ``mulaw``, more than one channel), so a test never passes on
audio the fake did not understand.

Sources for the accepted values:

* Nova-3, ``/v1/listen``: the "Live Audio" AsyncAPI reference
  (https://developers.deepgram.com/reference/speech-to-text/listen-streaming) and
  ``deepgram-python-sdk`` ``src/deepgram/types/listen_v1*.py``; ``endpointing`` defaults to
  10 ms and may be ``false`` ("Configure Endpointing and Interim Results" guide).
* Flux, ``/v2/listen``: ``src/deepgram/types/listen_v2*.py`` (``eot_threshold`` 0.5-0.9,
  ``eager_eot_threshold`` 0.3-0.9, ``eot_timeout_ms``), the 2025-10-16 changelog (raw
  encodings and sample rates 8000, 16000, 24000, 44100, 48000), the "Bring Your Own Turn
  Detection" page (``eot_threshold=1.0`` turns the model's own end of turn off). Through
  Cloudflare, ``@cf/deepgram/flux`` takes ``encoding=linear16`` only
  (``cloudflare-docs`` ``src/content/workers-ai-models/flux.json``).
* Aura, ``/v1/speak``: ``src/deepgram/types/speak_v1encoding.py`` and
  ``speak_v1sample_rate.py`` (defaults ``linear16`` at 24000 Hz, the AsyncAPI reference
  https://developers.deepgram.com/reference/text-to-speech/speak-streaming); the Workers AI
  models name the voice with ``speaker`` (``aura-1.json``, ``aura-2-en.json``).
"""

from __future__ import annotations

from dataclasses import dataclass

from tests.fakes.deepgram.audio import WireEncoding

FLUX_RATES_HZ = frozenset({8000, 16000, 24000, 44100, 48000})
AURA_RATES_HZ = {"linear16": frozenset({8000, 16000, 24000, 32000, 48000}), "mulaw": {8000, 16000}}
#: Deepgram's documented default endpointing
DEFAULT_ENDPOINTING_MS = 10


class ParamError(ValueError):
    """A query the service would refuse with HTTP 400."""


def _bool(query: dict[str, str], name: str, default: bool = False) -> bool:
    value = query.get(name)
    if value is None:
        return default
    if value.lower() not in ("true", "false"):
        raise ParamError(f"{name} must be true or false, not {value!r}")
    return value.lower() == "true"


def _int(query: dict[str, str], name: str, default: int | None = None) -> int | None:
    value = query.get(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise ParamError(f"{name} must be an integer, not {value!r}") from None


def _float(query: dict[str, str], name: str, low: float, high: float) -> float | None:
    value = query.get(name)
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        raise ParamError(f"{name} must be a number, not {value!r}") from None
    if not low <= number <= high:
        raise ParamError(f"{name} must be between {low} and {high}")
    return number


def _raw_audio(query: dict[str, str], allowed: tuple[str, ...]) -> tuple[WireEncoding, int]:
    encoding = query.get("encoding")
    if encoding is None:
        raise ParamError("this fake needs raw audio: give encoding and sample_rate")
    if encoding not in allowed:
        raise ParamError(f"encoding {encoding!r} is not one of {', '.join(allowed)}")
    rate_hz = _int(query, "sample_rate")
    if rate_hz is None or rate_hz <= 0:
        raise ParamError("sample_rate is required with encoding")
    return ("mulaw" if encoding == "mulaw" else "linear16"), rate_hz


@dataclass(frozen=True, slots=True)
class NovaParams:
    model: str
    encoding: WireEncoding
    rate_hz: int
    interim_results: bool
    #: None: ``endpointing=false``
    endpointing_ms: int | None
    utterance_end_ms: int | None
    vad_events: bool

    @classmethod
    def parse(cls, query: dict[str, str]) -> NovaParams:
        encoding, rate_hz = _raw_audio(query, ("linear16", "mulaw"))
        if _int(query, "channels", 1) != 1:
            raise ParamError("this fake transcribes one channel")
        raw_endpointing = query.get("endpointing")
        endpointing_ms: int | None = DEFAULT_ENDPOINTING_MS
        if raw_endpointing is not None and raw_endpointing.lower() == "false":
            endpointing_ms = None
        elif raw_endpointing is not None and raw_endpointing.lower() != "true":
            endpointing_ms = _int(query, "endpointing")
        return cls(
            model=query.get("model", "nova-3"),
            encoding=encoding,
            rate_hz=rate_hz,
            interim_results=_bool(query, "interim_results"),
            endpointing_ms=endpointing_ms,
            utterance_end_ms=_int(query, "utterance_end_ms"),
            vad_events=_bool(query, "vad_events"),
        )


@dataclass(frozen=True, slots=True)
class FluxParams:
    model: str
    encoding: WireEncoding
    rate_hz: int
    eot_threshold: float
    #: None: no eager events
    eager_eot_threshold: float | None
    eot_timeout_ms: int

    @classmethod
    def parse(cls, query: dict[str, str], *, gateway: bool) -> FluxParams:
        model = query.get("model", "")
        if not gateway and not model.startswith("flux-general-"):
            raise ParamError("model must be a Flux model (flux-general-en)")
        allowed = ("linear16",) if gateway else ("linear16", "mulaw")
        encoding, rate_hz = _raw_audio(query, allowed)
        if rate_hz not in FLUX_RATES_HZ:
            raise ParamError(f"sample_rate {rate_hz} is not supported")
        eot = _float(query, "eot_threshold", 0.5, 1.0)
        eager = _float(query, "eager_eot_threshold", 0.3, 0.9)
        eot = 0.7 if eot is None else eot
        if eager is not None and eager > eot:
            raise ParamError("eager_eot_threshold must not exceed eot_threshold")
        timeout_ms = _int(query, "eot_timeout_ms", 5000)
        assert timeout_ms is not None
        return cls(model, encoding, rate_hz, eot, eager, timeout_ms)


@dataclass(frozen=True, slots=True)
class AuraParams:
    #: the voice: ``model`` straight to Deepgram, ``speaker`` through Workers AI
    voice: str
    encoding: WireEncoding
    rate_hz: int

    @classmethod
    def parse(cls, query: dict[str, str], *, gateway: bool) -> AuraParams:
        encoding = query.get("encoding", "linear16")
        if encoding not in AURA_RATES_HZ:
            raise ParamError(f"this fake speaks linear16 or mulaw, not {encoding!r}")
        wire: WireEncoding = "mulaw" if encoding == "mulaw" else "linear16"
        rate_hz = _int(query, "sample_rate", 24000 if wire == "linear16" else 8000)
        if rate_hz not in AURA_RATES_HZ[wire]:
            raise ParamError(f"sample_rate {rate_hz} is not supported with {encoding}")
        assert rate_hz is not None
        if gateway:  # Workers AI's defaults: aura-1.json "angus", aura-2-*.json "luna"
            model = query.get("model", "")
            voice = query.get("speaker") or ("angus" if model.endswith("aura-1") else "luna")
        else:
            voice = query.get("model", "aura-asteria-en")
        return cls(voice, wire, rate_hz)
