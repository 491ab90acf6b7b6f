"""Chooses the agent factory named by ``BRIDGE_AGENT``; agents load once per process."""

from __future__ import annotations

import logging

from bridge.settings import Settings
from pipeline.agents.base import AgentFactory
from pipeline.agents.echo import EchoAgentFactory
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


def persona_book(settings: Settings) -> PersonaBook:
    """The personas file over the default persona from settings; raises PersonaError early."""
    default = Persona(
        system_prompt=settings.system_prompt,
        first_message=settings.first_message,
        voice=settings.openai_voice,
    )
    return PersonaBook.load(settings.personas_file or None, default)
