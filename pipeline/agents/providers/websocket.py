"""What every streaming provider stage shares: how its socket opens, and how its errors read.

The streaming stages (Deepgram listen and speak, ElevenLabs stream-input) each hold one
WebSocket per call. The handshake and the ways a socket fails are the same for all of them,
and so is the verdict the cascade's retries need (``pipeline/agents/retry.py``): refused,
reset, a 5xx or a 429 at the handshake, a drop mid-stream and a stall are worth another try
within the turn's deadline; a 401/403 (a bad key) or a 400 (a query the provider refuses)
will fail the same way every time, so the operator is told once, loudly.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from urllib.parse import urlsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from pipeline.agents.retry import Retry

log = logging.getLogger("pipeline.agents.providers")

#: close codes a provider uses for "your request is wrong" (policy, bad data): permanent
PERMANENT_CLOSE_CODES = frozenset({1002, 1003, 1007, 1008, 4001, 4003, 4008})
#: biggest message a provider may send (a second of 48 kHz PCM is under 100 kB)
MAX_MESSAGE_BYTES = 4 * 1024 * 1024


class StreamError(Exception):
    """The provider said, in band, that something went wrong (an ``Error`` message, a close
    with a code of its own)."""

    def __init__(self, message: str, *, transient: bool, status: int = 0) -> None:
        super().__init__(message)
        self.transient = transient
        #: an HTTP-like status when the provider gave one (401, 429), else 0
        self.status = status


async def open_socket(
    url: str, headers: Mapping[str, str], timeout_s: float, name: str
) -> ClientConnection:
    """Connect with our headers, within ``timeout_s``; the library's keepalive pings are
    off (each provider has its own keepalive message, and a ping on a busy call only adds
    latency to a socket that is already known to be alive)."""
    return await connect(
        url,
        additional_headers=dict(headers),
        open_timeout=timeout_s,
        close_timeout=1.0,
        ping_interval=None,
        max_size=MAX_MESSAGE_BYTES,
        compression=None,
        user_agent_header=f"voice-bridge ({name})",
    )


def handshake_status(exc: BaseException) -> int:
    """The HTTP status a refused handshake returned, else 0."""
    return exc.response.status_code if isinstance(exc, InvalidStatus) else 0


def classify(exc: Exception) -> Retry | None:
    """Transient (worth another attempt) or permanent, for any streaming stage's error."""
    if isinstance(exc, StreamError):
        return Retry() if exc.transient else None
    if isinstance(exc, InvalidStatus):
        status = exc.response.status_code
        if status == 429:
            return Retry(after_s=_retry_after_s(exc))
        return Retry() if status >= 500 or status == 408 else None
    if isinstance(exc, ConnectionClosed):
        code = exc.rcvd.code if exc.rcvd is not None else 1006
        return None if code in PERMANENT_CLOSE_CODES else Retry()
    if isinstance(exc, (InvalidHandshake, OSError, TimeoutError, EOFError)):
        return Retry()
    return None


def _retry_after_s(exc: InvalidStatus) -> float | None:
    value = exc.response.headers.get("Retry-After", "")
    try:
        return float(value)
    except ValueError:
        return None


def describe(exc: BaseException) -> str:
    """One line for a log: the status or close code, not a traceback."""
    status = handshake_status(exc)
    if status:
        return f"HTTP {status} at the handshake"
    if isinstance(exc, ConnectionClosed):
        code = exc.rcvd.code if exc.rcvd is not None else 1006
        reason = exc.rcvd.reason if exc.rcvd is not None else ""
        return f"closed {code} {reason}".rstrip()
    if isinstance(exc, TimeoutError):
        return "timed out"
    return f"{type(exc).__name__}: {exc}"


class PermanentReporter:
    """Logs each kind of permanent failure of one provider once per process: a bad key fails
    every turn of every call, and one clear line is what the operator needs, not thousands."""

    def __init__(self, provider: str, key_setting: str) -> None:
        self.provider = provider
        self.key_setting = key_setting
        self._seen: set[tuple[str, int]] = set()

    def report(self, kind: str, where: str, exc: Exception) -> None:
        status = handshake_status(exc) or (exc.status if isinstance(exc, StreamError) else 0)
        if (kind, status) in self._seen:
            return
        self._seen.add((kind, status))
        if status in (401, 403):
            log.error(
                "%s %s stage at %s rejected the credentials (%s). Check %s; every turn that "
                "needs it will fail until it is fixed.",
                self.provider,
                kind,
                where,
                describe(exc),
                self.key_setting,
            )
        else:
            log.error(
                "%s %s stage at %s failed permanently (%s). Check the model and voice "
                "settings; this error is logged once.",
                self.provider,
                kind,
                where,
                describe(exc),
            )


def origin(url: str, setting: str) -> str:
    """``scheme://host[:port]`` of an override, checked: anything more is refused, so an
    operator who pasted a whole URL learns it at start-up, not from a 404 on a call."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("ws", "wss") or not parts.netloc:
        raise ValueError(f"{setting}={url!r}: expected ws://host:port or wss://host")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(
            f"{setting}={url!r}: give only the scheme, host and port; the paths are the "
            "provider's own"
        )
    return f"{parts.scheme}://{parts.netloc}"
