"""HTTP and WebSocket routes. Handlers stay thin: the work lives in transports and pipeline."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket

from bridge.ops.admission import RATE_LIMITED
from bridge.toys.gate import deny
from bridge.twilio import twiml
from bridge.twilio.signatures import public_origin
from transports.esp32.adapter import serve_esp32
from transports.twilio import binding
from transports.twilio.adapter import serve_twilio

if TYPE_CHECKING:
    from bridge.app import BridgeState

log = logging.getLogger("bridge.routes")

STREAM_PATH = "/stream"
ESP32_PATH = "/ws/esp32"

#: what a caller hears when we cannot take the call (capacity reached, draining, rate limit)
BUSY_MESSAGE = "Sorry, all our lines are busy right now. Please call back later."
#: WebSocket close code for "try again later" (RFC 6455 registry: 1013)
TRY_AGAIN_LATER = 1013
#: seconds a refused client is told to wait (HTTP Retry-After)
RETRY_AFTER_S = 5


def _state(conn: Request | WebSocket) -> BridgeState:
    state: BridgeState = conn.app.state.bridge
    return state


async def health(request: Request) -> Response:
    """Liveness for plain monitors: 200 and the text ``OK``."""
    return PlainTextResponse("OK")


def client_ip(conn: Request | WebSocket) -> str:
    peer = conn.client.host if conn.client else ""
    return _state(conn).admission.client_address(peer, conn.headers)


async def healthz(request: Request) -> Response:
    """Readiness: 503 with ``"draining": true`` once a drain started, so balancers move on.

    ``/health`` stays 200 while the process serves: a draining bridge is alive, and a
    liveness probe that failed now would get it killed before its calls have finished.
    """
    state = _state(request)
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
    return Response(_state(request).metrics.exposition(), media_type=CONTENT_TYPE_LATEST)


def public_host(request: Request) -> str:
    """The host Twilio reaches us at: configured, else trusted proxy headers, else Host."""
    return public_origin(request, _state(request).settings)[1]


MAX_WEBHOOK_BODY_BYTES = 64 * 1024


async def webhook_params(request: Request) -> list[tuple[str, str]]:
    """Twilio's form fields, untouched: empty values and repeated keys are kept in order."""
    if request.method != "POST":
        return list(request.query_params.multi_items())
    body = await request.body()
    if len(body) > MAX_WEBHOOK_BODY_BYTES:
        raise ValueError("webhook body too large")
    return parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)


def forbidden() -> Response:
    return PlainTextResponse("invalid or missing X-Twilio-Signature", status_code=403)


async def twiml_webhook(request: Request) -> Response:
    """Twilio's voice webhook: connect the call to our ``/stream`` WebSocket.

    A call we cannot take (capacity, drain, rate limit) hears a short spoken apology and is
    hung up, with HTTP 200: whatever else we answered, Twilio would play its own generic
    error to a real caller. Admission comes first because it is the cheapest answer to a flood.
    With an auth token, an unsigned or badly signed request then gets 403 before anything else
    happens, and the ``<Stream>`` carries a token bound to this CallSid (see
    transports/twilio/binding.py).
    """
    state = _state(request)
    refusal = state.admission.refusal("twilio", client_ip(request))
    if refusal is not None:
        state.metrics.rejected("twiml", refusal)
        return Response(twiml.say_and_hang_up(BUSY_MESSAGE), media_type="text/xml")
    signatures = state.signatures
    if signatures.enabled and not request.headers.get("x-twilio-signature"):
        state.metrics.rejected("twiml", "auth")
        return forbidden()
    try:
        pairs = await webhook_params(request)
    except ValueError as exc:
        return PlainTextResponse(str(exc), status_code=413)
    # a GET's parameters are in the query string, which the signed URL already covers
    signed = pairs if request.method == "POST" else []
    if signatures.enabled and not signatures.check_webhook(request, state.settings, signed):
        log.warning("webhook rejected: bad X-Twilio-Signature from %s", client_ip(request))
        state.metrics.rejected("twiml", "auth")
        return forbidden()
    form = dict(pairs)
    params = {"from": form.get("From", ""), "to": form.get("To", "")}
    persona = request.query_params.get("persona", "")
    if persona:  # a webhook URL such as /twiml?persona=pirate picks the persona per number
        params["persona"] = persona
    tokens = state.twilio.stream_tokens
    if tokens is not None:
        call_sid = form.get("CallSid", "")
        if not call_sid:
            return PlainTextResponse("CallSid missing", status_code=400)
        params[binding.PARAMETER] = tokens.mint(call_sid, time.time())
    body = twiml.connect_stream(
        f"wss://{public_host(request)}{STREAM_PATH}", params, state.settings.twilio_after_stream
    )
    return Response(body, media_type="text/xml")


async def upgrade_required(request: Request) -> Response:
    """A plain HTTP request to the WebSocket path: tell the client to upgrade."""
    return PlainTextResponse(
        "WebSocket endpoint: upgrade required", status_code=426, headers={"Upgrade": "websocket"}
    )


async def stream_ws(ws: WebSocket) -> None:
    """A Twilio stream. A flood is refused before the 101 (HTTP 429: cheapest); a stream over
    capacity or during a drain is accepted and closed with 1013, which Twilio logs as 31921
    "closed by the server" rather than 31920, a handshake failure that reads like a
    misconfigured URL or signature."""
    state = _state(ws)
    refusal = state.admission.refusal("twilio", client_ip(ws))
    if refusal is not None:
        state.metrics.rejected("stream", refusal)
        if refusal == RATE_LIMITED:
            await deny(ws, 429, "too many connections", RETRY_AFTER_S)
        else:
            await ws.accept()
            await ws.close(TRY_AGAIN_LATER, "busy, try again later")
        return
    if state.signatures.enabled and not state.signatures.check_stream(ws, state.settings):
        # an HTTP answer to the upgrade, never a 101 then a close: nothing is started
        state.metrics.rejected("stream", "auth")
        log.warning("stream upgrade rejected: bad X-Twilio-Signature from %s", client_ip(ws))
        await ws.send_denial_response(forbidden())
        return
    with state.admission.slot("twilio"):
        await serve_twilio(ws, state.switchboard, state.twilio)


async def esp32_ws(ws: WebSocket) -> None:
    """A toy. Every refusal is an HTTP answer before the 101 (429 rate, 503 capacity/drain),
    never accept-then-close: the device retries every second forever (spec C9, C10), a 503
    costs no TLS-to-WebSocket upgrade, no ``auth`` frame and no session, and the firmware
    treats both the same way (it reconnects a second later)."""
    state = _state(ws)
    ip = client_ip(ws)
    refusal = state.admission.refusal("esp32", ip)
    if refusal is not None:
        state.metrics.rejected("esp32", refusal)
        status = 429 if refusal == RATE_LIMITED else 503
        await deny(ws, status, "too many connections" if status == 429 else "busy", RETRY_AFTER_S)
        return
    with state.admission.slot("esp32"):
        await _serve_toy(ws, state, ip)


async def _serve_toy(ws: WebSocket, state: BridgeState, ip: str) -> None:
    gate = state.devices
    device = await gate.admit(ws, ip)
    if device is None:
        return
    failed = False

    def agent_failed() -> None:
        nonlocal failed
        failed = True
        gate.backoff.failure(device.identity)

    await serve_esp32(
        ws,
        device,
        state.switchboard,
        state.esp32,
        gate.subprotocol(ws),
        on_agent_failure=agent_failed,
    )
    if not failed:
        gate.backoff.success(device.identity)


WsHandler = Callable[[WebSocket], Awaitable[None]]


def websocket_routes(esp32_root_alias: bool = False) -> dict[str, WsHandler]:
    """The media WebSockets, served on the fast path (bridge/fastpath.py)."""
    paths: dict[str, WsHandler] = {STREAM_PATH: stream_ws, ESP32_PATH: esp32_ws}
    if esp32_root_alias:
        paths["/"] = esp32_ws
    return paths


def routes(esp32_root_alias: bool = False) -> list[BaseRoute]:
    ws_paths = websocket_routes(esp32_root_alias)
    http = [
        Route("/health", health, methods=["GET", "HEAD"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/twiml", twiml_webhook, methods=["GET", "POST"]),
        Route(STREAM_PATH, upgrade_required, methods=["GET", "POST", "HEAD"]),
        Route(ESP32_PATH, upgrade_required, methods=["GET", "POST", "HEAD"]),
    ]
    return http + [WebSocketRoute(path, handler) for path, handler in ws_paths.items()]
