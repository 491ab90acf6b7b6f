"""Who may start a call right now: per-IP connection rate, concurrency slots, drain.

Every webhook and media WebSocket asks :class:`Admission` first, before any parsing, auth
or agent work, so a flood costs one dict lookup per request. A refusal is a short reason
string (``rate_limited``, ``capacity``, ``draining``) that the route turns into its wire's
answer (busy TwiML, close 1013, HTTP 503/429) and that metrics count.

Concurrency is counted in *slots*, held from admission until the connection ends, not in live
sessions: a Twilio stream that has connected but not yet sent ``start`` already holds one, so
a burst of simultaneous connects cannot overshoot the limit before the sessions exist.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from starlette.datastructures import Headers

log = logging.getLogger("bridge.ops.admission")

DEFAULT_MAX_IPS = 100_000

RATE_LIMITED = "rate_limited"
CAPACITY = "capacity"
DRAINING = "draining"


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated_s: float


class TokenBuckets:
    """One token bucket per key (client IP): ``rate_per_s`` sustained, ``burst`` at once.

    Memory is bounded: at most ``max_keys`` buckets, least recently used first out. An evicted
    bucket was idle the longest, so it is (nearly) full anyway and forgetting it loses nothing
    that matters; a flood of distinct addresses cannot grow the table.
    """

    def __init__(
        self,
        rate_per_s: float,
        burst: int,
        *,
        max_keys: int = DEFAULT_MAX_IPS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate_per_s < 0 or burst < 1 or max_keys < 1:
            raise ValueError("rate_per_s must be >= 0, burst and max_keys >= 1")
        self.rate_per_s = rate_per_s
        self.burst = float(burst)
        self._max_keys = max_keys
        self._clock = clock
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()  # least recent first

    def __len__(self) -> int:
        return len(self._buckets)

    @property
    def enabled(self) -> bool:
        return self.rate_per_s > 0

    def take(self, key: str) -> bool:
        """Spend one token of ``key``; False when its bucket is empty (the request is refused)."""
        if not self.enabled:
            return True
        now_s = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self._max_keys:
                self._buckets.popitem(last=False)
            bucket = self._buckets[key] = _Bucket(self.burst, now_s)
        else:
            self._buckets.move_to_end(key)
            elapsed_s = max(0.0, now_s - bucket.updated_s)
            bucket.tokens = min(self.burst, bucket.tokens + elapsed_s * self.rate_per_s)
            bucket.updated_s = now_s
        if bucket.tokens < 1.0:
            return False
        bucket.tokens -= 1.0
        return True


class ClientAddress:
    """The client's IP: the socket peer, or with ``trust_forwarded`` the proxy's word for it.

    With a trusted proxy the client is the **last** ``X-Forwarded-For`` entry: the one our
    proxy appended. Earlier entries come from the client itself and can be forged.
    """

    def __init__(self, trust_forwarded: bool) -> None:
        self.trust_forwarded = trust_forwarded
        self._warned = False

    def __call__(self, peer: str, headers: Headers) -> str:
        forwarded = headers.getlist("x-forwarded-for")
        if not forwarded:
            return peer
        if not self.trust_forwarded:
            if not self._warned:
                self._warned = True
                log.warning(
                    "X-Forwarded-For received from %s but BRIDGE_TRUST_FORWARDED is off: every "
                    "client behind that proxy shares its address and its rate limit",
                    peer,
                )
            return peer
        last = forwarded[-1].split(",")[-1].strip()
        try:
            return str(ipaddress.ip_address(last.strip("[]")))
        except ValueError:
            return peer  # a malformed entry must not become a key of its own


class Admission:
    """Concurrency slots per transport and overall, the per-IP rate, and the drain switch."""

    def __init__(
        self,
        limits: dict[str, int],
        max_total: int,
        rate: TokenBuckets,
        client_address: ClientAddress,
    ) -> None:
        self.limits = dict(limits)
        self.max_total = max_total
        self.rate = rate
        self.client_address = client_address
        self.held: dict[str, int] = dict.fromkeys(limits, 0)
        #: set once a drain starts: every new call is refused from then on
        self.draining = False

    def total(self) -> int:
        return sum(self.held.values())

    def has_room(self, transport: str) -> bool:
        limit = self.limits.get(transport, self.max_total)
        return self.held.get(transport, 0) < limit and self.total() < self.max_total

    def refusal(self, transport: str, ip: str, *, rate_limited: bool = True) -> str | None:
        """Why a new call of ``transport`` from ``ip`` must be refused now, or None.

        ``rate_limited=False`` exempts an authenticated request from the per-IP rate (Twilio
        itself, whose calls arrive in bursts from a few shared addresses); capacity and a
        drain still apply to it.
        """
        if rate_limited and not self.rate.take(ip):
            return RATE_LIMITED
        if self.draining:
            return DRAINING
        if not self.has_room(transport):
            return CAPACITY
        return None

    @contextmanager
    def slot(self, transport: str) -> Iterator[None]:
        """Hold one slot of ``transport`` for the life of a connection."""
        self.held[transport] = self.held.get(transport, 0) + 1
        try:
            yield
        finally:
            self.held[transport] -= 1
