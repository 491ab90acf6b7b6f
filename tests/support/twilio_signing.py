"""Sign requests the way Twilio does, and run a call through the signed webhook and stream."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable

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


async def signed_webhook(server: ServerThread, call_sid: str, token: str = TOKEN) -> str:
    """POST /twiml signed like Twilio; returns the TwiML."""
    form = webhook_form(call_sid)
    url = f"{server.http}/twiml"
    async with httpx.AsyncClient() as http:
        signature = sign(token, url, form)
        response = await http.post(url, data=dict(form), headers={"X-Twilio-Signature": signature})
    assert response.status_code == 200, response.text
    return response.text


def stream_headers(server: ServerThread, token: str = TOKEN) -> dict[str, str]:
    """The upgrade's signature: over ``wss://<host>/stream``, as Twilio signs it."""
    return {"X-Twilio-Signature": sign(token, f"wss://127.0.0.1:{server.port}/stream")}


async def signed_call(
    server: ServerThread, token: str = TOKEN, call_sid: str | None = None
) -> FakeTwilio:
    """A call the way Twilio places it: signed webhook, signed upgrade, ``start`` with the
    webhook's ``<Parameter>``s (the stream token among them)."""
    call_sid = call_sid or new_sid("CA")
    params = stream_parameters(await signed_webhook(server, call_sid, token))
    peer = FakeTwilio(
        f"{server.ws}/stream",
        call_sid=call_sid,
        account_sid=ACCOUNT,
        params=params,
        headers=stream_headers(server, token),
    )
    await peer.connect()
    await peer.begin()
    return peer
