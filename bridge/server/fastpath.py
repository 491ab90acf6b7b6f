"""Serve the media WebSockets without Starlette's middleware wrappers.

Starlette wraps every ``send`` of every connection in two middleware closures (server
errors, exception handlers). For HTTP that is nothing; for a call that sends a hundred
frames a second it is measurable (bench/README.md). The media routes handle their own
errors and close codes, so their WebSocket scopes go straight to the handler; every other
request still goes through the full Starlette app, which also keeps the same routes declared
(for introspection and for servers that bypass this wrapper).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket

Handler = Callable[[WebSocket], Awaitable[None]]


class FastWebSocketPaths:
    def __init__(self, app: Starlette, paths: dict[str, Handler]) -> None:
        self.app = app
        self._paths = paths

    @property
    def state(self) -> Any:
        return self.app.state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            handler = self._paths.get(scope["path"])
            if handler is not None:
                scope["app"] = self.app
                await handler(WebSocket(scope, receive, send))
                return
        await self.app(scope, receive, send)
