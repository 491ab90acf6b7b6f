"""``POST /xiaozhi/ota/``: a xiaozhi device's provisioning request, answered with where to talk.

The firmware asks its OTA URL at every boot (headers ``Device-Id`` = its MAC, ``Client-Id``
= a UUID, a JSON description of the board) and keeps the ``websocket`` URL and token it gets.
The token is the toys' credential: a JWT the bridge mints (``BRIDGE_ESP32_JWT_SECRET``) for a
device whose MAC the devices file binds to an identity (a device entry or a user), or none in
development without credentials (private addresses only, like the socket). Anyone else is
refused 403: handing a token to an unknown board would open the door to anyone. Note that a
MAC is no secret: whoever knows a registered one can ask for its token (see the report's
hooks: activation codes would close that).
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import jwt
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from bridge.state import client_ip, state_of
from bridge.toys.credentials import DEFAULT_AUDIENCE, JWT_ALGORITHM, normalize_mac
from bridge.toys.credentials.handshake import is_private_source
from bridge.xiaozhi.route import XIAOZHI_PATH

log = logging.getLogger("bridge.xiaozhi")

OTA_PATH = "/xiaozhi/ota/"
MAX_BODY_BYTES = 16 * 1024


async def ota(request: Request) -> Response:
    state = state_of(request)
    settings = state.settings
    mac = normalize_mac(request.headers.get("device-id"))
    if mac is None:
        return _error(400, "Device-Id must be the device's MAC")
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        return _error(413, "board description too large")
    version = _firmware_version(body)
    authenticator = state.devices.authenticator
    if authenticator.insecure_dev and is_private_source(client_ip(request)):
        token = ""  # development: the socket admits private addresses without one
    elif settings.esp32_jwt_secret and (sub := authenticator.registered_sub(mac)) is not None:
        now_s = int(time.time())
        audience = settings.esp32_jwt_audience or DEFAULT_AUDIENCE
        claims: dict[str, Any] = {"sub": sub, "aud": audience, "iat": now_s}
        token = jwt.encode(claims, settings.esp32_jwt_secret, algorithm=JWT_ALGORITHM)
    else:
        log.warning("OTA refused for an unregistered device %s", mac)
        return _error(403, "unknown device")
    now_ms = int(time.time() * 1000)
    return JSONResponse(
        {
            "websocket": {"url": _socket_url(request, settings.public_host), "token": token},
            "server_time": {"timestamp": now_ms, "timezone_offset": 0},
            "firmware": {"version": version, "url": ""},
        }
    )


def _socket_url(request: Request, public_host: str) -> str:
    """``wss://<public host>/xiaozhi/v1/``; without one configured, the request's own host."""
    if public_host:
        return f"wss://{public_host}{XIAOZHI_PATH}"
    scheme = "wss" if request.url.scheme == "https" else "ws"
    return f"{scheme}://{request.headers.get('host', 'localhost')}{XIAOZHI_PATH}"


def _firmware_version(body: bytes) -> str:
    """The version the board reported (``application.version``), so no update is offered."""
    try:
        board: Any = json.loads(body) if body else {}
    except ValueError:
        return ""
    app = board.get("application") if isinstance(board, dict) else None
    version = app.get("version") if isinstance(app, dict) else None
    return version[:64] if isinstance(version, str) else ""


def _error(status: int, message: str) -> Response:
    return JSONResponse({"error": message}, status_code=status)
