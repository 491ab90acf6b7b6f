"""HTTP and WebSocket routes. Handlers stay thin: the work lives in transports and pipeline."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket

from bridge import twiml
from transports.esp32.adapter import serve_esp32
from transports.twilio.adapter import serve_twilio

if TYPE_CHECKING:
    from bridge.app import BridgeState

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
        }
    )


def public_host(request: Request) -> str:
    """The host Twilio reaches us at: configured, else trusted proxy headers, else Host."""
    state = _state(request)
    if state.settings.public_host:
        return state.settings.public_host
    if state.settings.trust_forwarded:
        forwarded = request.headers.get("x-forwarded-host", "").split(",")[0].strip()
        if forwarded:
            return forwarded
    return request.headers.get("host", "localhost")


MAX_WEBHOOK_BODY_BYTES = 64 * 1024


async def webhook_params(request: Request) -> list[tuple[str, str]]:
    """Twilio's form fields, untouched: empty values and repeated keys are kept in order."""
    if request.method != "POST":
        return list(request.query_params.multi_items())
    body = await request.body()
    if len(body) > MAX_WEBHOOK_BODY_BYTES:
        raise ValueError("webhook body too large")
    return parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)


async def twiml_webhook(request: Request) -> Response:
    """Twilio's voice webhook: connect the call to our ``/stream`` WebSocket."""
    try:
        form = dict(await webhook_params(request))
    except ValueError as exc:
        return PlainTextResponse(str(exc), status_code=413)
    params = {"from": form.get("From", ""), "to": form.get("To", "")}
    persona = request.query_params.get("persona", "")
    if persona:  # a webhook URL such as /twiml?persona=pirate picks the persona per number
        params["persona"] = persona
    body = twiml.connect_stream(f"wss://{public_host(request)}{STREAM_PATH}", params)
    return Response(body, media_type="text/xml")


async def upgrade_required(request: Request) -> Response:
    """A plain HTTP request to the WebSocket path: tell the client to upgrade."""
    return PlainTextResponse(
        "WebSocket endpoint: upgrade required", status_code=426, headers={"Upgrade": "websocket"}
    )


async def stream_ws(ws: WebSocket) -> None:
    state = _state(ws)
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
