"""The toy route's gate: rate limits, device authentication and backoff, before any 101.

A rejected toy retries every second forever, so everything here is cheap and ordered from
cheapest to dearest: the failure limiter (no crypto), then the token check, then the
per-device backoff after agent failures. Every rejection is an HTTP answer to the upgrade
request (401, 429, 503), never an accept-then-close.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from starlette.websockets import WebSocket

from bridge.refusals import deny
from bridge.toys.credentials import (
    DeviceAuthenticator,
    DeviceAuthError,
    DeviceIdentity,
    normalize_mac,
)
from bridge.toys.failure_limits import Backoff, FailureLimiter
from transports.esp32.port import Esp32Device
from transports.esp32.protocol import AuthSettings

log = logging.getLogger("bridge.toys.gate")

SUBPROTOCOL = "arduino"


@dataclass
class DeviceGate:
    authenticator: DeviceAuthenticator
    failures: FailureLimiter
    backoff: Backoff
    #: told the reason of every refusal (``blocked``, ``auth``, ``backoff``), for metrics
    on_reject: Callable[[str], None] = field(default=lambda reason: None)

    async def admit(self, ws: WebSocket, ip: str) -> Esp32Device | None:
        """The device to serve, or None after answering the upgrade with an HTTP error.

        ``ip`` is the client address as the application resolved it (a trusted proxy's
        X-Forwarded-For).
        """
        mac = normalize_mac(ws.headers.get("x-device-mac"))
        if self.failures.blocked(ip, mac):
            self.on_reject("blocked")
            await deny(ws, 429, "too many failed attempts")
            return None
        query = ws.scope.get("query_string", b"").decode("latin-1")
        try:
            identity = self.authenticator.authenticate(ws.headers, query, ip)
        except DeviceAuthError as exc:
            self.failures.record_failure(ip, mac)
            log.warning("toy rejected from %s: %s", ip, exc.reason)
            self.on_reject("auth")
            await deny(ws, exc.status, "unauthorized" if exc.status == 401 else exc.reason)
            return None
        self.failures.record_success(ip, mac)
        wait_s = self.backoff.blocked_for(identity.session_key)
        if wait_s > 0:
            self.on_reject("backoff")
            await deny(ws, 503, f"agent unavailable, retry in {wait_s:.0f} s")
            return None
        return self._device(identity)

    def _device(self, identity: DeviceIdentity) -> Esp32Device:
        settings = identity.settings
        label = identity.sub if identity.mac is None else f"{identity.sub}/{identity.mac}"
        params = {"sub": identity.sub, "token": identity.token_fingerprint}
        if settings.persona:
            params["persona"] = settings.persona
        if identity.rssi_dbm is not None:
            params["rssi_dbm"] = str(identity.rssi_dbm)
        return Esp32Device(
            identity=identity.session_key,
            label=label,
            auth=AuthSettings(settings.volume, settings.pitch_factor, settings.is_ota),
            params=params,
        )

    def subprotocol(self, ws: WebSocket) -> str | None:
        """Echo ``arduino`` when offered; never require it (spec C4)."""
        return SUBPROTOCOL if SUBPROTOCOL in ws.scope.get("subprotocols", []) else None
