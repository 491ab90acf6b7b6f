"""Opening the Realtime WebSocket: one handshake, and retrying it with backoff to a deadline.

Failures are sorted by what an operator can do about them. 401/403 means the key is wrong: no
retry can help, so it fails at once with a message naming the setting. 429 and 5xx, timeouts
and refused connections are transient: retried with capped exponential backoff until the
reconnect deadline.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidHandshake, InvalidStatus

from pipeline.agents.providers.websocket import describe
from pipeline.agents.realtime.config import RealtimeConfig

log = logging.getLogger("pipeline.agents.realtime")

FIRST_BACKOFF_S = 0.2
MAX_BACKOFF_S = 2.0
#: Realtime events carry base64 audio; a long reply's delta can be large, a session.created
#: larger still. Bounded, but far above anything the API sends.
MAX_EVENT_BYTES = 16 * 1024 * 1024


class RealtimeAuthError(Exception):
    """The API rejected our credentials: an operator error, never retried."""


class RealtimeUnavailable(Exception):
    """No connection could be made before the reconnect deadline."""


async def open_once(config: RealtimeConfig) -> ClientConnection:
    """One handshake; raises RealtimeAuthError on 401/403, other errors as they come."""
    headers = {"Authorization": f"Bearer {config.api_key}"}
    try:
        return await connect(
            config.endpoint(),
            additional_headers=headers,
            open_timeout=config.connect_timeout_s,
            max_size=MAX_EVENT_BYTES,
            ping_interval=20,
            ping_timeout=20,
            close_timeout=1,
        )
    except InvalidStatus as exc:
        status = exc.response.status_code
        if status in (401, 403):
            raise RealtimeAuthError(
                f"OpenAI Realtime refused the API key (HTTP {status}); check "
                "BRIDGE_OPENAI_API_KEY / OPENAI_API_KEY and the key's project permissions"
            ) from None
        raise


async def open_with_retry(config: RealtimeConfig, extra: dict[str, Any]) -> ClientConnection:
    """Retry transient failures with backoff until ``reconnect_deadline_s`` has passed."""
    deadline = time.monotonic() + config.reconnect_deadline_s
    backoff_s = FIRST_BACKOFF_S
    attempt = 0
    while True:
        attempt += 1
        try:
            return await open_once(config)
        except RealtimeAuthError:
            raise
        except (OSError, TimeoutError, InvalidHandshake) as exc:
            left_s = deadline - time.monotonic()
            if left_s <= 0:
                raise RealtimeUnavailable(
                    f"no Realtime connection after {attempt} attempts: {describe(exc)}"
                ) from None
            log.warning(
                "Realtime connect attempt %d failed: %s; retrying in %.1f s",
                attempt,
                describe(exc),
                min(backoff_s, left_s),
                extra=extra,
            )
            await asyncio.sleep(min(backoff_s, left_s))
            backoff_s = min(backoff_s * 2, MAX_BACKOFF_S)
