"""Chooses the agent factory named by ``BRIDGE_AGENT``; agents load once per process."""

from __future__ import annotations

import logging

from bridge.settings import Settings, SettingsError
from pipeline.agents.base import AgentFactory
from pipeline.agents.echo import EchoAgentFactory
from pipeline.agents.openai.config import Endpoint, OpenAIAgentConfig
from pipeline.agents.persona import Persona, PersonaBook

log = logging.getLogger("bridge.agents")


def build_agent_factory(settings: Settings) -> AgentFactory:
    if settings.agent == "local":
        try:
            from pipeline.agents.local.agent import LocalAgentFactory
        except ImportError as exc:
            log.warning(
                "BRIDGE_AGENT=local needs the 'local' extra (pip install -e '.[local]'): %s; "
                "falling back to the echo agent",
                exc,
            )
            return EchoAgentFactory()
        from pipeline.agents.local.dialogue import load_phrases

        return LocalAgentFactory(
            phrases=load_phrases(settings.local_phrases_file or None),
            timezone=settings.timezone,
            voice=settings.local_voice,
        )
    if settings.agent == "openai-realtime":
        return realtime_factory(settings)
    if settings.agent == "openai":
        return openai_factory(settings)
    return EchoAgentFactory()


def realtime_factory(settings: Settings) -> AgentFactory:
    from pipeline.agents.realtime.agent import RealtimeAgentFactory
    from pipeline.agents.realtime.config import RealtimeConfig, realtime_url

    if not settings.openai_api_key:
        log.error("BRIDGE_AGENT=openai-realtime needs BRIDGE_OPENAI_API_KEY (or OPENAI_API_KEY)")
    config = RealtimeConfig(
        url=settings.openai_realtime_url or realtime_url(settings.openai_base_url),
        api_key=settings.openai_api_key,
        model=settings.openai_realtime_model,
        turn_detection=settings.openai_realtime_turn_detection,
        silence_ms=settings.openai_realtime_silence_ms,
        transcribe_model=settings.openai_realtime_transcribe_model,
        reconnect_deadline_s=settings.openai_realtime_reconnect_s,
    )
    return RealtimeAgentFactory(config, persona_book(settings))


def openai_config(settings: Settings) -> OpenAIAgentConfig:
    """Each stage's server and key fall back to the shared ones."""

    def endpoint(base_url: str, api_key: str) -> Endpoint:
        return Endpoint(
            base_url=base_url or settings.openai_base_url,
            api_key=api_key or settings.openai_api_key,
        )

    return OpenAIAgentConfig(
        stt=endpoint(settings.openai_stt_base_url, settings.openai_stt_api_key),
        chat=endpoint(settings.openai_chat_base_url, settings.openai_chat_api_key),
        tts=endpoint(settings.openai_tts_base_url, settings.openai_tts_api_key),
        stt_model=settings.openai_stt_model,
        chat_model=settings.openai_model,
        tts_model=settings.openai_tts_model,
        stt_language=settings.openai_stt_language,
        turn_deadline_s=settings.openai_turn_deadline_s,
        request_timeout_s=settings.openai_request_timeout_s,
        farewell=settings.farewell_message,
    )


def openai_factory(settings: Settings) -> AgentFactory:
    """The cascaded OpenAI agent; a stage on api.openai.com without a key fails start-up."""
    from pipeline.agents.openai.agent import OpenAIAgentFactory

    config = openai_config(settings)
    missing = config.missing_keys()
    if missing:
        raise SettingsError(
            "BRIDGE_AGENT=openai: no API key for the "
            + ", ".join(missing)
            + " stage(s) on api.openai.com. Set BRIDGE_OPENAI_API_KEY (or OPENAI_API_KEY), "
            "or a stage's own key (BRIDGE_OPENAI_STT_API_KEY, BRIDGE_OPENAI_CHAT_API_KEY, "
            "BRIDGE_OPENAI_TTS_API_KEY), or point the stage at another server with its "
            "BRIDGE_OPENAI_*_BASE_URL."
        )
    return OpenAIAgentFactory(config, persona_book(settings))


def persona_book(settings: Settings) -> PersonaBook:
    """The personas file over the default persona from settings; raises PersonaError early."""
    default = Persona(
        system_prompt=settings.system_prompt,
        first_message=settings.first_message,
        voice=settings.openai_voice,
    )
    return PersonaBook.load(settings.personas_file or None, default)
