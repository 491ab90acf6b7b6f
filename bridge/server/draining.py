"""``bridge serve``'s uvicorn server: SIGTERM drains the calls before uvicorn shuts down.

uvicorn's own SIGTERM handling closes every WebSocket at once (1012) and then re-raises the
signal, so the process dies by SIGTERM mid-sentence. Here the first SIGTERM starts the app's
drain (bridge/ops/drain.py) instead; uvicorn is told to exit only once it has finished, and the
signal is not re-raised, so the process exits 0. A second SIGTERM, or SIGINT (Ctrl-C), keeps
uvicorn's immediate behaviour for an operator who wants out now.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
from collections.abc import Callable, Coroutine
from types import FrameType
from typing import Any

import uvicorn

log = logging.getLogger("bridge.server.draining")

DrainFn = Callable[[], Coroutine[Any, Any, None]]


class DrainingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, drain: DrainFn) -> None:
        super().__init__(config)
        self._drain = drain
        self._loop: asyncio.AbstractEventLoop | None = None
        self._drain_task: asyncio.Task[None] | None = None

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if sig == signal.SIGTERM and self._drain_task is None and self._loop is not None:
            # A signal handler runs between two bytecodes of the loop's own thread: hand the
            # work to the loop instead of touching its state here.
            self._loop.call_soon_threadsafe(self._start_drain)
            return
        super().handle_exit(sig, frame)

    def _start_drain(self) -> None:
        if self._drain_task is None:
            log.info("SIGTERM: draining before shutdown")
            self._drain_task = asyncio.create_task(self._drain_then_exit(), name="drain")

    async def _drain_then_exit(self) -> None:
        try:
            await self._drain()
        except Exception:
            log.exception("drain failed; shutting down anyway")
        self.should_exit = True
