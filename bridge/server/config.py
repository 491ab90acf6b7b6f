"""How uvicorn must serve the bridge: one place, shared by ``bridge serve`` and the tests."""

from __future__ import annotations

from typing import Any

from bridge.server.httpprotocol import GuardedH11Protocol
from bridge.server.wsprotocol import BatchedWebSocketProtocol
from bridge.settings import Settings

#: ``BRIDGE_WS_IMPL`` choices -> what uvicorn's ``ws`` option gets. The batched protocol is
#: passed as the class itself, so a reader (and mypy) can follow it from here.
WS_PROTOCOLS: dict[str, Any] = {
    "batched": BatchedWebSocketProtocol,
    "websockets-sansio": "websockets-sansio",
}


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for ``uvicorn.Config`` besides the app, host and port.

    Importing this module checks that the installed uvicorn has the layout our protocol
    subclasses rely on (bridge/server/uvicorn_layout.py) and raises ``RuntimeError`` if not.
    """
    return {
        # h11 with a deadline and a bound on unfinished handshakes (bridge/server/handshakes.py;
        # the app's BridgeState.handshakes carries BRIDGE_HANDSHAKE_TIMEOUT_S and
        # BRIDGE_MAX_HANDSHAKES)
        "http": GuardedH11Protocol,
        "ws": WS_PROTOCOLS[settings.ws_impl],
        "ws_max_size": settings.max_message_bytes,
        "ws_ping_interval": settings.ws_ping_interval_s,
        "ws_ping_timeout": settings.ws_ping_timeout_s,
        "ws_per_message_deflate": False,
        "log_config": None,
        "access_log": False,
        "lifespan": "on",
        # The client address is ours to decide (bridge/ops/admission.py, BRIDGE_TRUST_FORWARDED);
        # uvicorn would otherwise believe X-Forwarded-For from any loopback peer.
        "proxy_headers": False,
    }
