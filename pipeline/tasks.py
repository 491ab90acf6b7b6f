"""Per-call task ownership: every task a call starts is cancelled when the call ends."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")

#: told of a supervised task that failed (the call decides whether to end itself)
OnError = Callable[["asyncio.Task[Any]", BaseException], None]


class TaskSet:
    """A bag of tasks that belong to one call.

    Unlike :class:`asyncio.TaskGroup`, one failing task does not cancel its siblings: the
    failure of a *supervised* task is handed to ``on_error`` so the call can decide to end
    itself. An *unsupervised* task's outcome belongs to whoever awaits it (an early
    transcription the turn may or may not use); if nobody does, its error is dropped quietly.
    Either way the task is cancelled when the call ends.
    """

    def __init__(self, name: str, on_error: OnError | None = None) -> None:
        self._name = name
        self._tasks: set[asyncio.Task[Any]] = set()
        self._unsupervised: set[asyncio.Task[Any]] = set()
        self._on_error = on_error
        self._closed = False

    def spawn(
        self, coro: Coroutine[Any, Any, T], name: str, *, supervised: bool = True
    ) -> asyncio.Task[T]:
        if self._closed:
            coro.close()
            raise RuntimeError(f"{self._name}: task set closed, cannot start {name}")
        task = asyncio.get_running_loop().create_task(coro, name=f"{self._name}:{name}")
        self._tasks.add(task)
        if not supervised:
            self._unsupervised.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        supervised = task not in self._unsupervised
        self._unsupervised.discard(task)
        if task.cancelled():
            return
        exc = task.exception()  # retrieved either way: no "never retrieved" warning
        if exc is not None and supervised and self._on_error is not None:
            self._on_error(task, exc)

    def __len__(self) -> int:
        return len(self._tasks)

    async def cancel_all(self, timeout_s: float = 1.0) -> None:
        """Cancel every task except the caller and wait (bounded) for them to finish."""
        self._closed = True
        current = asyncio.current_task()
        tasks = [t for t in self._tasks if t is not current]
        for task in tasks:
            task.cancel()
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=timeout_s)
        for task in pending:
            log.error("task did not stop within %.1fs: %s", timeout_s, task.get_name())
