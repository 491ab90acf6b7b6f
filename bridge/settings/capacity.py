"""How many calls, how fast they may arrive, and how a shutdown drains them."""

from __future__ import annotations

from dataclasses import dataclass

from bridge.settings.fields import setting


@dataclass(frozen=True)
class CapacitySettings:
    max_calls: int = setting(
        "BRIDGE_MAX_CALLS",
        300,
        "Most concurrent calls and toy sessions together; more get busy TwiML, 1013 or 503.",
        min_value=1,
        max_value=100_000,
    )
    max_twilio_calls: int = setting(
        "BRIDGE_MAX_TWILIO_CALLS",
        300,
        "Most concurrent phone calls (`/twiml` answers busy, `/stream` closes 1013).",
        min_value=1,
        max_value=100_000,
    )
    max_toy_sessions: int = setting(
        "BRIDGE_MAX_TOY_SESSIONS",
        200,
        "Most concurrent toy sessions (more are refused with HTTP 503 before the upgrade).",
        min_value=1,
        max_value=100_000,
    )
    rate_limit_per_s: float = setting(
        "BRIDGE_RATE_LIMIT_PER_S",
        10.0,
        "New webhooks and WebSocket upgrades per second per client IP, sustained (0: off). "
        "Twilio connects from a few shared addresses: keep it generous.",
        min_value=0,
        max_value=10_000,
    )
    rate_limit_burst: int = setting(
        "BRIDGE_RATE_LIMIT_BURST",
        50,
        "Requests a client IP may make at once before `BRIDGE_RATE_LIMIT_PER_S` applies.",
        min_value=1,
        max_value=100_000,
    )
    drain_timeout_s: float = setting(
        "BRIDGE_DRAIN_TIMEOUT_S",
        30.0,
        "On SIGTERM, how long live calls may go on before they are ended politely.",
        min_value=0,
        max_value=86_400,
    )
