"""HTTP and WebSocket routes. Handlers stay thin: the work lives in transports and pipeline."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket

from bridge import twiml
from bridge.twilio_auth import public_origin
from transports.esp32.adapter import serve_esp32
from transports.twilio import binding
from transports.twilio.adapter import serve_twilio

if TYPE_CHECKING:
    from bridge.app import BridgeState

log = logging.getLogger("bridge.routes")

STREAM_PATH = "/stream"
ESP32_PATH = "/ws/esp32"


def _state(conn: Request | WebSocket) -> BridgeState:
    state: BridgeState = conn.app.state.bridge
    return state


async def health(request: Request) -> Response:
    """Liveness for plain monitors: 200 and the text ``OK``."""
    return PlainTextResponse("OK")


async def healthz(request: Request) -> Response:
    state = _state(request)
    counts = state.switchboard.counts()
    return JSONResponse(
        {
            "ok": True,
            "version": state.version,
            "uptime_s": round(time.monotonic() - state.started_at, 1),
            "agent": state.switchboard.factory.name,
            "active_calls": {"twilio": counts.get("twilio", 0), "esp32": counts.get("esp32", 0)},
            "env": state.settings.env,
            "twilio_auth": "enabled" if state.signatures.enabled else "disabled",
            "warnings": state.warnings,
        }
    )


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

    With an auth token, an unsigned or badly signed request gets 403 before anything else
    happens, and the ``<Stream>`` carries a token bound to this CallSid (see
    transports/twilio/binding.py).
    """
    state = _state(request)
    signatures = state.signatures
    if signatures.enabled and not request.headers.get("x-twilio-signature"):
        return forbidden()
    try:
        pairs = await webhook_params(request)
    except ValueError as exc:
        return PlainTextResponse(str(exc), status_code=413)
    # a GET's parameters are in the query string, which the signed URL already covers
    signed = pairs if request.method == "POST" else []
    if signatures.enabled and not signatures.check_webhook(request, state.settings, signed):
        log.warning("webhook rejected: bad X-Twilio-Signature from %s", _client_ip(request))
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


def _client_ip(conn: Request | WebSocket) -> str:
    return conn.client.host if conn.client else "?"


async def upgrade_required(request: Request) -> Response:
    """A plain HTTP request to the WebSocket path: tell the client to upgrade."""
    return PlainTextResponse(
        "WebSocket endpoint: upgrade required", status_code=426, headers={"Upgrade": "websocket"}
    )


async def stream_ws(ws: WebSocket) -> None:
    state = _state(ws)
    if state.signatures.enabled and not state.signatures.check_stream(ws, state.settings):
        # an HTTP answer to the upgrade, never a 101 then a close: nothing is started
        log.warning("stream upgrade rejected: bad X-Twilio-Signature from %s", _client_ip(ws))
        await ws.send_denial_response(forbidden())
        return
    await serve_twilio(ws, state.switchboard, state.twilio)


async def esp32_ws(ws: WebSocket) -> None:
    state = _state(ws)
    gate = state.devices
    device = await gate.admit(ws)
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
        Route("/twiml", twiml_webhook, methods=["GET", "POST"]),
        Route(STREAM_PATH, upgrade_required, methods=["GET", "POST", "HEAD"]),
        Route(ESP32_PATH, upgrade_required, methods=["GET", "POST", "HEAD"]),
    ]
    return http + [WebSocketRoute(path, handler) for path, handler in ws_paths.items()]
