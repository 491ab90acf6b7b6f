"""The Starlette application: builds the bridge's state from settings and serves its routes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette

from bridge import wiring
from bridge.agents import build_agent_factory
from bridge.browser.feed import PageFeed
from bridge.call_records.service import CallRecords
from bridge.ops.drain import Drainer
from bridge.ops.logs import install_redaction
from bridge.ops.looplag import monitor_loop_lag
from bridge.ops.metrics import Metrics
from bridge.ops.tracing import tracing_from_env
from bridge.routes import routes, websocket_routes
from bridge.server.fastpath import FastWebSocketPaths
from bridge.server.handshakes import handshake_guard
from bridge.settings import Settings
from bridge.state import BridgeState
from bridge.switchboard import Switchboard
from bridge.twilio.signatures import TwilioSignatures
from bridge.xiaozhi.captions import DeviceCaptions
from pipeline.agents.base import AgentFactory
from pipeline.agents.cascade.factory import CascadeAgentFactory
from pipeline.observers import Observers, SessionObserver

log = logging.getLogger("bridge.app")

TRANSPORTS = ("twilio", "esp32", "browser", "xiaozhi")


def create_app(
    settings: Settings,
    factory: AgentFactory | None = None,
    observer: SessionObserver | None = None,
) -> FastWebSocketPaths:
    """Build the app; tests pass their own ``factory`` to inject agents and faults.

    Raises :class:`~bridge.settings.SettingsError` for settings that cannot work together
    (for example production without credentials), before anything is started.
    """
    settings.check()
    install_redaction()
    personas = wiring.persona_book(settings)
    factory = factory or build_agent_factory(settings, personas)
    observers = Observers(*([observer] if observer is not None else []))
    switchboard = Switchboard(factory, wiring.session_configs(settings), observers)
    metrics = Metrics(switchboard.counts, TRANSPORTS)
    observers.add(metrics.observer())
    observers.add(PageFeed())
    observers.add(DeviceCaptions())
    # the standard OTEL_* variables, not settings; None (no observer, no SDK loaded) when unset
    tracing = tracing_from_env(os.environ)
    if tracing is not None:
        observers.add(tracing.observer)
    if isinstance(factory, CascadeAgentFactory):
        failovers = factory.failovers
        metrics.watch_failovers(lambda: failovers.counts)
    admission = wiring.admission(settings)
    devices = wiring.device_gate(settings)
    devices.on_reject = lambda reason: metrics.rejected("esp32", reason)
    records = CallRecords(settings)
    for record_observer in records.observers:
        observers.add(record_observer)
    state = BridgeState(
        settings=settings,
        switchboard=switchboard,
        observers=observers,
        twilio=wiring.twilio_options(settings),
        esp32=wiring.esp32_options(settings),
        devices=devices,
        signatures=TwilioSignatures(settings.twilio_auth_tokens),
        admission=admission,
        metrics=metrics,
        drainer=Drainer(admission, switchboard),
        records=records,
        handshakes=handshake_guard(settings, metrics),
        warnings=wiring.security_warnings(settings, devices),
        personas=personas,
    )
    for warning in state.warnings:
        log.warning("INSECURE: %s", warning)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        records.start()
        await factory.start()
        lag = asyncio.create_task(monitor_loop_lag(metrics.loop_lag.observe), name="loop-lag")
        try:
            yield
        finally:
            lag.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await lag
            # calls that ended while shutting down are queued: write them before exiting
            await records.aclose()
            await factory.aclose()
            if tracing is not None:  # after the last call has ended and closed its spans
                await tracing.aclose()

    alias = settings.esp32_root_alias
    app = Starlette(routes=routes(alias), lifespan=lifespan)
    app.state.bridge = state
    return FastWebSocketPaths(app, websocket_routes(alias))
