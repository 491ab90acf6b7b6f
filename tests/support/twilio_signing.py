"""Sign requests the way Twilio does, and run a call through the signed webhook and stream;
send Twilio's callbacks (status, AMD, a transfer's dial result) the way Twilio would."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable
from urllib.parse import urlencode, urlsplit

import httpx
from starlette.datastructures import ImmutableMultiDict
from twilio.request_validator import RequestValidator

from tests.support.serverthread import ServerThread
from transports.twilio.emulator.client import FakeTwilio, new_sid

TOKEN = "0123456789abcdef0123456789abcdef"
SECONDARY = "fedcba9876543210fedcba9876543210"
ACCOUNT = "AC" + "1" * 32


def sign(token: str, url: str, params: Iterable[tuple[str, str]] = ()) -> str:
    signature: str = RequestValidator(token).compute_signature(
        url, ImmutableMultiDict(list(params))
    )
    return signature


def webhook_form(call_sid: str) -> list[tuple[str, str]]:
    return [
        ("AccountSid", ACCOUNT),
        ("CallSid", call_sid),
        ("From", "+15550001111"),
        ("To", "+15550002222"),
        ("Direction", "inbound"),
    ]


def stream_parameters(twiml: str) -> dict[str, str]:
    stream = ET.fromstring(twiml).find("./Connect/Stream")
    assert stream is not None, twiml
    return {p.attrib["name"]: p.attrib["value"] for p in stream.findall("Parameter")}


async def signed_webhook(
    server: ServerThread, call_sid: str, token: str = TOKEN, public_host: str = ""
) -> str:
    """POST /twiml signed like Twilio (over ``https://public_host/twiml`` when the bridge
    has one); returns the TwiML."""
    form = webhook_form(call_sid)
    url = f"{server.http}/twiml"
    signed = f"https://{public_host}/twiml" if public_host else url
    async with httpx.AsyncClient() as http:
        signature = sign(token, signed, form)
        response = await http.post(url, data=dict(form), headers={"X-Twilio-Signature": signature})
    assert response.status_code == 200, response.text
    return response.text


def stream_headers(
    server: ServerThread, token: str = TOKEN, public_host: str = ""
) -> dict[str, str]:
    """The upgrade's signature: over ``wss://<host>/stream``, as Twilio signs it."""
    host = public_host or f"127.0.0.1:{server.port}"
    return {"X-Twilio-Signature": sign(token, f"wss://{host}/stream")}


async def signed_call(
    server: ServerThread, token: str = TOKEN, call_sid: str | None = None, public_host: str = ""
) -> FakeTwilio:
    """A call the way Twilio places it: signed webhook, signed upgrade, ``start`` with the
    webhook's ``<Parameter>``s (the stream token among them)."""
    call_sid = call_sid or new_sid("CA")
    params = stream_parameters(await signed_webhook(server, call_sid, token, public_host))
    peer = FakeTwilio(
        f"{server.ws}/stream",
        call_sid=call_sid,
        account_sid=ACCOUNT,
        params=params,
        headers=stream_headers(server, token, public_host),
    )
    await peer.connect()
    await peer.begin()
    return peer


# -- callbacks -----------------------------------------------------------------------------


def local_url(server: ServerThread, url: str) -> str:
    """Where a request Twilio would send to ``url`` (``https://PUBLIC_HOST/...``) lands in a
    test: the same path and query on the server's loopback address."""
    parts = urlsplit(url)
    return f"{server.http}{parts.path}" + (f"?{parts.query}" if parts.query else "")


async def post_callback(
    server: ServerThread,
    url: str,
    form: Iterable[tuple[str, str]],
    token: str | None = TOKEN,
    signed_url: str | None = None,
) -> httpx.Response:
    """POST ``form`` to ``url`` as Twilio does: signed over ``url`` itself (query included;
    ``signed_url`` to sign another), sent to the test server. ``token=None``: unsigned.

    ``url`` may be a public URL the bridge handed out (a ``StatusCallback``, a ``<Dial
    action>``) or the server's own (``f"{server.http}/twilio/amd"``).
    """
    pairs = list(form)
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if token is not None:
        headers["X-Twilio-Signature"] = sign(token, signed_url or url, pairs)
    async with httpx.AsyncClient() as http:
        return await http.post(
            local_url(server, url), content=urlencode(pairs).encode(), headers=headers
        )


def status_form(
    call_sid: str,
    status: str,
    duration_s: int | None = None,
    from_: str = "+15550001111",
    to: str = "+15550002222",
) -> list[tuple[str, str]]:
    """A call-progress callback (``StatusCallback``); CallDuration comes with ``completed``."""
    form = [
        ("AccountSid", ACCOUNT),
        ("ApiVersion", "2010-04-01"),
        ("CallSid", call_sid),
        ("CallStatus", status),
        ("Called", to),
        ("Caller", from_),
        ("Direction", "outbound-api"),
        ("From", from_),
        ("To", to),
        ("CallbackSource", "call-progress-events"),
        ("SequenceNumber", "0"),
    ]
    if duration_s is not None:
        form.append(("CallDuration", str(duration_s)))
    return form


def amd_form(call_sid: str, answered_by: str, detection_ms: int = 4200) -> list[tuple[str, str]]:
    """An asynchronous answering-machine detection verdict (``AsyncAmdStatusCallback``)."""
    return [
        ("AccountSid", ACCOUNT),
        ("CallSid", call_sid),
        ("AnsweredBy", answered_by),
        ("MachineDetectionDuration", str(detection_ms)),
    ]


def dial_result_form(
    call_sid: str,
    dial_status: str,
    from_: str = "+15550001111",
    to: str = "+15550002222",
) -> list[tuple[str, str]]:
    """What Twilio sends a ``<Dial action>`` once the dialled leg ended (the parent call's
    fields and ``DialCallStatus``)."""
    form = [
        *webhook_form(call_sid),
        ("CallStatus", "in-progress"),
        ("DialCallStatus", dial_status),
        ("DialCallSid", new_sid("CA")),
    ]
    form = [(k, from_ if k == "From" else to if k == "To" else v) for k, v in form]
    if dial_status in ("completed", "answered"):
        form.append(("DialCallDuration", "42"))
    return form
