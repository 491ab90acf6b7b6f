"""Chooses the agent factory named by ``BRIDGE_AGENT``; agents load once per process."""

from __future__ import annotations

import logging

from bridge.settings import Settings
from pipeline.agents.base import AgentFactory
from pipeline.agents.echo import EchoAgentFactory

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
        return LocalAgentFactory(timezone=settings.timezone)
    return EchoAgentFactory()
