"""Whether this bridge traces its calls: decided by the standard OpenTelemetry variables.

Traces are on when ``OTEL_EXPORTER_OTLP_ENDPOINT`` or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` is
set (and ``OTEL_SDK_DISABLED`` is not ``true``), as for any OpenTelemetry-instrumented service:
operators already know these names, so they are not ``BRIDGE_`` settings. This module imports
nothing of OpenTelemetry: a bridge with tracing off never loads the SDK or the exporter (their
import alone costs tens of milliseconds and a few megabytes), and its calls pay for no observer
at all, not even an empty one. The span-making code is in :mod:`bridge.ops.traces`, imported
only when traces are on.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from pipeline.observers import SessionObserver

ENDPOINT = "OTEL_EXPORTER_OTLP_ENDPOINT"
TRACES_ENDPOINT = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
SERVICE_NAME = "OTEL_SERVICE_NAME"
SDK_DISABLED = "OTEL_SDK_DISABLED"
DEFAULT_SERVICE_NAME = "voice-bridge"


class Tracing(Protocol):
    """Traces being exported: the observer that makes the spans, and the flush at shutdown."""

    @property
    def observer(self) -> SessionObserver: ...

    async def aclose(self) -> None:
        """Export the spans still queued and stop the exporter's thread."""


def traces_endpoint(environ: Mapping[str, str]) -> str | None:
    """Where spans go (the OTLP/HTTP ``/v1/traces`` URL), or None when tracing is off.

    As the OpenTelemetry specification says: the traces-only variable is used as it is, the
    general one gets ``/v1/traces`` appended.
    """
    if environ.get(SDK_DISABLED, "").strip().lower() == "true":
        return None
    traces = environ.get(TRACES_ENDPOINT, "").strip()
    if traces:
        return traces
    base = environ.get(ENDPOINT, "").strip()
    return f"{base.rstrip('/')}/v1/traces" if base else None


def tracing_from_env(environ: Mapping[str, str]) -> Tracing | None:
    """Start exporting call and turn spans if the environment asks for it, else None."""
    endpoint = traces_endpoint(environ)
    if endpoint is None:
        return None
    from bridge.ops.traces import OtlpTracing  # the SDK loads only here, see the docstring

    service = environ.get(SERVICE_NAME, "").strip() or DEFAULT_SERVICE_NAME
    return OtlpTracing(endpoint, service)
