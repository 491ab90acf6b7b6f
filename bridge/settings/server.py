"""Where and how the server listens and logs."""

from __future__ import annotations

from dataclasses import dataclass

from bridge.settings.fields import setting


@dataclass(frozen=True)
class ServerSettings:
    host: str = setting("BRIDGE_HOST", "0.0.0.0", "Interface the server listens on.")
    port: int = setting("BRIDGE_PORT", 8080, "TCP port.", min_value=1, max_value=65535)
    public_host: str = setting(
        "BRIDGE_PUBLIC_HOST",
        "",
        "Public host name Twilio reaches (e.g. `voice.example.com`); used for the `wss://` "
        "stream URL. Empty: taken from the request (forwarded headers when trusted).",
    )
    env: str = setting(
        "BRIDGE_ENV",
        "development",
        "`production` refuses to start without Twilio and toy credentials and never admits "
        "unauthenticated toys; `development` runs without them (with loud warnings).",
        choices=("development", "production"),
    )
    log_level: str = setting(
        "BRIDGE_LOG_LEVEL",
        "INFO",
        "Log level.",
        choices=("DEBUG", "INFO", "WARNING", "ERROR"),
    )
    log_format: str = setting(
        "BRIDGE_LOG_FORMAT",
        "json",
        "`json` (one object per line) or `text`.",
        choices=("json", "text"),
    )
    ws_impl: str = setting(
        "BRIDGE_WS_IMPL",
        "batched",
        "WebSocket implementation: `batched` (uvicorn's sans-I/O one with batched flow "
        "control, see bridge/server/wsprotocol.py) or uvicorn's stock `websockets-sansio`.",
        choices=("batched", "websockets-sansio"),
    )
    max_message_bytes: int = setting(
        "BRIDGE_MAX_MESSAGE_BYTES",
        65536,
        "Largest inbound WebSocket message (larger closes 1009).",
        min_value=1024,
        max_value=1 << 20,
    )
    ws_ping_interval_s: float = setting(
        "BRIDGE_WS_PING_INTERVAL_S",
        20.0,
        "Server WebSocket ping interval (toys send none; Twilio needs none).",
        min_value=1,
        max_value=600,
    )
    ws_ping_timeout_s: float = setting(
        "BRIDGE_WS_PING_TIMEOUT_S",
        30.0,
        "Pong deadline; must exceed the ping interval plus the toy lead (spec TE12).",
        min_value=1,
        max_value=600,
    )
    trust_forwarded: bool = setting(
        "BRIDGE_TRUST_FORWARDED",
        False,
        "Trust `X-Forwarded-Proto`/`X-Forwarded-Host`/`X-Forwarded-For` from the reverse proxy "
        "in front of us (the client address is the last `X-Forwarded-For` entry).",
    )
    handshake_timeout_s: float = setting(
        "BRIDGE_HANDSHAKE_TIMEOUT_S",
        5.0,
        "Time a new connection (or the next request on a kept-alive one) has to send its "
        "request headers and, for a WebSocket, to get our 101 or refusal; later it is closed.",
        min_value=0.5,
        max_value=60,
    )
    max_handshakes: int = setting(
        "BRIDGE_MAX_HANDSHAKES",
        256,
        "Most connections still in that handshake at once; more are closed as soon as they "
        "are accepted.",
        min_value=1,
        max_value=100_000,
    )
