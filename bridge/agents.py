"""Chooses the agent factory named by ``BRIDGE_AGENT``; agents load once per process."""

from __future__ import annotations

import logging

from bridge import wiring
from bridge.settings import Settings
from pipeline.agents.base import AgentFactory
from pipeline.agents.echo import EchoAgentFactory

log = logging.getLogger("bridge.agents")


def build_agent_factory(settings: Settings) -> AgentFactory:
    if settings.agent == "local":
        return local_factory(settings)
    if settings.agent == "openai-realtime":
        return realtime_factory(settings)
    if settings.agent == "openai":
        return openai_factory(settings)
    return EchoAgentFactory()


def local_factory(settings: Settings) -> AgentFactory:
    """The offline agent, or echo when the ``local`` extra is not installed."""
    try:
        from pipeline.agents.local.agent import LocalAgentFactory
        from pipeline.agents.local.dialogue import load_phrases
    except ImportError as exc:
        log.warning(
            "BRIDGE_AGENT=local needs the 'local' extra (pip install -e '.[local]'): %s; "
            "falling back to the echo agent",
            exc,
        )
        return EchoAgentFactory()
    return LocalAgentFactory(
        phrases=load_phrases(settings.local_phrases_file or None),
        timezone=settings.timezone,
        voice=settings.local_voice,
    )


def realtime_factory(settings: Settings) -> AgentFactory:
    from pipeline.agents.realtime.agent import RealtimeAgentFactory

    if not settings.openai_api_key:
        log.error("BRIDGE_AGENT=openai-realtime needs BRIDGE_OPENAI_API_KEY (or OPENAI_API_KEY)")
    return RealtimeAgentFactory(wiring.realtime_config(settings), wiring.persona_book(settings))


def openai_factory(settings: Settings) -> AgentFactory:
    """The cascaded agent (``BRIDGE_AGENT=openai``): its speech-to-text and text-to-speech
    stages from ``BRIDGE_STT`` / ``BRIDGE_TTS`` and the personas, its chat stage any
    OpenAI-compatible server. A stage on api.openai.com without a key fails start-up."""
    from bridge.stages import cascade_factory

    return cascade_factory(settings, wiring.persona_book(settings))
