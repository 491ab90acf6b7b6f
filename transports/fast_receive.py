"""The fast-receive hook: a server may hand each inbound frame to the adapter synchronously.

Why: a phone call sends 50 frames a second and a toy streams its microphone without pause. The
ordinary ASGI path puts every frame on an ``asyncio.Queue`` and wakes the application's task
for it; at a few hundred calls that hop costs more than the audio work. A server that offers
this hook instead calls the adapter's :data:`FastHandler` straight from its socket callback.

Who offers it: ``bridge.server.wsprotocol.BatchedWebSocketProtocol``, the WebSocket protocol
class that ``bridge.server.config.uvicorn_options`` gives uvicorn. It puts an object that
implements :class:`FastReceive` into the ASGI scope's ``extensions`` under :data:`EXTENSION`;
:func:`fast_receive_of` finds it. Under any other server the adapter simply never registers and
every frame takes the ordinary ``receive()`` path.

The handler's contract: it returns None when it handled the frame, or an ASGI receive event to
queue for the application's ``receive()`` instead (the adapter uses that for anything that
must wait its turn behind earlier events, carrying the events it already parsed under
:data:`EVENTS_KEY`). An exception it raises is queued as an event carrying it under
:data:`ERROR_KEY`, so the failure surfaces in the application's own task.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from starlette.websockets import WebSocket

#: ASGI scope extension under which a server offers the hook
EXTENSION = "bridge.fast_receive"
#: key under which a queued event carries the exception the handler raised
ERROR_KEY = "bridge.error"
#: key under which a queued event carries protocol events the handler already parsed
EVENTS_KEY = "bridge.events"

#: called with each text (``str``) or binary (``bytes``) message, synchronously
FastHandler = Callable[[str | bytes], "dict[str, Any] | None"]


@runtime_checkable
class FastReceive(Protocol):
    """What the server offers: register a handler (None unregisters)."""

    def register(self, handler: FastHandler | None) -> None: ...


def fast_receive_of(ws: WebSocket) -> FastReceive | None:
    """The connection's fast-receive hook, or None when its server offers none."""
    hook = ws.scope.get("extensions", {}).get(EXTENSION)
    return hook if isinstance(hook, FastReceive) else None
