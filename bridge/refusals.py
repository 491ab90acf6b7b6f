"""How the bridge says no: the answers every route shares when it refuses a call.

A refusal is an HTTP answer to the upgrade (:func:`deny`: 401, 429, 503) whenever the wire
allows it, never a 101 followed by a close; Twilio's stream is the exception (see
``bridge/twilio/routes.py``), and a caller refused at the webhook hears :data:`BUSY_MESSAGE`.
"""

from __future__ import annotations

from starlette.responses import PlainTextResponse
from starlette.websockets import WebSocket

#: what a caller hears when we cannot take the call (capacity reached, draining, rate limit)
BUSY_MESSAGE = "Sorry, all our lines are busy right now. Please call back later."
#: WebSocket close code for "try again later" (RFC 6455 registry: 1013)
TRY_AGAIN_LATER = 1013
#: seconds a refused client is told to wait (HTTP Retry-After)
RETRY_AFTER_S = 5


async def deny(ws: WebSocket, status: int, text: str, retry_after_s: int | None = None) -> None:
    """Refuse an upgrade with a plain HTTP answer: never a 101 followed by a close."""
    headers = {"Retry-After": str(retry_after_s)} if retry_after_s is not None else None
    await ws.send_denial_response(PlainTextResponse(text, status_code=status, headers=headers))
