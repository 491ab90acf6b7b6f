"""Which providers serve the cascade's stages: built from settings, credentials checked.

``BRIDGE_STT`` and ``BRIDGE_TTS`` name the default speech-to-text and text-to-speech
providers; a persona may name others (``stt``, ``tts``). Every provider named anywhere is
built here at start-up, so a missing key stops start-up with the setting to set, instead of
failing the first call that needs it. The chat stage is always an OpenAI-compatible server.
A new provider is a builder in :data:`STT` or :data:`TTS` (and its choice in the settings).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from bridge import wiring
from bridge.settings import Settings, SettingsError
from pipeline.agents.cascade.factory import CascadeAgentFactory
from pipeline.agents.cascade.stages import Chat, SpeechToText, StageFactory, TextToSpeech
from pipeline.agents.persona import PersonaBook
from pipeline.agents.providers.openai.chat import OpenAIChatFactory
from pipeline.agents.providers.openai.clients import OpenAIClients
from pipeline.agents.providers.openai.config import Endpoint
from pipeline.agents.providers.openai.stt import OpenAITranscriptionFactory
from pipeline.agents.providers.openai.tts import OpenAISpeechFactory

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
    problems: list[str] = field(default_factory=list)

    def openai_endpoint(self, stage: str) -> Endpoint:
        endpoint = self.endpoints[stage]
        if endpoint.lacks_key:
            self.problems.append(stage)
        return endpoint


def _openai_stt(b: Building) -> StageFactory[SpeechToText]:
    endpoint = b.openai_endpoint("transcription")
    return OpenAITranscriptionFactory(b.openai, wiring.openai_transcription(b.settings, endpoint))


def _openai_tts(b: Building) -> StageFactory[TextToSpeech]:
    endpoint = b.openai_endpoint("speech")
    return OpenAISpeechFactory(b.openai, wiring.openai_speech(b.settings, endpoint))


def _openai_chat(b: Building) -> StageFactory[Chat]:
    return OpenAIChatFactory(b.openai, wiring.openai_chat(b.settings, b.openai_endpoint("chat")))


STT: dict[str, Callable[[Building], StageFactory[SpeechToText]]] = {"openai": _openai_stt}
TTS: dict[str, Callable[[Building], StageFactory[TextToSpeech]]] = {"openai": _openai_tts}


def cascade_factory(settings: Settings, personas: PersonaBook) -> CascadeAgentFactory:
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
    stt = {name: STT[name](building) for name in sorted(stt_names)}
    chat = _openai_chat(building)
    tts = {name: TTS[name](building) for name in sorted(tts_names)}
    if building.problems:
        raise SettingsError(
            f"BRIDGE_AGENT={settings.agent}: no API key for the "
            + ", ".join(building.problems)
            + " stage(s) on api.openai.com. "
            + OPENAI_KEY_HELP
        )
    return CascadeAgentFactory(
        name=settings.agent,
        config=wiring.cascade_config(settings),
        stt=stt,
        chat=chat,
        tts=tts,
        personas=personas,
        default_stt=settings.stt,
        default_tts=settings.tts,
    )
