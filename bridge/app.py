"""The Starlette application: wires settings, the agent factory and the transports together."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette

from bridge import __version__
from bridge.agents import build_agent_factory
from bridge.call_records.service import CallRecords
from bridge.ops.admission import Admission, ClientAddress, TokenBuckets
from bridge.ops.drain import Drainer
from bridge.ops.logs import install_redaction
from bridge.ops.looplag import monitor_loop_lag
from bridge.ops.metrics import Metrics
from bridge.routes import routes, websocket_routes
from bridge.server.fastpath import FastWebSocketPaths
from bridge.settings import Settings
from bridge.switchboard import Switchboard
from bridge.toys.credentials import DeviceAuthenticator, DeviceSettings
from bridge.toys.failure_limits import Backoff, FailureLimiter
from bridge.toys.gate import DeviceGate
from bridge.twilio.rest import TwilioRest
from bridge.twilio.signatures import TwilioSignatures
from pipeline.agents.base import AgentFactory
from pipeline.endpointing import EndpointerConfig
from pipeline.session import Observers, SessionConfig, SessionObserver
from transports.esp32.adapter import Esp32Options
from transports.twilio.adapter import CallCompleter, TwilioOptions
from transports.twilio.binding import StreamTokens

log = logging.getLogger("bridge.app")

TRANSPORTS = ("twilio", "esp32")


@dataclass
class BridgeState:
    """Everything a request handler may need, hung on ``app.state.bridge``."""

    settings: Settings
    switchboard: Switchboard
    #: every session hook fans out through here; metrics and call records add themselves
    observers: Observers
    twilio: TwilioOptions
    esp32: Esp32Options
    devices: DeviceGate
    #: X-Twilio-Signature checks (disabled without TWILIO_AUTH_TOKEN)
    signatures: TwilioSignatures
    admission: Admission
    metrics: Metrics
    drainer: Drainer
    #: what is insecure about this configuration; logged at start-up and shown by /healthz
    warnings: list[str] = field(default_factory=list)
    #: call records and recordings (bridge/records); flushed at shutdown
    records: CallRecords | None = None
    started_at: float = field(default_factory=time.monotonic)
    version: str = __version__


def session_configs(settings: Settings) -> dict[str, SessionConfig]:
    phone = EndpointerConfig(
        silence_ms=settings.vad_silence_ms,
        speech_start_ms=settings.vad_start_ms,
        vad_mode=settings.vad_mode,
        max_turn_ms=settings.max_turn_ms,
        tentative_ms=settings.early_transcription_ms,
    )
    toy = EndpointerConfig(
        silence_ms=settings.esp32_silence_ms,
        speech_start_ms=settings.vad_start_ms,
        vad_mode=settings.vad_mode,
        max_turn_ms=settings.max_turn_ms,
        tentative_ms=settings.early_transcription_ms,
    )
    return {
        "twilio": SessionConfig(
            endpointer=phone,
            idle_timeout_s=settings.call_idle_timeout_s,
            max_duration_s=settings.max_call_s,
        ),
        "esp32": SessionConfig(
            endpointer=toy,
            idle_timeout_s=settings.esp32_idle_timeout_s,
            max_duration_s=settings.esp32_max_session_s,
            spoken_apology=False,
        ),
    }


def device_gate(settings: Settings) -> DeviceGate:
    authenticator = DeviceAuthenticator(
        jwt_secret=settings.esp32_jwt_secret or None,
        audience=settings.esp32_jwt_audience or None,
        devices_file=settings.esp32_devices_file or None,
        allow_insecure_dev=not settings.production,
        require_mac=settings.esp32_require_mac,
        default_settings=DeviceSettings(settings.esp32_volume, settings.esp32_pitch_factor),
    )
    return DeviceGate(authenticator, FailureLimiter(), Backoff())


def security_warnings(settings: Settings, devices: DeviceGate) -> list[str]:
    """What an operator must know before exposing this configuration to the internet."""
    found = []
    if not settings.twilio_auth_token:
        found.append(
            "TWILIO_AUTH_TOKEN is not set: Twilio requests (/twiml, /stream) are NOT "
            "authenticated; anyone can reach the agent"
        )
    if devices.authenticator.insecure_dev:
        found.append(
            "no toy credentials: toys are accepted WITHOUT authentication from private "
            "and loopback addresses"
        )
    return found


def twilio_options(settings: Settings) -> TwilioOptions:
    complete_call: CallCompleter | None = None
    if settings.twilio_after_stream != "end":
        complete_call = TwilioRest.from_settings(settings).complete_call
    return TwilioOptions(
        chunk_ms=settings.twilio_chunk_ms,
        lead_ms=settings.twilio_lead_ms,
        start_timeout_s=settings.start_timeout_s,
        stream_tokens=(
            StreamTokens.from_auth_tokens(
                settings.twilio_auth_tokens, settings.twilio_stream_token_ttl_s
            )
            if settings.twilio_auth_token
            else None
        ),
        complete_call=complete_call,
    )


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """How uvicorn must serve this app (the CLI and the test server share it)."""
    return {
        "ws": settings.uvicorn_ws,
        "ws_max_size": settings.max_message_bytes,
        "ws_ping_interval": settings.ws_ping_interval_s,
        "ws_ping_timeout": settings.ws_ping_timeout_s,
        "ws_per_message_deflate": False,
        "log_config": None,
        "access_log": False,
        "lifespan": "on",
        # The client address is ours to decide (bridge/admission.py, BRIDGE_TRUST_FORWARDED);
        # uvicorn would otherwise believe X-Forwarded-For from any loopback peer.
        "proxy_headers": False,
    }


def admission(settings: Settings) -> Admission:
    return Admission(
        limits={"twilio": settings.max_twilio_calls, "esp32": settings.max_toy_sessions},
        max_total=settings.max_calls,
        rate=TokenBuckets(settings.rate_limit_per_s, settings.rate_limit_burst),
        client_address=ClientAddress(settings.trust_forwarded),
    )


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
    factory = factory or build_agent_factory(settings)
    observers = Observers(*([observer] if observer is not None else []))
    switchboard = Switchboard(factory, session_configs(settings), observers)
    metrics = Metrics(switchboard.counts, TRANSPORTS)
    observers.add(metrics.observer())
    gate = admission(settings)
    devices = device_gate(settings)
    devices.on_reject = lambda reason: metrics.rejected("esp32", reason)
    records = CallRecords(settings)
    for record_observer in records.observers:
        observers.add(record_observer)
    state = BridgeState(
        settings=settings,
        switchboard=switchboard,
        observers=observers,
        twilio=twilio_options(settings),
        esp32=Esp32Options(
            frame_ms=settings.esp32_frame_ms,
            lead_ms=settings.esp32_lead_ms,
            upstream_rate_hz=settings.esp32_upstream_rate_hz,
            greeting_timeout_s=settings.esp32_commit_timeout_s,
            commit_timeout_s=settings.esp32_commit_timeout_s,
            packet_timeout_s=settings.esp32_packet_timeout_s,
            opus_complexity=settings.esp32_opus_complexity,
        ),
        devices=devices,
        signatures=TwilioSignatures(settings.twilio_auth_tokens),
        warnings=security_warnings(settings, devices),
        records=records,
        admission=gate,
        metrics=metrics,
        drainer=Drainer(gate, switchboard),
    )
    for warning in state.warnings:
        log.warning("INSECURE: %s", warning)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        records.start()
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

    alias = settings.esp32_root_alias
    app = Starlette(routes=routes(alias), lifespan=lifespan)
    app.state.bridge = state
    return FastWebSocketPaths(app, websocket_routes(alias))
