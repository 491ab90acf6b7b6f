"""Prometheus metrics, one registry per app (many apps share a test process without clashing).

Call metrics come from :class:`MetricsObserver`, one more :class:`SessionObserver` in the
app's observer group; admission and device auth report refusals through :meth:`rejected`.
Live-call gauges are read from the switchboard at scrape time rather than counted up and down,
so they cannot drift (a session that fails to start ends without ever having started).

Label values that come from code paths we do not own (end reasons an agent chooses, exception
class names) go through :class:`BoundedLabels`: after a few dozen distinct values the rest are
reported as ``other``, so no caller can grow the series count without limit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from pipeline.observers import ObservedCall, SessionObserver

#: turn latency: from the committed user turn to the first reply audio, 100 ms to 5 s
TURN_LATENCY_BUCKETS_S = (
    0.1,
    0.2,
    0.3,
    0.4,
    0.5,
    0.6,
    0.75,
    1.0,
    1.25,
    1.5,
    2.0,
    2.5,
    3.0,
    4.0,
    5.0,
)
#: how late the event loop wakes a periodic sleep: 1 ms (healthy) to 1 s (stalled)
LOOP_LAG_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
MAX_LABEL_VALUES = 32
OTHER = "other"


class BoundedLabels:
    """Passes the first ``limit`` distinct values through, maps later newcomers to ``other``."""

    def __init__(self, limit: int = MAX_LABEL_VALUES) -> None:
        self._limit = limit
        self._seen: set[str] = set()

    def __call__(self, value: str) -> str:
        value = value or "unknown"
        if value in self._seen:
            return value
        if len(self._seen) >= self._limit:
            return OTHER
        self._seen.add(value)
        return value


class _LiveCalls(Collector):
    """``bridge_active_calls{transport}``, read from the switchboard when scraped."""

    def __init__(self, counts: Callable[[], dict[str, int]], transports: Iterable[str]) -> None:
        self._counts = counts
        self._transports = tuple(transports)

    def collect(self) -> Iterator[Metric]:
        gauge = GaugeMetricFamily(
            "bridge_active_calls", "Calls and toy sessions in progress.", labels=["transport"]
        )
        counts = self._counts()
        for transport in sorted({*self._transports, *counts}):
            gauge.add_metric([transport], counts.get(transport, 0))
        yield gauge


class _Gauge(Collector):
    """One unlabelled gauge, read from ``value`` when scraped."""

    def __init__(self, name: str, documentation: str, value: Callable[[], float]) -> None:
        self._name = name
        self._documentation = documentation
        self._value = value

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(self._name, self._documentation, value=self._value())


class _Failovers(Collector):
    """``bridge_stage_failovers_total{stage,provider,backup}``: calls moved to a backup
    stage, read from the cascade's count when scraped."""

    def __init__(self, counts: Callable[[], Mapping[tuple[str, str, str], int]]) -> None:
        self._counts = counts

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(
            "bridge_stage_failovers",
            "Calls whose speech-to-text, chat or speech stage failed and moved to its backup, "
            "by stage, failed provider and backup.",
            labels=["stage", "provider", "backup"],
        )
        for labels, count in sorted(self._counts().items()):
            family.add_metric(list(labels), count)
        yield family


class Metrics:
    def __init__(
        self, live_counts: Callable[[], dict[str, int]], transports: Iterable[str]
    ) -> None:
        self.registry = registry = CollectorRegistry(auto_describe=True)
        registry.register(_LiveCalls(live_counts, transports))
        self.calls_ended = Counter(
            "bridge_calls_ended",
            "Calls and toy sessions that ended, by transport and end reason.",
            ["transport", "reason"],
            registry=registry,
        )
        self.turn_latency = Histogram(
            "bridge_turn_latency_seconds",
            "End of the user's turn (as committed) to the first reply audio sent.",
            ["transport"],
            buckets=TURN_LATENCY_BUCKETS_S,
            registry=registry,
        )
        self.barge_ins = Counter(
            "bridge_barge_ins",
            "Replies cut off by the caller (real interruptions).",
            ["transport"],
            registry=registry,
        )
        self.false_interruptions = Counter(
            "bridge_false_interruptions",
            "Sounds over a reply judged not to be interruptions (noise, a cough, an "
            "'uh-huh'): the reply went on.",
            ["transport"],
            registry=registry,
        )
        self.agent_errors = Counter(
            "bridge_agent_errors",
            "Agent turns that failed, by exception kind.",
            ["transport", "kind"],
            registry=registry,
        )
        self.rejected_total = Counter(
            "bridge_rejected_connections",
            "Webhooks and upgrades refused, by route and reason (limits, drain, auth).",
            ["route", "reason"],
            registry=registry,
        )
        self.loop_lag = Histogram(
            "bridge_event_loop_lag_seconds",
            "How late the event loop woke a periodic sleep (time other work held it).",
            buckets=LOOP_LAG_BUCKETS_S,
            registry=registry,
        )
        self.end_reason_label = BoundedLabels()
        self.error_kind_label = BoundedLabels()
        self._reject_reasons = BoundedLabels()

    def rejected(self, route: str, reason: str) -> None:
        self.rejected_total.labels(route, self._reject_reasons(reason)).inc()

    def watch_handshakes(self, in_progress: Callable[[], int]) -> None:
        """``bridge_handshakes_in_progress``: connections whose request or upgrade is unfinished
        (bridge/server/handshakes.py); its refusals are ``rejected("handshake", ...)``."""
        self.registry.register(
            _Gauge(
                "bridge_handshakes_in_progress",
                "Connections still sending their request headers or awaiting our upgrade answer.",
                in_progress,
            )
        )

    def watch_failovers(self, counts: Callable[[], Mapping[tuple[str, str, str], int]]) -> None:
        """``bridge_stage_failovers_total``, from the cascade's count of switches."""
        self.registry.register(_Failovers(counts))

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

    def observer(self) -> MetricsObserver:
        return MetricsObserver(self)


class MetricsObserver(SessionObserver):
    """Feeds the call metrics from the session hooks (cheap: a dict lookup and an add each)."""

    def __init__(self, metrics: Metrics) -> None:
        self._m = metrics

    def on_call_ended(self, session: ObservedCall) -> None:
        reason = self._m.end_reason_label(session.end_reason)
        self._m.calls_ended.labels(session.call.transport, reason).inc()

    def on_turn_latency(self, session: ObservedCall, turn_id: int, latency_ms: float) -> None:
        self._m.turn_latency.labels(session.call.transport).observe(latency_ms / 1000)

    def on_barge_in(self, session: ObservedCall, turn_id: int, heard_ms: float) -> None:
        self._m.barge_ins.labels(session.call.transport).inc()

    def on_false_interruption(self, session: ObservedCall, turn_id: int, paused_ms: float) -> None:
        self._m.false_interruptions.labels(session.call.transport).inc()

    def on_agent_error(self, session: ObservedCall, kind: str) -> None:
        self._m.agent_errors.labels(session.call.transport, self._m.error_kind_label(kind)).inc()
