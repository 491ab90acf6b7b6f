"""Twilio's REST API: end a call the agent hung up, and place outbound calls (``bridge dial``).

The official ``twilio`` client is synchronous (``requests``); each call runs in a worker
thread so the event loop never blocks on Twilio. Completing a call is idempotent by design:
HTTP 404 or Twilio error 20404 means the call is already over (the caller hung up first, or
Twilio ended it when the stream closed), which is exactly what we wanted. Any other failure is
logged and swallowed: a REST hiccup must never break a call's teardown.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from bridge.settings import Settings

log = logging.getLogger("bridge.twilio.rest")

#: Twilio's "The requested resource was not found"
ERROR_NOT_FOUND = 20404
HTTP_NOT_FOUND = 404
#: per request; Twilio answers in well under a second
REQUEST_TIMEOUT_S = 10.0


class _BaseUrlHttpClient(TwilioHttpClient):  # type: ignore[misc]
    """Sends every request to ``base_url`` instead of ``https://*.twilio.com``.

    For a REST proxy, or a fake Twilio on loopback in tests; path, query, body and auth are
    left exactly as the client built them.
    """

    def __init__(self, base_url: str, timeout: float) -> None:
        super().__init__(timeout=timeout)
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"not an http(s) base URL: {base_url!r}")
        self._scheme, self._netloc = parts.scheme, parts.netloc

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Response:
        parts = urlsplit(url)
        url = urlunsplit((self._scheme, self._netloc, parts.path, parts.query, parts.fragment))
        response: Response = super().request(method, url, *args, **kwargs)
        return response


def build_client(settings: Settings) -> Client:
    """A REST client with the API key pair when configured, else the account's auth token."""
    if not settings.twilio_rest_configured:
        raise ValueError(
            "Twilio REST needs TWILIO_ACCOUNT_SID with TWILIO_AUTH_TOKEN, "
            "or TWILIO_ACCOUNT_SID with TWILIO_API_KEY_SID and TWILIO_API_KEY_SECRET"
        )
    http = (
        _BaseUrlHttpClient(settings.twilio_api_url, REQUEST_TIMEOUT_S)
        if settings.twilio_api_url
        else TwilioHttpClient(timeout=REQUEST_TIMEOUT_S)
    )
    if settings.twilio_api_key_sid:
        username, password = settings.twilio_api_key_sid, settings.twilio_api_key_secret
    else:
        username, password = settings.twilio_account_sid, settings.twilio_auth_token
    # the client still honours Twilio's own TWILIO_REGION / TWILIO_EDGE environment variables
    return Client(username, password, account_sid=settings.twilio_account_sid, http_client=http)


def is_already_ended(exc: TwilioRestException) -> bool:
    return bool(exc.status == HTTP_NOT_FOUND or exc.code == ERROR_NOT_FOUND)


class TwilioRest:
    """The two REST operations the bridge needs."""

    def __init__(self, client: Client) -> None:
        self._client = client

    @classmethod
    def from_settings(cls, settings: Settings) -> TwilioRest:
        return cls(build_client(settings))

    async def complete_call(self, call_sid: str) -> None:
        """``calls(sid).update(status="completed")``; never raises (except cancellation)."""
        extra = {"call_id": call_sid, "transport": "twilio"}
        try:
            await asyncio.wait_for(asyncio.to_thread(self._complete, call_sid), REQUEST_TIMEOUT_S)
        except TwilioRestException as exc:
            if is_already_ended(exc):
                log.info(
                    "call already ended (HTTP %s, error %s)", exc.status, exc.code, extra=extra
                )
                return
            log.error(
                "REST hang-up failed: HTTP %s, Twilio error %s: %s",
                exc.status,
                exc.code,
                exc.msg,
                extra=extra,
            )
        except Exception as exc:
            log.error("REST hang-up failed: %r", exc, extra=extra)
        else:
            log.info("call completed through the REST API", extra=extra)

    def _complete(self, call_sid: str) -> None:
        self._client.calls(call_sid).update(status="completed")

    def place_call(
        self, to: str, from_: str, *, url: str | None = None, twiml: str | None = None
    ) -> str:
        """Start an outbound call that fetches ``url`` (or runs ``twiml``); returns its SID."""
        if (url is None) == (twiml is None):
            raise ValueError("give exactly one of url and twiml")
        if url is not None:
            call = self._client.calls.create(to=to, from_=from_, url=url)
        else:
            call = self._client.calls.create(to=to, from_=from_, twiml=twiml)
        sid: str = call.sid
        return sid
