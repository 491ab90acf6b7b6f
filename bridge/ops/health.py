"""What monitors ask: liveness (``/health``), readiness (``/healthz``) and ``/metrics``."""

from __future__ import annotations

import time

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from bridge.state import state_of


async def health(request: Request) -> Response:
    """Liveness for plain monitors: 200 and the text ``OK``."""
    return PlainTextResponse("OK")


async def healthz(request: Request) -> Response:
    """Readiness: 503 with ``"draining": true`` once a drain started, so balancers move on.

    ``/health`` stays 200 while the process serves: a draining bridge is alive, and a
    liveness probe that failed now would get it killed before its calls have finished.
    """
    state = state_of(request)
    counts = state.switchboard.counts()
    draining = state.drainer.draining
    return JSONResponse(
        {
            "ok": not draining,
            "draining": draining,
            "version": state.version,
            "uptime_s": round(time.monotonic() - state.started_at, 1),
            "agent": state.switchboard.factory.name,
            "active_calls": {"twilio": counts.get("twilio", 0), "esp32": counts.get("esp32", 0)},
            "env": state.settings.env,
            "twilio_auth": "enabled" if state.signatures.enabled else "disabled",
            "warnings": state.warnings,
        },
        status_code=503 if draining else 200,
    )


async def metrics(request: Request) -> Response:
    """Prometheus text exposition of this app's registry."""
    return Response(state_of(request).metrics.exposition(), media_type=CONTENT_TYPE_LATEST)
