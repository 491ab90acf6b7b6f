"""The process-wide OpenAI clients, one per distinct server, and what their errors mean.

Every OpenAI stage (transcription, chat, speech) of every call draws its client from one
:class:`OpenAIClients`, so stages on the same server share one connection pool.

Clients are created once per process (connection pools are shared by every call) with the
library's own retries switched off: :mod:`pipeline.agents.retry` retries within the turn's
deadline instead, which the library's schedule knows nothing about.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
from email.utils import parsedate_to_datetime
from typing import Any

import httpx2
import openai

from pipeline.agents.providers.openai.config import Endpoint
from pipeline.agents.retry import Retry

log = logging.getLogger("pipeline.agents.providers.openai")

#: our own id for a request, which OpenAI logs: "<call id>-<turn id>-<stage>" lets an operator
#: (or a support ticket) find a call's requests, and the benchmark attribute them to turns
CLIENT_REQUEST_ID = "X-Client-Request-Id"

#: how long an idle connection stays open for the next request. The library's 5 s is shorter
#: than a caller's turn, so most turns would open new connections: a TLS handshake (tens of
#: milliseconds to api.openai.com) before transcription and again before speech. A server that
#: closes first costs nothing: a closed connection is noticed before it is reused.
KEEPALIVE_S = 120.0
#: connections per server, shared by every call of the process
MAX_CONNECTIONS = 1000

#: statuses worth another try (the same set the openai library itself retries)
RETRYABLE_STATUSES = frozenset({408, 409, 429})


def _transport_errors() -> tuple[type[BaseException], ...]:
    """Errors of the HTTP layer raised while a streamed body is read (not wrapped by openai)."""
    found: list[type[BaseException]] = [TimeoutError, ConnectionError, httpx2.TransportError]
    try:
        import httpx  # older openai releases, and anything else that brings it

        found.append(httpx.TransportError)
    except ImportError:  # pragma: no cover - httpx is a dependency of ours too
        pass
    try:
        import anyio

        found.append(anyio.EndOfStream)
    except ImportError:  # pragma: no cover - anyio comes with openai
        pass
    return tuple(found)


TRANSPORT_ERRORS = _transport_errors()


def retry_after_s(headers: Any) -> float | None:
    """The server's requested wait, from ``retry-after-ms`` or ``retry-after`` (s or date)."""
    if headers is None:
        return None
    raw_ms = headers.get("retry-after-ms")
    if raw_ms:
        try:
            return float(raw_ms) / 1000
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if not raw:
        return None
    try:
        return float(raw)
    except ValueError:
        pass
    try:
        from datetime import UTC, datetime

        return max(0.0, (parsedate_to_datetime(raw) - datetime.now(UTC)).total_seconds())
    except (TypeError, ValueError):
        return None


class StreamError(openai.APIError):
    """An error event inside a streamed response (the server failed after it began)."""


def classify(exc: Exception) -> Retry | None:
    """Transient (retry) or permanent (None) for an error of the openai client."""
    if isinstance(exc, StreamError):
        return Retry()  # the request was accepted: what failed was the server, mid-answer
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        if status in RETRYABLE_STATUSES or status >= 500:
            return Retry(retry_after_s(exc.response.headers))
        return None
    if isinstance(exc, (openai.APIConnectionError, *TRANSPORT_ERRORS)):
        return Retry()
    return None


class OpenAIClients:
    """One ``AsyncOpenAI`` per distinct (base URL, key), made on first use, shared by all."""

    def __init__(self, request_timeout_s: float) -> None:
        self.request_timeout_s = request_timeout_s
        self._clients: dict[Endpoint, openai.AsyncOpenAI] = {}
        self._reported: set[tuple[str, int]] = set()

    def client(self, endpoint: Endpoint) -> openai.AsyncOpenAI:
        client = self._clients.get(endpoint)
        if client is None:
            client = self._clients[endpoint] = openai.AsyncOpenAI(
                api_key=endpoint.client_key,
                base_url=endpoint.base_url,
                max_retries=0,
                timeout=self.request_timeout_s,
                http_client=openai.DefaultAsyncHttpxClient(
                    limits=httpx2.Limits(
                        max_connections=MAX_CONNECTIONS,
                        max_keepalive_connections=MAX_CONNECTIONS,
                        keepalive_expiry=KEEPALIVE_S,
                    )
                ),
            )
            _import_resources(client)
        return client

    def report_permanent(self, stage: str, endpoint: Endpoint, exc: Exception) -> None:
        """Log a non-retryable error once per stage and status, loudly: it needs an operator."""
        status = exc.status_code if isinstance(exc, openai.APIStatusError) else 0
        key = (stage, status)
        if key in self._reported:
            return
        self._reported.add(key)
        if status in (401, 403):
            log.error(
                "OpenAI %s stage at %s rejected the API key (HTTP %d): %s. Check "
                "BRIDGE_OPENAI_API_KEY (or the stage's own key); every turn will fail until "
                "it is fixed.",
                stage,
                endpoint.base_url,
                status,
                exc,
            )
        else:
            log.error(
                "OpenAI %s stage at %s failed permanently (HTTP %d): %s. Check the model "
                "names and the server; this error is logged once.",
                stage,
                endpoint.base_url,
                status,
                exc,
            )

    async def aclose(self) -> None:
        clients, self._clients = self._clients, {}
        for client in clients.values():
            await client.close()


def _import_resources(client: openai.AsyncOpenAI) -> None:
    """Import the API resources now, at start-up: the library imports each on first use
    (about 70 ms for chat and audio here), which would land on the first caller's turn. So
    does the HTTP layer's anyio backend, which its connection pool loads on the first request
    (about 40 ms more)."""
    _ = client.audio.transcriptions.with_raw_response
    _ = client.chat.completions.with_streaming_response
    _ = client.audio.speech.with_streaming_response
    with contextlib.suppress(ImportError):  # another HTTP backend: nothing to load ahead
        importlib.import_module("anyio._backends._asyncio")
