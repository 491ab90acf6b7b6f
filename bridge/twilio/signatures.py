"""Is this request really from Twilio? ``X-Twilio-Signature`` on the webhook and the stream.

Twilio signs every request with HMAC-SHA1 keyed by the account's auth token, over the URL
*exactly as Twilio requested it* followed by the sorted POST parameters
(``twilio.request_validator.RequestValidator`` does the arithmetic). The hard part is the URL:
behind TLS termination the bridge sees ``http://10.0.0.5:8080/twiml`` while Twilio signed
``https://voice.example.com/twiml``. So the URL is rebuilt from, in order:

1. ``BRIDGE_PUBLIC_HOST`` (scheme ``https``) — the recommended production setting;
2. ``X-Forwarded-Proto`` / ``X-Forwarded-Host`` — only with ``BRIDGE_TRUST_FORWARDED``, because
   anyone can send these headers to a bridge that is reachable without the proxy;
3. the request's own scheme and ``Host`` (local trials). uvicorn's own proxy-header handling
   is off (bridge/app.py), so behind a TLS proxy one of the first two must be configured, or
   the ``http://`` URL rebuilt here will not match the ``https://`` one Twilio signed.

The Media Stream upgrade carries the same header, signed over the ``wss://`` URL of the
``<Stream>`` with no parameters. Our TwiML always names ``wss://<public host>/stream``, so
that is the URL checked there, whatever scheme the bridge itself was reached with.

Two tokens may be configured so a rotation (Twilio's secondary auth token) needs no downtime:
a signature made with either is accepted.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from starlette.datastructures import ImmutableMultiDict
from starlette.requests import HTTPConnection
from twilio.request_validator import RequestValidator

from bridge.settings import Settings

SIGNATURE_HEADER = "x-twilio-signature"
#: longer header values are refused before any HMAC (a real one is 28 characters)
MAX_SIGNATURE_CHARS = 128


def _first(value: str) -> str:
    return value.split(",")[0].strip()


def public_origin(conn: HTTPConnection, settings: Settings) -> tuple[str, str]:
    """``(scheme, host)`` of the URL the request was sent to, as Twilio saw it (``http(s)``)."""
    if settings.public_host:
        return "https", settings.public_host
    scheme = "https" if conn.url.scheme in ("https", "wss") else "http"
    host = conn.headers.get("host", "localhost")
    if settings.trust_forwarded:
        proto = _first(conn.headers.get("x-forwarded-proto", "")).lower()
        if proto in ("http", "https"):
            scheme = proto
        forwarded_host = _first(conn.headers.get("x-forwarded-host", ""))
        if forwarded_host:
            host = forwarded_host
    return scheme, host


def _path_and_query(conn: HTTPConnection) -> str:
    """The request target as sent: raw (still percent-encoded) path and query string."""
    scope = conn.scope
    raw_path = scope.get("raw_path")
    path = raw_path.decode("latin-1") if raw_path else scope["path"]
    query = scope.get("query_string", b"").decode("latin-1")
    return f"{scope.get('root_path', '')}{path}" + (f"?{query}" if query else "")


def webhook_url(conn: HTTPConnection, settings: Settings) -> str:
    scheme, host = public_origin(conn, settings)
    return f"{scheme}://{host}{_path_and_query(conn)}"


def stream_url(conn: HTTPConnection, settings: Settings) -> str:
    """The URL Twilio signs for a stream upgrade: always ``wss://`` (what our TwiML names)."""
    _, host = public_origin(conn, settings)
    return f"wss://{host}{_path_and_query(conn)}"


class TwilioSignatures:
    """Checks ``X-Twilio-Signature`` against every configured auth token."""

    def __init__(self, auth_tokens: Sequence[str]) -> None:
        self._validators = [RequestValidator(token) for token in auth_tokens if token]

    @property
    def enabled(self) -> bool:
        return bool(self._validators)

    def valid(self, url: str, params: Iterable[tuple[str, str]], signature: str | None) -> bool:
        """True when ``signature`` signs ``url`` + ``params`` under one of the tokens.

        ``params`` keep repeated keys: Twilio signs every value of a repeated field.
        """
        if not signature or len(signature) > MAX_SIGNATURE_CHARS:
            return False
        form = ImmutableMultiDict(list(params))
        return any(v.validate(url, form, signature) for v in self._validators)

    def check_webhook(
        self, conn: HTTPConnection, settings: Settings, params: Iterable[tuple[str, str]]
    ) -> bool:
        signature = conn.headers.get(SIGNATURE_HEADER)
        return self.valid(webhook_url(conn, settings), params, signature)

    def check_stream(self, conn: HTTPConnection, settings: Settings) -> bool:
        return self.valid(stream_url(conn, settings), (), conn.headers.get(SIGNATURE_HEADER))
