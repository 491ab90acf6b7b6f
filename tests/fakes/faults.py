"""When a fake fails: the faults a test schedules per endpoint, shared by every fake.

A test asks for the next ``times`` requests (or connections) to an endpoint to fail, or all
of them (``times=None``); each fake takes the next fault when a request arrives. The fault
itself is each fake's own type (an HTTP status, a dropped socket, a stall...).
"""

from __future__ import annotations

from collections import deque
from typing import Generic, TypeVar

K = TypeVar("K")
F = TypeVar("F")


class FaultSchedule(Generic[K, F]):
    def __init__(self) -> None:
        self._once: dict[K, deque[F]] = {}
        self._always: dict[K, F] = {}

    def fail(self, endpoint: K, fault: F, times: int | None = 1) -> None:
        """The next ``times`` requests to ``endpoint`` get ``fault`` (None: all of them)."""
        if times is None:
            self._always[endpoint] = fault
        else:
            self._once.setdefault(endpoint, deque()).extend([fault] * times)

    def heal(self) -> None:
        self._once.clear()
        self._always.clear()

    def next(self, *endpoints: K) -> F | None:
        """The fault for a request that any of ``endpoints`` names (first match wins)."""
        for endpoint in endpoints:
            queue = self._once.get(endpoint)
            if queue:
                return queue.popleft()
        for endpoint in endpoints:
            fault = self._always.get(endpoint)
            if fault is not None:
                return fault
        return None
