"""uvicorn's h11 HTTP protocol, with a deadline on request headers (:mod:`.handshakes`).

A connection's handshake begins when it is accepted, or on a kept-alive connection with the
first byte of its next request (until then uvicorn's own ``timeout_keep_alive`` closes an
idle one). It ends here once h11 has the complete request headers; for a WebSocket upgrade
it is handed to the WebSocket protocol, which ends it when our answer is out. Beyond the
guard's bound a new connection is closed at once, before reading anything.

The guard belongs to the app (``BridgeState.handshakes``); uvicorn gives protocols only its
config, so it is found through ``config.app``. An app without one is served unguarded, with a
warning.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import h11
from uvicorn.config import Config
from uvicorn.server import ServerState

from bridge.server.handshakes import Handshake, HandshakeGuard, TakesHandshake, handshake_guard_of
from bridge.server.uvicorn_layout import require_layout, unsupported

try:
    from uvicorn.protocols.http.h11_impl import H11Protocol
except ImportError as exc:  # pragma: no cover - depends on the installed uvicorn
    raise unsupported("bridge/server/httpprotocol.py", ["uvicorn.protocols.http.h11_impl"]) from exc

log = logging.getLogger("bridge.server.httpprotocol")

require_layout(
    H11Protocol,
    methods=("connection_made", "connection_lost", "data_received", "handle_websocket_upgrade"),
    attributes={"__init__": ("config", "conn", "loop", "transport")},
    what="bridge/server/httpprotocol.py (subclass of uvicorn's H11Protocol)",
)
require_layout(Config, methods=(), attributes={"__init__": ("app",)}, what="the handshake guard")

_unguarded_warned: set[int] = set()


def _guard_for(config: Config) -> HandshakeGuard | None:
    guard = handshake_guard_of(config.app)
    if guard is None and id(config) not in _unguarded_warned:
        _unguarded_warned.add(id(config))
        log.warning("the served app has no handshake guard: slow handshakes are not limited")
    return guard


class GuardedH11Protocol(H11Protocol):
    _handshake: Handshake | None = None

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._guard = _guard_for(config)

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._begin_handshake()

    def _begin_handshake(self) -> bool:
        """Start a handshake; False when the connection was closed for exceeding the bound."""
        guard = self._guard
        if guard is None:
            return True
        handshake = guard.begin(self.transport, self.loop)
        if handshake is None:
            self.transport.close()
            return False
        self._handshake = handshake
        return True

    def data_received(self, data: bytes) -> None:
        # a kept-alive connection whose next request starts now
        if (
            self._handshake is None
            and self.conn.their_state is h11.IDLE
            and not self._begin_handshake()
        ):
            return
        super().data_received(data)
        handshake = self._handshake
        if handshake is not None and self.conn.their_state is not h11.IDLE:
            # the request headers are in (or were refused as invalid)
            self._handshake = None
            handshake.finish()

    def handle_websocket_upgrade(self, event: h11.Request) -> None:
        handshake, self._handshake = self._handshake, None
        super().handle_websocket_upgrade(event)
        if handshake is not None:
            protocol = self.transport.get_protocol()
            if isinstance(protocol, TakesHandshake):
                protocol.take_handshake(handshake)

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        handshake, self._handshake = self._handshake, None
        if handshake is not None:
            handshake.finish()
