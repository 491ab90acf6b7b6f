"""Which providers serve the cascade's stages: built from settings, credentials checked.

``BRIDGE_STT`` and ``BRIDGE_TTS`` name the default speech-to-text and text-to-speech
providers; a persona may name others (``stt``, ``tts``); ``BRIDGE_STT_FALLBACK``,
``BRIDGE_TTS_FALLBACK`` and ``BRIDGE_CHAT_FALLBACK_BASE_URL`` name each stage's backup.
Every provider named anywhere is built here at start-up, so a missing key stops start-up
with the settings to set, instead of failing the first call that needs it. The chat stage is
always an OpenAI-compatible server. A new provider is a builder in :data:`STT` or
:data:`TTS` (and its name in ``bridge/settings/speech.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from bridge import wiring
from bridge.settings import Settings, SettingsError
from pipeline.agents.cascade.factory import CascadeAgentFactory
from pipeline.agents.cascade.failover import (
    FailoverFactory,
    Failovers,
    chat_pair,
    speech_pair,
    transcription_pair,
)
from pipeline.agents.cascade.stages import Chat, SpeechToText, Stage, StageFactory, TextToSpeech
from pipeline.agents.persona import PersonaBook
from pipeline.agents.providers.deepgram.access import CLOUDFLARE_URL, DEEPGRAM_URL, DeepgramAccess
from pipeline.agents.providers.deepgram.listen import DeepgramListenFactory
from pipeline.agents.providers.deepgram.listen_options import ListenModel, ListenOptions
from pipeline.agents.providers.deepgram.speak import DeepgramSpeakFactory, SpeakOptions
from pipeline.agents.providers.elevenlabs.options import ElevenLabsOptions
from pipeline.agents.providers.elevenlabs.stage import ElevenLabsSpeechFactory
from pipeline.agents.providers.openai.chat import ChatOptions, OpenAIChatFactory
from pipeline.agents.providers.openai.clients import OpenAIClients
from pipeline.agents.providers.openai.config import Endpoint
from pipeline.agents.providers.openai.stt import OpenAITranscriptionFactory
from pipeline.agents.providers.openai.tts import OpenAISpeechFactory
from pipeline.agents.providers.websocket import origin
from pipeline.tools.offer import ToolOffer

S = TypeVar("S", bound=Stage)

OPENAI_KEY_HELP = (
    "Set BRIDGE_OPENAI_API_KEY (or OPENAI_API_KEY), or a stage's own key "
    "(BRIDGE_OPENAI_STT_API_KEY, BRIDGE_OPENAI_CHAT_API_KEY, BRIDGE_OPENAI_TTS_API_KEY), or "
    "point the stage at another server with its BRIDGE_OPENAI_*_BASE_URL."
)


@dataclass
class Building:
    """What the builders share while the factories are made: clients, and the problems."""

    settings: Settings
    openai: OpenAIClients
    endpoints: dict[str, Endpoint]
    #: OpenAI stages on api.openai.com without a key
    openai_problems: list[str] = field(default_factory=list)
    #: every other missing or wrong setting, one line each
    problems: list[str] = field(default_factory=list)

    def openai_endpoint(self, stage: str) -> Endpoint:
        endpoint = self.endpoints[stage]
        if endpoint.lacks_key:
            self.openai_problems.append(stage)
        else:
            # made now, at start-up: making one imports what its first request needs, which
            # would otherwise stall the first call (tens of ms on its event loop)
            self.openai.client(endpoint)
        return endpoint

    def require(self, what: str, *names_values: tuple[str, str]) -> None:
        missing = [name for name, value in names_values if not value]
        if missing:
            self.problems.append(f"{what} needs {', '.join(missing)}")

    def base_url(self, url: str, setting: str, default: str) -> str:
        try:
            return origin(url, setting)
        except ValueError as exc:
            self.problems.append(str(exc))
            return default

    def deepgram(self, via: str) -> DeepgramAccess:
        s = self.settings
        if via == "deepgram":
            self.require("deepgram", ("BRIDGE_DEEPGRAM_API_KEY", s.deepgram_api_key))
            url = self.base_url(s.deepgram_url, "BRIDGE_DEEPGRAM_URL", DEEPGRAM_URL)
            return DeepgramAccess("deepgram", url, s.deepgram_api_key)
        self.require(
            "cloudflare",
            ("BRIDGE_CLOUDFLARE_ACCOUNT_ID", s.cloudflare_account_id),
            ("BRIDGE_CLOUDFLARE_GATEWAY_ID", s.cloudflare_gateway_id),
            ("BRIDGE_CLOUDFLARE_API_TOKEN", s.cloudflare_api_token),
        )
        url = self.base_url(s.cloudflare_url, "BRIDGE_CLOUDFLARE_URL", CLOUDFLARE_URL)
        return DeepgramAccess(
            "cloudflare",
            url,
            s.cloudflare_api_token,
            s.cloudflare_account_id,
            s.cloudflare_gateway_id,
        )


# -- speech to text ------------------------------------------------------------------------


def _openai_stt(b: Building) -> StageFactory[SpeechToText]:
    endpoint = b.openai_endpoint("transcription")
    return OpenAITranscriptionFactory(b.openai, wiring.openai_transcription(b.settings, endpoint))


def _deepgram_stt(via: str) -> Callable[[Building], StageFactory[SpeechToText]]:
    def build(b: Building) -> StageFactory[SpeechToText]:
        s = b.settings
        model: ListenModel = "flux" if s.deepgram_stt_model == "flux" else "nova-3"
        options = ListenOptions(b.deepgram(via), model=model, language=s.deepgram_stt_language)
        return DeepgramListenFactory(options)

    return build


def _local_stt(b: Building) -> StageFactory[SpeechToText]:
    from pipeline.agents.providers.local.stt import LocalTranscriptionFactory

    return LocalTranscriptionFactory()


# -- text to speech ------------------------------------------------------------------------


def _openai_tts(b: Building) -> StageFactory[TextToSpeech]:
    endpoint = b.openai_endpoint("speech")
    return OpenAISpeechFactory(b.openai, wiring.openai_speech(b.settings, endpoint))


def _deepgram_tts(via: str) -> Callable[[Building], StageFactory[TextToSpeech]]:
    def build(b: Building) -> StageFactory[TextToSpeech]:
        return DeepgramSpeakFactory(
            SpeakOptions(b.deepgram(via), voice=b.settings.deepgram_tts_voice)
        )

    return build


def _elevenlabs_tts(b: Building) -> StageFactory[TextToSpeech]:
    s = b.settings
    b.require(
        "elevenlabs",
        ("BRIDGE_ELEVENLABS_API_KEY", s.elevenlabs_api_key),
        ("BRIDGE_ELEVENLABS_VOICE_ID", s.elevenlabs_voice_id),
    )
    url = b.base_url(s.elevenlabs_url, "BRIDGE_ELEVENLABS_URL", "wss://api.elevenlabs.io")
    options = ElevenLabsOptions(
        api_key=s.elevenlabs_api_key or "missing",
        voice_id=s.elevenlabs_voice_id or "missing",
        model=s.elevenlabs_model,
        base_url=url,
    )
    return ElevenLabsSpeechFactory(options)


def _local_tts(b: Building) -> StageFactory[TextToSpeech]:
    from pipeline.agents.providers.local.tts import LocalSpeechFactory

    return LocalSpeechFactory(b.settings.local_voice)


STT: dict[str, Callable[[Building], StageFactory[SpeechToText]]] = {
    "openai": _openai_stt,
    "deepgram": _deepgram_stt("deepgram"),
    "cloudflare": _deepgram_stt("cloudflare"),
    "local": _local_stt,
}
TTS: dict[str, Callable[[Building], StageFactory[TextToSpeech]]] = {
    "openai": _openai_tts,
    "deepgram": _deepgram_tts("deepgram"),
    "cloudflare": _deepgram_tts("cloudflare"),
    "elevenlabs": _elevenlabs_tts,
    "local": _local_tts,
}


# -- chat ----------------------------------------------------------------------------------


def _chat(b: Building, failovers: Failovers) -> StageFactory[Chat]:
    s = b.settings
    primary = OpenAIChatFactory(b.openai, wiring.openai_chat(s, b.openai_endpoint("chat")))
    if not s.chat_fallback_base_url:
        return primary
    endpoint = Endpoint(s.chat_fallback_base_url, s.chat_fallback_api_key)
    if endpoint.lacks_key:
        b.problems.append("BRIDGE_CHAT_FALLBACK_BASE_URL on api.openai.com needs its API key")
    options = ChatOptions(endpoint, model=s.chat_fallback_model or s.openai_model)
    backup = OpenAIChatFactory(b.openai, options)
    backup.provider = "chat-fallback"
    return FailoverFactory(primary, backup, failovers, chat_pair)


def _with_backup(
    factories: dict[str, StageFactory[S]],
    backup_name: str,
    builders: dict[str, Callable[[Building], StageFactory[S]]],
    building: Building,
    wrap: Callable[[S, S, Failovers, str], S],
    failovers: Failovers,
) -> dict[str, StageFactory[S]]:
    """Every provider in ``factories`` but the backup itself gets the backup."""
    if not backup_name:
        return factories
    backup = factories.get(backup_name) or builders[backup_name](building)
    return {
        name: factory if name == backup_name else FailoverFactory(factory, backup, failovers, wrap)
        for name, factory in factories.items()
    }


def cascade_factory(
    settings: Settings, personas: PersonaBook, tools: ToolOffer | None = None
) -> CascadeAgentFactory:
    """The cascade with every provider the settings and personas name; raises
    :class:`SettingsError` naming what is missing."""
    everyone = (personas.default, *personas.personas.values())
    stt_names = {settings.stt, *(p.stt for p in everyone if p.stt)}
    tts_names = {settings.tts, *(p.tts for p in everyone if p.tts)}
    unknown = sorted((stt_names - STT.keys()) | (tts_names - TTS.keys()))
    if unknown:
        raise SettingsError(f"unknown speech provider(s): {', '.join(unknown)}")
    building = Building(
        settings,
        OpenAIClients(settings.openai_request_timeout_s),
        wiring.openai_endpoints(settings),
    )
    failovers = Failovers()
    stt = {name: STT[name](building) for name in sorted(stt_names)}
    chat = _chat(building, failovers)
    tts = {name: TTS[name](building) for name in sorted(tts_names)}
    stt = _with_backup(stt, settings.stt_fallback, STT, building, transcription_pair, failovers)
    tts = _with_backup(tts, settings.tts_fallback, TTS, building, speech_pair, failovers)
    problems = list(dict.fromkeys(building.problems))  # a setting two stages share: once
    if building.openai_problems:
        problems.append(
            f"BRIDGE_AGENT={settings.agent}: no API key for the "
            + ", ".join(building.openai_problems)
            + " stage(s) on api.openai.com. "
            + OPENAI_KEY_HELP
        )
    if problems:
        raise SettingsError("\n".join(problems))
    return CascadeAgentFactory(
        name=settings.agent,
        config=wiring.cascade_config(settings),
        stt=stt,
        chat=chat,
        tts=tts,
        personas=personas,
        default_stt=settings.stt,
        default_tts=settings.tts,
        failovers=failovers,
        tools=tools,
    )
