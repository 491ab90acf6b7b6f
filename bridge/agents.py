"""Chooses the agent factory named by ``BRIDGE_AGENT``; agents load once per process.

The LLM agents (the cascade, Realtime) also get the tools their personas declare: the HTTP
tools and MCP servers on one shelf for the process, and ``transfer_call`` on phone calls when
live calls can be updated (Twilio REST credentials and a public host).
"""

from __future__ import annotations

import json
import logging

from bridge import wiring
from bridge.settings import Settings, SettingsError
from bridge.twilio.transfer import transfers_possible
from pipeline.agents.base import AgentFactory
from pipeline.agents.echo import EchoAgentFactory
from pipeline.agents.persona import PersonaBook
from pipeline.tools.config import ToolConfigError
from pipeline.tools.offer import ToolOffer

log = logging.getLogger("bridge.agents")


def build_agent_factory(settings: Settings, personas: PersonaBook | None = None) -> AgentFactory:
    if settings.agent == "local":
        return local_factory(settings)
    personas = personas or wiring.persona_book(settings)
    if settings.agent == "openai-realtime":
        return realtime_factory(settings, personas)
    if settings.agent == "openai":
        return openai_factory(settings, personas)
    if settings.agent == "backend":
        return backend_factory(settings, personas)
    return EchoAgentFactory()


def tool_offer(settings: Settings, personas: PersonaBook) -> ToolOffer:
    """The tools of every persona, checked now: a ``${VAR}`` that is not set fails start-up."""
    from pipeline.tools.shelf import ToolShelf

    try:
        shelf = ToolShelf(personas)
    except ToolConfigError as exc:
        raise SettingsError(f"personas file: {exc}") from exc
    transfers = transfers_possible(settings)
    everyone = (personas.default, *personas.personas.values())
    if not transfers and any(p.transfer for p in everyone):
        log.warning(
            "personas list transfer destinations, but transfers need Twilio REST credentials "
            "and BRIDGE_PUBLIC_HOST: transfer_call is not offered"
        )
    return ToolOffer(None if shelf.empty else shelf, ("twilio",) if transfers else ())


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


def realtime_factory(settings: Settings, personas: PersonaBook) -> AgentFactory:
    from pipeline.agents.realtime.agent import RealtimeAgentFactory

    if not settings.openai_api_key:
        log.error("BRIDGE_AGENT=openai-realtime needs BRIDGE_OPENAI_API_KEY (or OPENAI_API_KEY)")
    tools = tool_offer(settings, personas)
    return RealtimeAgentFactory(wiring.realtime_config(settings), personas, tools)


def openai_factory(settings: Settings, personas: PersonaBook) -> AgentFactory:
    """The cascaded agent (``BRIDGE_AGENT=openai``): its speech-to-text and text-to-speech
    stages from ``BRIDGE_STT`` / ``BRIDGE_TTS`` and the personas, its chat stage any
    OpenAI-compatible server. A stage on api.openai.com without a key fails start-up."""
    from bridge.stages import cascade_factory

    return cascade_factory(settings, personas, tool_offer(settings, personas))


def backend_factory(settings: Settings, personas: PersonaBook) -> AgentFactory:
    """A Twilio-ready voice agent server behind every call (``BRIDGE_AGENT=backend``)."""
    from pipeline.agents.backend.agent import BackendAgentFactory
    from pipeline.agents.backend.config import BackendConfig

    if not settings.backend_url.startswith(("ws://", "wss://")):
        raise SettingsError("BRIDGE_AGENT=backend needs BRIDGE_BACKEND_URL (ws:// or wss://)")
    try:
        headers = json.loads(settings.backend_headers or "{}")
    except ValueError:
        headers = None
    if not isinstance(headers, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
    ):
        raise SettingsError("BRIDGE_BACKEND_HEADERS must be a JSON object of strings")
    config = BackendConfig(
        settings.backend_url, headers=headers, reconnects=settings.backend_reconnects
    )
    return BackendAgentFactory(config, personas)
