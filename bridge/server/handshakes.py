"""A deadline for every connection's handshake, and a bound on how many are unfinished.

uvicorn waits for request headers as long as a client likes: nothing times out a connection
that sends nothing, or one header line every few seconds (``timeout_keep_alive`` only runs
*between* requests and stops at the first byte of the next one; ``limit_concurrency`` is
looked at only once the headers are complete, never for upgrades, and counts live calls
too). A few hundred such clients hold as many sockets and buffers for free.

So a connection is *in its handshake* from the moment it is accepted (or, on a kept-alive
connection, from the first byte of its next request) until its request headers are complete
(plain HTTP) or our answer to its upgrade has been written (the 101, or a denial). Each
handshake gets ``timeout_s``; one still unfinished then has its connection closed and is
counted. At most ``max_in_progress`` handshakes run at once; a connection beyond that is
closed as soon as it is accepted, and counted. Once the headers of a plain HTTP request are
in, the request is the application's business (a slow request body is not covered here).

The HTTP protocol (:mod:`bridge.server.httpprotocol`) starts the handshake and, on an
upgrade, hands it to the WebSocket protocol, which finishes it when its answer is out
(:mod:`bridge.server.wsprotocol`). Under a WebSocket class that does not take it over
(uvicorn's stock ones, ``BRIDGE_WS_IMPL=websockets-sansio``) the deadline asks the class's
own ``handshake_complete`` when it fires, so nothing is cut off, but such a handshake is
counted as in progress until its deadline.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from bridge.ops.metrics import Metrics
    from bridge.settings import Settings

log = logging.getLogger("bridge.server.handshakes")

#: the ``route`` label of the refusals counted here (the path is not known yet)
ROUTE = "handshake"


def _nothing() -> None:
    pass


class HandshakeGuard:
    """Per app: the deadline, the bound, the count in progress and what to report."""

    def __init__(
        self,
        timeout_s: float,
        max_in_progress: int,
        *,
        on_timeout: Callable[[], None] = _nothing,
        on_refused: Callable[[], None] = _nothing,
    ) -> None:
        self.timeout_s = timeout_s
        self.max_in_progress = max_in_progress
        self.on_timeout = on_timeout
        self.on_refused = on_refused
        self.in_progress = 0

    def begin(
        self, transport: asyncio.BaseTransport, loop: asyncio.AbstractEventLoop
    ) -> Handshake | None:
        """Start ``transport``'s handshake; None (counted) when too many are in progress."""
        if self.in_progress >= self.max_in_progress:
            self.on_refused()
            return None
        self.in_progress += 1
        return Handshake(self, transport, loop)


class Handshake:
    """One connection's handshake: :meth:`finish` it in time, or its connection is closed."""

    __slots__ = ("_guard", "_timer", "_transport")

    def __init__(
        self,
        guard: HandshakeGuard,
        transport: asyncio.BaseTransport,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self._guard = guard
        self._transport = transport
        self._timer: asyncio.TimerHandle | None = loop.call_later(guard.timeout_s, self._expire)

    def finish(self) -> None:
        """The handshake is over (done, refused, or the connection is gone); idempotent."""
        timer = self._timer
        if timer is not None:
            self._timer = None
            timer.cancel()
            self._guard.in_progress -= 1

    def _expire(self) -> None:
        self._timer = None
        self._guard.in_progress -= 1
        transport = self._transport
        if transport.is_closing():
            return
        protocol = transport.get_protocol()
        if not isinstance(protocol, TakesHandshake) and getattr(
            protocol, "handshake_complete", False
        ):
            return  # a WebSocket class that answered without taking the handshake over
        self._guard.on_timeout()
        log.debug("handshake not complete after %.1f s; closing", self._guard.timeout_s)
        transport.close()


@runtime_checkable
class TakesHandshake(Protocol):
    """A WebSocket protocol that finishes the handshake it is handed when its answer is out."""

    def take_handshake(self, handshake: Handshake) -> None: ...


def handshake_guard(settings: Settings, metrics: Metrics) -> HandshakeGuard:
    """The app's guard, from its settings, reporting to its metrics."""
    guard = HandshakeGuard(
        settings.handshake_timeout_s,
        settings.max_handshakes,
        on_timeout=lambda: metrics.rejected(ROUTE, "timeout"),
        on_refused=lambda: metrics.rejected(ROUTE, "too_many"),
    )
    metrics.watch_handshakes(lambda: guard.in_progress)
    return guard


def handshake_guard_of(app: object) -> HandshakeGuard | None:
    """The guard of the app uvicorn serves (``app.state.bridge.handshakes``), if it has one."""
    bridge = getattr(getattr(app, "state", None), "bridge", None)
    guard = getattr(bridge, "handshakes", None)
    return guard if isinstance(guard, HandshakeGuard) else None
