"""The route table: every HTTP and WebSocket path, and which module serves it.

Handlers stay thin and live with their concern (``bridge/twilio``, ``bridge/toys``,
``bridge/ops``); the work lives in transports and pipeline.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket

from bridge.browser.route import (
    BROWSER_WS_PATH,
    PERSONAS_PATH,
    STATIC_DIR,
    STATIC_PATH,
    TALK_PATH,
    browser_ws,
    talk_page,
    talk_personas,
)
from bridge.ops.health import health, healthz, metrics
from bridge.toys.route import ESP32_PATH, esp32_ws
from bridge.twilio.callbacks import amd_callback, dial_result, status_callback
from bridge.twilio.paths import AMD_PATH, DIAL_RESULT_PATH, STATUS_PATH, STREAM_PATH, TWIML_PATH
from bridge.twilio.routes import stream_ws, twiml_webhook
from bridge.xiaozhi.ota import OTA_PATH, ota
from bridge.xiaozhi.route import XIAOZHI_PATH, xiaozhi_ws

__all__ = ["ESP32_PATH", "STREAM_PATH", "routes", "websocket_routes"]

WsHandler = Callable[[WebSocket], Awaitable[None]]


async def upgrade_required(request: Request) -> Response:
    """A plain HTTP request to a WebSocket path: tell the client to upgrade."""
    return PlainTextResponse(
        "WebSocket endpoint: upgrade required", status_code=426, headers={"Upgrade": "websocket"}
    )


def websocket_routes(esp32_root_alias: bool = False) -> dict[str, WsHandler]:
    """The media WebSockets, served on the fast path (bridge/server/fastpath.py)."""
    paths: dict[str, WsHandler] = {
        STREAM_PATH: stream_ws,
        ESP32_PATH: esp32_ws,
        BROWSER_WS_PATH: browser_ws,
        XIAOZHI_PATH: xiaozhi_ws,
    }
    if esp32_root_alias:
        paths["/"] = esp32_ws
    return paths


def routes(esp32_root_alias: bool = False) -> list[BaseRoute]:
    ws_paths = websocket_routes(esp32_root_alias)
    http = [
        Route("/health", health, methods=["GET", "HEAD"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route(TWIML_PATH, twiml_webhook, methods=["GET", "POST"]),
        # the number's status callback may be set to GET in the console; ours are POST
        Route(STATUS_PATH, status_callback, methods=["GET", "POST"]),
        Route(AMD_PATH, amd_callback, methods=["POST"]),
        Route(DIAL_RESULT_PATH, dial_result, methods=["POST"]),
        Route(STREAM_PATH, upgrade_required, methods=["GET", "POST", "HEAD"]),
        Route(ESP32_PATH, upgrade_required, methods=["GET", "POST", "HEAD"]),
        Route(BROWSER_WS_PATH, upgrade_required, methods=["GET", "POST", "HEAD"]),
        Route(XIAOZHI_PATH, upgrade_required, methods=["GET", "HEAD"]),
        Route(OTA_PATH, ota, methods=["POST"]),
        Route(TALK_PATH, talk_page, methods=["GET"]),
        Route(PERSONAS_PATH, talk_personas, methods=["GET"]),
        Mount(STATIC_PATH, StaticFiles(directory=STATIC_DIR), name="talk-static"),
    ]
    return http + [WebSocketRoute(path, handler) for path, handler in ws_paths.items()]
