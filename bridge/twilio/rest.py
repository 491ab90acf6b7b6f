"""Twilio's REST API: end a call the agent hung up, hand a live call new TwiML (a transfer),
and place outbound calls (``bridge dial``).

The official ``twilio`` client is synchronous (``requests``); each call made from the event
loop runs in a worker thread so the loop never blocks on Twilio. Completing a call is
idempotent by design: HTTP 404 or Twilio error 20404 means the call is already over (the
caller hung up first, or Twilio ended it when the stream closed), which is exactly what we
wanted. Any other failure is logged and swallowed: a REST hiccup must never break a call's
teardown. Replacing a call's TwiML, on the contrary, raises: the caller of a transfer must know
it did not happen, so the agent can say so.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
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
#: every call-progress event Twilio can report to a ``StatusCallback``
STATUS_CALLBACK_EVENTS = ("initiated", "ringing", "answered", "completed")
#: waits for the end of the greeting (the beep), so a voicemail is left at the right moment
MACHINE_DETECTION = "DetectMessageEnd"


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
    """The REST operations the bridge needs."""

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

    async def update_twiml(self, call_sid: str, twiml: str) -> None:
        """``calls(sid).update(twiml=...)``: the live call runs ``twiml`` from now on (its
        ``<Connect><Stream>`` ends). Raises :class:`TwilioRestException`, :class:`TimeoutError`
        or a transport error: the caller decides what a failure means."""
        await asyncio.wait_for(
            asyncio.to_thread(self._update_twiml, call_sid, twiml), REQUEST_TIMEOUT_S
        )

    def _update_twiml(self, call_sid: str, twiml: str) -> None:
        self._client.calls(call_sid).update(twiml=twiml)

    def place_call(
        self,
        to: str,
        from_: str,
        *,
        url: str | None = None,
        twiml: str | None = None,
        status_callback: str | None = None,
        amd_callback: str | None = None,
    ) -> str:
        """Start an outbound call (see :func:`call_create_kwargs`); returns its CallSid.

        Synchronous: call it from a worker thread when on an event loop.
        """
        kwargs = call_create_kwargs(
            to,
            from_,
            url=url,
            twiml=twiml,
            status_callback=status_callback,
            amd_callback=amd_callback,
        )
        call = self._client.calls.create(**kwargs)
        sid: str = call.sid
        return sid


def call_create_kwargs(
    to: str,
    from_: str,
    *,
    url: str | None = None,
    twiml: str | None = None,
    status_callback: str | None = None,
    status_events: Sequence[str] = STATUS_CALLBACK_EVENTS,
    amd_callback: str | None = None,
) -> dict[str, Any]:
    """The keyword arguments of ``client.calls.create`` for an outbound call to the agent.

    A pure function, so ``bridge dial`` and any other caller (a control API) place calls the
    same way and a test can check the request without a network.

    * exactly one of ``url`` (the voice webhook, which mints the stream token) and ``twiml``;
    * ``status_callback``: Twilio POSTs each of ``status_events`` there (``/twilio/status``),
      which completes the call's record even when the stream never connected (busy, no-answer);
    * ``amd_callback``: asynchronous answering-machine detection waiting for the end of the
      greeting; the call connects at once and the verdict (``AnsweredBy``) is POSTed there
      (``/twilio/amd``), so the agent can leave a voicemail after the beep.
    """
    if (url is None) == (twiml is None):
        raise ValueError("give exactly one of url and twiml")
    kwargs: dict[str, Any] = {"to": to, "from_": from_}
    if url is not None:
        kwargs["url"] = url
    else:
        kwargs["twiml"] = twiml
    if status_callback:
        kwargs["status_callback"] = status_callback
        kwargs["status_callback_event"] = list(status_events)
        kwargs["status_callback_method"] = "POST"
    if amd_callback:
        kwargs["machine_detection"] = MACHINE_DETECTION
        # the client sends this field as given: Twilio expects the string "true"
        kwargs["async_amd"] = "true"
        kwargs["async_amd_status_callback"] = amd_callback
        kwargs["async_amd_status_callback_method"] = "POST"
    return kwargs
