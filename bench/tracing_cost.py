"""What OpenTelemetry tracing costs a call, off and on (issue 18, part 4).

Off (no ``OTEL_EXPORTER_OTLP_ENDPOINT``), the app adds no observer and imports no SDK, so a
call runs exactly the code it ran before tracing existed; what is left to measure is the check
at start-up and the modules loaded. This prints:

* the start-up check (``tracing_from_env`` with the variables unset), per call of it;
* the hooks of one call (start, turns of user turn, two transcripts and a latency, end)
  dispatched through the app's observer group as built with tracing off, then with the
  tracer added (spans built and handed to a batch processor whose exporter drops them, so
  the figure is the bridge's own work, not a collector's);
* OpenTelemetry modules loaded by ``import bridge.app`` in a fresh interpreter, and the
  import time of the SDK and exporter that tracing on adds.

    python -m bench.tracing_cost --calls 2000 --turns 10
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import cast

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from bridge.browser.feed import PageFeed
from bridge.ops.metrics import Metrics
from bridge.ops.traces import CallTracer
from bridge.ops.tracing import tracing_from_env
from bridge.xiaozhi.captions import DeviceCaptions
from pipeline.agents.base import CallInfo
from pipeline.audio import ULAW_8K
from pipeline.observers import ObservedCall, Observers, SessionStats


class _Dropped(SpanExporter):
    """Takes every batch and keeps nothing: the cost measured is the span building."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


class _Session:
    """What the observers read of a session (the port is no browser's or device's)."""

    def __init__(self, n: int) -> None:
        self.call = CallInfo(f"CA{n:032x}", "twilio", ULAW_8K, caller="********1111")
        self.port = object()
        self.stats = SessionStats()
        self.end_reason = "caller_hangup"


def one_call(observers: Observers, session: ObservedCall, turns: int) -> None:
    observers.on_session_created(session)
    observers.on_call_started(session)
    for turn in range(1, turns + 1):
        observers.on_user_turn(session, turn, 1200.0)
        observers.on_transcript(session, turn, "user", "what time does the shop open")
        observers.on_turn_latency(session, turn, 640.0)
        observers.on_transcript(session, turn, "agent", "it opens at nine in the morning")
    observers.on_call_ended(session)


def app_group(tracer: CallTracer | None) -> Observers:
    """The observers bridge/app.py builds (call records aside: they queue to a thread)."""
    group = Observers()
    group.add(Metrics(lambda: {}, ("twilio",)).observer())
    group.add(PageFeed())
    group.add(DeviceCaptions())
    if tracer is not None:
        group.add(tracer)
    return group


def per_call_us(group: Observers, calls: int, turns: int, runs: int) -> float:
    """The median over ``runs`` of the mean time per call's hooks, in microseconds."""
    sessions = [cast(ObservedCall, _Session(n)) for n in range(calls)]
    results = []
    for _ in range(runs):
        began = time.perf_counter()
        for session in sessions:
            one_call(group, session, turns)
        results.append((time.perf_counter() - began) / calls * 1e6)
    return statistics.median(results)


def startup_check_ns(repeat: int = 100_000) -> float:
    environ: dict[str, str] = {}
    began = time.perf_counter_ns()
    for _ in range(repeat):
        tracing_from_env(environ)
    return (time.perf_counter_ns() - began) / repeat


IMPORTS = """
import sys, time, json
began = time.perf_counter()
import bridge.app
app_s = time.perf_counter() - began
prefixes = ("opentelemetry.sdk", "opentelemetry.exporter")
loaded = sorted(m for m in sys.modules if m.startswith(prefixes))
began = time.perf_counter()
import bridge.ops.traces
print(json.dumps({"app_s": app_s, "otel_loaded_by_app": loaded,
                  "sdk_import_s": time.perf_counter() - began}))
"""


def imports() -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-c", IMPORTS], capture_output=True, text=True, check=True
    )
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--turns", type=int, default=10)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(_Dropped()))
    off = per_call_us(app_group(None), args.calls, args.turns, args.runs)
    on = per_call_us(
        app_group(CallTracer(provider.get_tracer("bench"))), args.calls, args.turns, args.runs
    )
    provider.shutdown()
    found = imports()
    print(f"start-up check, tracing off: {startup_check_ns():.0f} ns, once per app")
    print(
        f"hooks of one call ({args.turns} turns), app's observers: off {off:.1f} us, "
        f"on {on:.1f} us (+{on - off:.1f} us, {(on - off) / args.turns:.1f} us per turn)"
    )
    print(
        "OpenTelemetry SDK/exporter modules loaded by `import bridge.app`: "
        f"{found['otel_loaded_by_app']}"
    )
    print(
        f"import of the SDK and exporter when on: {float(str(found['sdk_import_s'])) * 1000:.0f} ms"
    )


if __name__ == "__main__":
    main()
