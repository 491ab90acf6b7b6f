"""Abuse limits for the toy upgrade path: failed-upgrade blocking and agent-start backoff.

Why these exist: a toy retries every 1000 ms forever, 401 and 503 included (spec C10), so a
misconfigured or hostile device would otherwise cost a verification or an agent start per second,
indefinitely. Both limiters are pure (no asyncio, no I/O), take an injectable monotonic clock, and
hold bounded memory — at most ``max_keys`` keys, evicting expired keys first, then the least
recently touched — so a flood of distinct keys (spoofed MACs, many source IPs) cannot grow them.
Under such a flood a blocked key can be evicted early; bounded memory is the stronger need.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass

DEFAULT_MAX_FAILURES = 10  # C10: 10 failed upgrades …
DEFAULT_FAILURE_WINDOW_S = 60.0  # … within 60 s …
DEFAULT_BLOCK_S = 60.0  # … → HTTP 429 for 60 s
DEFAULT_MAX_KEYS = 100_000

DEFAULT_BACKOFF_INITIAL_S = 1.0  # §7: agent start failure → 503, backoff 1 s …
DEFAULT_BACKOFF_MAX_S = 60.0  # … doubling to 60 s
BACKOFF_FACTOR = 2.0


def _usable(keys: tuple[str | None, ...]) -> Iterator[str]:
    """Skip None and "": an unknown IP or MAC must not pool every such client into one bucket."""
    return (key for key in keys if key)


def _check_positive(name: str, value: float) -> None:
    if value <= 0:
        raise ValueError(f"{name} must be positive, got {value!r}")


@dataclass(slots=True)
class _FailureRecord:
    failures_s: deque[float]  # clock times of recent failures, oldest first
    blocked_until_s: float = 0.0
    last_failure_s: float = 0.0


class FailureLimiter:
    """After ``max_failures`` failed attempts within ``window_s`` for a key, the key is blocked
    for ``block_s`` (spec C10: 10 in 60 s → 429 for 60 s).

    Call :meth:`blocked` BEFORE any verification, so a blocked client costs one dict lookup.
    Failures recorded while a key is blocked do not extend the block: a toy that keeps retrying
    through its 429s gets out after ``block_s`` and then needs ``max_failures`` fresh failures to
    be blocked again.
    """

    def __init__(
        self,
        max_failures: int = DEFAULT_MAX_FAILURES,
        window_s: float = DEFAULT_FAILURE_WINDOW_S,
        block_s: float = DEFAULT_BLOCK_S,
        *,
        max_keys: int = DEFAULT_MAX_KEYS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        _check_positive("max_failures", max_failures)
        _check_positive("window_s", window_s)
        _check_positive("block_s", block_s)
        _check_positive("max_keys", max_keys)
        self._max_failures = max_failures
        self._window_s = window_s
        self._block_s = block_s
        self._max_keys = max_keys
        self._clock = clock
        self._records: OrderedDict[str, _FailureRecord] = OrderedDict()  # least recent first

    def __len__(self) -> int:
        return len(self._records)

    def blocked(self, *keys: str | None) -> bool:
        """True when any of the keys (e.g. source IP and MAC) is blocked right now."""
        now_s = self._clock()
        for key in _usable(keys):
            record = self._records.get(key)
            if record is not None and record.blocked_until_s > now_s:
                return True
        return False

    def record_failure(self, *keys: str | None) -> None:
        now_s = self._clock()
        for key in _usable(keys):
            self._record_one_failure(key, now_s)

    def record_success(self, *keys: str | None) -> None:
        """Forget the failure history of these keys; a block already in force runs its course."""
        now_s = self._clock()
        for key in _usable(keys):
            record = self._records.get(key)
            if record is None:
                continue
            if record.blocked_until_s > now_s:
                record.failures_s.clear()
            else:
                del self._records[key]

    def _record_one_failure(self, key: str, now_s: float) -> None:
        record = self._touch(key, now_s)
        if record.blocked_until_s > now_s:
            return
        horizon_s = now_s - self._window_s
        while record.failures_s and record.failures_s[0] <= horizon_s:
            record.failures_s.popleft()
        record.failures_s.append(now_s)
        record.last_failure_s = now_s
        if len(record.failures_s) >= self._max_failures:
            record.blocked_until_s = now_s + self._block_s
            record.failures_s.clear()

    def _touch(self, key: str, now_s: float) -> _FailureRecord:
        record = self._records.get(key)
        if record is not None:
            self._records.move_to_end(key)
            return record
        if len(self._records) >= self._max_keys:
            self._evict(now_s)
        record = _FailureRecord(deque(maxlen=self._max_failures))
        self._records[key] = record
        return record

    def _expired(self, record: _FailureRecord, now_s: float) -> bool:
        """Nothing left to remember: no block in force and no failure inside the window."""
        return record.blocked_until_s <= now_s and record.last_failure_s <= now_s - self._window_s

    def _evict(self, now_s: float) -> None:
        """Drop the expired keys at the old end (amortised O(1)), then the oldest if still full."""
        while self._records:
            oldest = next(iter(self._records.values()))
            if not self._expired(oldest, now_s):
                break
            self._records.popitem(last=False)
        while len(self._records) >= self._max_keys:
            self._records.popitem(last=False)


@dataclass(slots=True)
class _BackoffRecord:
    wait_s: float
    blocked_until_s: float


class Backoff:
    """Per-key exponential backoff after agent start failures (spec §7: 1 s doubling to 60 s,
    answered with HTTP 503 while it runs).

    A streak is forgotten once the key has stayed free for ``max_s`` after its last wait, so a
    toy that failed once yesterday starts again at ``initial_s``; a toy that keeps failing on every
    reconnect keeps doubling up to ``max_s``.
    """

    def __init__(
        self,
        initial_s: float = DEFAULT_BACKOFF_INITIAL_S,
        max_s: float = DEFAULT_BACKOFF_MAX_S,
        *,
        max_keys: int = DEFAULT_MAX_KEYS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        _check_positive("initial_s", initial_s)
        _check_positive("max_keys", max_keys)
        if max_s < initial_s:
            raise ValueError(f"max_s ({max_s!r}) must be at least initial_s ({initial_s!r})")
        self._initial_s = initial_s
        self._max_s = max_s
        self._max_keys = max_keys
        self._clock = clock
        self._records: OrderedDict[str, _BackoffRecord] = OrderedDict()  # least recent first

    def __len__(self) -> int:
        return len(self._records)

    def blocked_for(self, key: str) -> float:
        """Seconds until this key may try again; 0.0 when it is free."""
        record = self._records.get(key)
        if record is None:
            return 0.0
        return max(0.0, record.blocked_until_s - self._clock())

    def failure(self, key: str) -> float:
        """Record a failed start; returns the new wait in seconds."""
        now_s = self._clock()
        record = self._records.pop(key, None)
        if record is None or self._streak_over(record, now_s):
            wait_s = self._initial_s
        else:
            wait_s = min(record.wait_s * BACKOFF_FACTOR, self._max_s)
        if len(self._records) >= self._max_keys:
            self._evict(now_s)
        self._records[key] = _BackoffRecord(wait_s, now_s + wait_s)
        return wait_s

    def success(self, key: str) -> None:
        self._records.pop(key, None)

    def _streak_over(self, record: _BackoffRecord, now_s: float) -> bool:
        return now_s >= record.blocked_until_s + self._max_s

    def _evict(self, now_s: float) -> None:
        """Drop finished streaks at the old end, then the oldest if still full."""
        while self._records:
            oldest = next(iter(self._records.values()))
            if not self._streak_over(oldest, now_s):
                break
            self._records.popitem(last=False)
        while len(self._records) >= self._max_keys:
            self._records.popitem(last=False)
