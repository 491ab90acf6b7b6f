"""Chooses the agent factory named by ``BRIDGE_AGENT``; agents load once per process."""

from __future__ import annotations

from bridge.settings import Settings
from pipeline.agents.base import AgentFactory
from pipeline.agents.echo import EchoAgentFactory


def build_agent_factory(settings: Settings) -> AgentFactory:
    if settings.agent == "echo":
        return EchoAgentFactory()
    raise ValueError(f"unknown agent {settings.agent!r}")
