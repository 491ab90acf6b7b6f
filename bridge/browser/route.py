"""The talk page: ``/talk`` (the page), its static files, ``/talk/personas`` and the
``/ws/browser`` socket it speaks over.

Who may talk: whoever holds a token minted with ``BRIDGE_TALK_SECRET`` (``bridge
talk-link``; it may fix the persona); without one, in development, anyone on a private or
loopback address (a developer's laptop, an office kiosk); in production, nobody. The page and
the persona list answer the same question as the socket, so a refused visitor learns why
before the microphone is asked for.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from starlette.requests import HTTPConnection, Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from starlette.websockets import WebSocket

from bridge.browser.tokens import TalkTokens, TokenError
from bridge.ops.admission import RATE_LIMITED
from bridge.refusals import RETRY_AFTER_S, deny
from bridge.state import client_ip, state_of
from bridge.toys.credentials.handshake import is_private_source
from transports.browser.adapter import BrowserVisitor, serve_browser

log = logging.getLogger("bridge.browser")

TALK_PATH = "/talk"
PERSONAS_PATH = "/talk/personas"
STATIC_PATH = "/talk/static"
BROWSER_WS_PATH = "/ws/browser"
STATIC_DIR = Path(__file__).parent / "static"


def talk_tokens(secret: str) -> TalkTokens | None:
    return TalkTokens(secret) if secret else None


def visitor_of(conn: HTTPConnection) -> BrowserVisitor | str:
    """Who this is, or why they may not talk."""
    state = state_of(conn)
    personas = frozenset(state.personas.personas)
    token = conn.query_params.get("token", "")
    if token:
        tokens = talk_tokens(state.settings.talk_secret)
        if tokens is None:
            return "tokens are not accepted here (no BRIDGE_TALK_SECRET)"
        try:
            claims = tokens.verify(token, time.time())
        except TokenError as exc:
            return str(exc)
        return BrowserVisitor(claims.name or "token holder", claims.persona, personas)
    if state.settings.production:
        return "a token is required (bridge talk-link)"
    ip = client_ip(conn)
    if not is_private_source(ip):
        return "without a token, the talk page opens from private addresses only"
    return BrowserVisitor(ip, "", personas)


async def talk_page(request: Request) -> Response:
    visitor = visitor_of(request)
    if isinstance(visitor, str):
        return PlainTextResponse(f"talk page: {visitor}", status_code=403)
    return FileResponse(STATIC_DIR / "talk.html", headers={"Cache-Control": "no-store"})


async def talk_personas(request: Request) -> Response:
    """The persona picker's choices (a token that fixes one offers only that one)."""
    visitor = visitor_of(request)
    if isinstance(visitor, str):
        return JSONResponse({"error": visitor}, status_code=403)
    names = [visitor.persona] if visitor.persona else ["", *sorted(visitor.personas)]
    return JSONResponse({"personas": names, "fixed": bool(visitor.persona)})


async def browser_ws(ws: WebSocket) -> None:
    """A talk page. Refusals are HTTP answers before the 101: 429 (rate), 503 (capacity,
    drain), 403 (no token where one is needed); the page shows the reason."""
    state = state_of(ws)
    ip = client_ip(ws)
    refusal = state.admission.refusal("browser", ip)
    if refusal is not None:
        state.metrics.rejected("browser", refusal)
        status = 429 if refusal == RATE_LIMITED else 503
        await deny(ws, status, "too many connections" if status == 429 else "busy", RETRY_AFTER_S)
        return
    visitor = visitor_of(ws)
    if isinstance(visitor, str):
        state.metrics.rejected("browser", "auth")
        log.warning("talk page refused from %s: %s", ip, visitor)
        await ws.send_denial_response(PlainTextResponse(visitor, status_code=403))
        return
    with state.admission.slot("browser"):
        await serve_browser(ws, state.switchboard, visitor)
