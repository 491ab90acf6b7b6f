"""A real uvicorn server on loopback, in a background thread with its own event loop.

Tests talk to it over real sockets like any client would, and can still reach inside
(``call_in_loop``) to check that no call left a task or a registry entry behind.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any, Self, TypeVar

import uvicorn

from bridge.server.config import uvicorn_options
from bridge.server.fastpath import FastWebSocketPaths
from bridge.settings import Settings
from tests.support.loopback import Loopback

T = TypeVar("T")


class UvicornThread(Loopback):
    """Any ASGI app served by uvicorn on a free loopback port, in its own thread and loop."""

    def __init__(self, app: Any, **options: Any) -> None:
        config = uvicorn.Config(app, host="127.0.0.1", port=0, **options)
        self.server = uvicorn.Server(config)
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._run, name="uvicorn-test", daemon=True)
        self.port = 0
        self.baseline_tasks = 0

    def _run(self) -> None:
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self.server.serve())

    def start(self) -> Self:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        self.port = self.server.servers[0].sockets[0].getsockname()[1]
        self.baseline_tasks = self.call_in_loop(_task_count)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self._thread.join(timeout=10)

    def call_in_loop(self, fn: Callable[[], Coroutine[Any, Any, T]]) -> T:
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(fn(), self.loop).result(timeout=10)


class ServerThread(UvicornThread):
    """The bridge itself, with checks that no call left anything behind."""

    def __init__(self, app: FastWebSocketPaths, settings: Settings) -> None:
        super().__init__(app, **uvicorn_options(settings))
        self.app = app

    def leaks(self) -> dict[str, Any]:
        """What is still alive beyond the idle server: tasks, connections, live sessions."""
        bridge = self.app.state.bridge
        return {
            "tasks": self.call_in_loop(_task_names)[self.baseline_tasks :],
            "connections": len(self.server.server_state.connections),
            "sessions": sum(bridge.switchboard.counts().values()),
        }

    def wait_clean(self, timeout_s: float = 3.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while True:
            found = self.leaks()
            if not found["tasks"] and not found["connections"] and not found["sessions"]:
                return found
            if time.monotonic() > deadline:
                return found
            time.sleep(0.05)


async def _task_count() -> int:
    return len(asyncio.all_tasks()) - 1


async def _task_names() -> list[str]:
    current = asyncio.current_task()
    names = sorted(t.get_name() for t in asyncio.all_tasks() if t is not current)
    return names


#: the ``make_server`` fixture: settings overrides (env-style names) and an optional factory
MakeServer = Callable[..., ServerThread]
