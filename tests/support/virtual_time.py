"""An event loop whose clock is virtual: time moves only when nothing is ready to run.

Why: the call core is full of deadlines (pacing leads, silence windows, idle limits, drain
grace periods) that take seconds of real time to reach. On this loop ``loop.time()`` starts at
0 and, whenever every task is waiting, jumps straight to the next timer, so a test of a
five-minute idle limit takes milliseconds, and every timing it observes is exact and
repeatable. Code under test must read time from the loop (pass ``loop.time`` as its clock).

Only for code that waits on timers and on itself: a loop that also waits on real sockets or
threads would jump past their answers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    def __init__(self) -> None:
        super().__init__()
        self._now_s = 0.0

    def time(self) -> float:
        return self._now_s

    def _run_once(self) -> None:
        # CPython's BaseEventLoop keeps ready callbacks in ``_ready`` and timers in the heap
        # ``_scheduled`` (3.11-3.13). Nothing ready: jump to the earliest live timer, so the
        # base class computes a zero timeout and runs it at once.
        ready = self._ready  # type: ignore[attr-defined]
        scheduled = self._scheduled  # type: ignore[attr-defined]
        if not ready:
            due = [handle.when() for handle in scheduled if not handle.cancelled()]
            if due and min(due) > self._now_s:
                self._now_s = min(due)
        super()._run_once()  # type: ignore[misc]


def run_virtual(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run ``main()`` on a fresh virtual-time loop; fail if it leaves a task running."""
    loop = VirtualTimeLoop()
    try:
        result = loop.run_until_complete(main())
        leftover = [t for t in asyncio.all_tasks(loop) if not t.done()]
        for task in leftover:
            task.cancel()
        if leftover:
            loop.run_until_complete(asyncio.gather(*leftover, return_exceptions=True))
        assert not leftover, f"leaked tasks: {sorted(t.get_name() for t in leftover)}"
        return result
    finally:
        loop.close()
