"""Retry a provider call with exponential backoff and jitter, inside a turn's deadline.

Cloud speech and language APIs fail in ordinary ways: a 429 under load, a 5xx during a deploy,
a connection dropped by a proxy, a request that hangs. A voice caller cannot wait for a
client library's own retry schedule (minutes, in the worst case), so agents disable those
retries and use this module instead: every retry of every stage of one turn draws on one
:class:`Deadline`, and when it runs out the turn fails *now*, so the caller hears an apology
rather than dead air.

The deadline bounds **silence, not speech**: :meth:`Deadline.progress` restarts it whenever
the turn makes progress (audio reached the caller, a token arrived), so a long answer that
is spoken steadily never times out, while a stalled one fails after ``budget_s``.

Provider-specific knowledge stays with the agent: it passes a ``classify`` function that says
whether an error is worth retrying (and how long the server asked us to wait).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")

log = logging.getLogger("pipeline.agents.retry")


class DeadlineExceeded(TimeoutError):
    """Retries of one turn ran out of time; ``__cause__`` is the last error."""


@dataclass(frozen=True, slots=True)
class Retry:
    """``classify`` verdict: the error is transient; wait at least ``after_s`` if given."""

    after_s: float | None = None


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    #: first backoff; doubles per attempt up to ``max_delay_s``
    base_delay_s: float = 0.2
    max_delay_s: float = 2.0
    #: a server's Retry-After is honoured up to this long; a longer one fails the turn at once
    max_retry_after_s: float = 4.0
    #: fraction of each delay that is randomised (spreads retries of many calls apart)
    jitter: float = 0.5

    def backoff_s(self, attempt: int, rng: Callable[[], float] = random.random) -> float:
        """Delay before retry number ``attempt`` (1-based), jittered downwards."""
        delay = min(self.max_delay_s, self.base_delay_s * 2.0 ** (attempt - 1))
        return delay * (1 - self.jitter * rng())


class Deadline:
    """How long a turn may go without progress before it is given up.

    Timed by the event loop's clock (by default), the clock its retries sleep on: under a
    virtual-time loop the budget runs out with the sleeps, as it does for real."""

    def __init__(self, budget_s: float, clock: Callable[[], float] | None = None) -> None:
        self.budget_s = budget_s
        clock = clock or asyncio.get_running_loop().time
        self._clock = clock
        self._ends_at = clock() + budget_s

    def remaining_s(self) -> float:
        return max(0.0, self._ends_at - self._clock())

    def progress(self) -> None:
        """Something reached the caller: the silence budget starts again."""
        self._ends_at = self._clock() + self.budget_s


async def retry_within(
    attempt: Callable[[], Awaitable[T]],
    deadline: Deadline,
    classify: Callable[[Exception], Retry | None],
    *,
    what: str,
    policy: RetryPolicy | None = None,
    may_retry: Callable[[], bool] = lambda: True,
    logger: logging.Logger | logging.LoggerAdapter[logging.Logger] = log,
) -> T:
    """Run ``attempt`` until it succeeds, a permanent error, or ``deadline`` runs out.

    ``classify`` returns None for errors that must not be retried (they propagate unchanged).
    ``may_retry`` returning False (e.g. part of the result has already been played, and
    repeating it would replay audio) also propagates the error unchanged. When the deadline
    cannot fit another attempt, :class:`DeadlineExceeded` is raised from the last error.
    """
    policy = policy or RetryPolicy()
    tries = 0
    while True:
        tries += 1
        try:
            return await attempt()
        except Exception as exc:
            verdict = classify(exc)
            if verdict is None or not may_retry():
                raise
            delay_s = policy.backoff_s(tries)
            if verdict.after_s is not None:
                if verdict.after_s > policy.max_retry_after_s:
                    raise DeadlineExceeded(
                        f"{what}: server asked to retry after {verdict.after_s:.1f} s"
                    ) from exc
                delay_s = max(delay_s, verdict.after_s)
            remaining_s = deadline.remaining_s()
            if delay_s >= remaining_s:
                raise DeadlineExceeded(
                    f"{what}: gave up after {tries} attempt(s), last error {exc!r}"
                ) from exc
            logger.warning(
                "%s failed (attempt %d): %r; retrying in %.2f s (%.1f s left)",
                what,
                tries,
                exc,
                delay_s,
                remaining_s,
            )
            await asyncio.sleep(delay_s)
