"""The Starlette application: wires settings, the agent factory and the transports together."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from starlette.applications import Starlette

from bridge import __version__
from bridge.agents import build_agent_factory
from bridge.fastpath import FastWebSocketPaths
from bridge.routes import routes, websocket_routes
from bridge.settings import Settings
from bridge.switchboard import Switchboard
from pipeline.agents.base import AgentFactory
from pipeline.endpointing import EndpointerConfig
from pipeline.session import SessionConfig, SessionObserver
from transports.twilio.adapter import TwilioOptions


@dataclass
class BridgeState:
    """Everything a request handler may need, hung on ``app.state.bridge``."""

    settings: Settings
    switchboard: Switchboard
    twilio: TwilioOptions
    started_at: float = field(default_factory=time.monotonic)
    version: str = __version__


def session_configs(settings: Settings) -> dict[str, SessionConfig]:
    phone = EndpointerConfig(
        silence_ms=settings.vad_silence_ms,
        speech_start_ms=settings.vad_start_ms,
        vad_mode=settings.vad_mode,
        max_turn_ms=settings.max_turn_ms,
    )
    return {"twilio": SessionConfig(endpointer=phone)}


def create_app(
    settings: Settings,
    factory: AgentFactory | None = None,
    observer: SessionObserver | None = None,
) -> FastWebSocketPaths:
    """Build the app; tests pass their own ``factory`` to inject agents and faults."""
    factory = factory or build_agent_factory(settings)
    state = BridgeState(
        settings=settings,
        switchboard=Switchboard(factory, session_configs(settings), observer),
        twilio=TwilioOptions(
            chunk_ms=settings.twilio_chunk_ms,
            lead_ms=settings.twilio_lead_ms,
            start_timeout_s=settings.start_timeout_s,
        ),
    )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await factory.aclose()

    app = Starlette(routes=routes(), lifespan=lifespan)
    app.state.bridge = state
    return FastWebSocketPaths(app, websocket_routes())
