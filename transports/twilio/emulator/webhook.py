"""Twilio's voice-webhook request, emulated: what Twilio does before it opens a Media Stream.

Twilio POSTs the call's form to the number's webhook (signed with the account's auth token)
and opens the ``<Stream>`` of the TwiML it gets back, passing the ``<Parameter>``s in
``start.customParameters``. ``bridge call`` does the same, so a trial call exercises the
webhook, the signatures and the per-call stream token like a real one.
"""

from __future__ import annotations

import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET

WEBHOOK_PATH = "/twiml"
WEBHOOK_TIMEOUT_S = 5.0


def twilio_signature(auth_token: str, url: str, params: dict[str, str] | None = None) -> str:
    """``X-Twilio-Signature`` for ``url`` and POST ``params``, computed as Twilio does."""
    from twilio.request_validator import RequestValidator

    signature: str = RequestValidator(auth_token).compute_signature(url, params or {})
    return signature


def stream_signature(auth_token: str, stream_url: str) -> str:
    """The upgrade's signature: Twilio signs the ``wss://`` URL of the ``<Stream>``, whatever
    scheme carries the bytes (a local trial runs on plain ``ws://``)."""
    parts = urllib.parse.urlsplit(stream_url)
    signed = urllib.parse.urlunsplit(("wss", parts.netloc, parts.path, parts.query, ""))
    return twilio_signature(auth_token, signed)


def fetch_stream_parameters(
    webhook_url: str, call_sid: str, caller: str, callee: str, auth_token: str = ""
) -> dict[str, str]:
    """POST the voice webhook like Twilio (signed when ``auth_token`` is given) and return
    the <Parameter>s of its <Stream>."""
    form = {"CallSid": call_sid, "From": caller, "To": callee}
    body = urllib.parse.urlencode(form).encode()
    request = urllib.request.Request(webhook_url, data=body, method="POST")
    if auth_token:
        request.add_header("X-Twilio-Signature", twilio_signature(auth_token, webhook_url, form))
    with urllib.request.urlopen(request, timeout=WEBHOOK_TIMEOUT_S) as response:
        root = ET.fromstring(response.read())
    stream = root.find("./Connect/Stream")
    if stream is None:
        raise RuntimeError(
            "webhook answered without <Connect><Stream>: " + ET.tostring(root).decode()
        )
    return {p.attrib["name"]: p.attrib["value"] for p in stream.findall("Parameter")}


def default_webhook(stream_url: str) -> str:
    """The webhook next to a stream URL: ``ws://host/stream`` -> ``http://host/twiml``."""
    parts = urllib.parse.urlsplit(stream_url)
    scheme = "https" if parts.scheme == "wss" else "http"
    return urllib.parse.urlunsplit((scheme, parts.netloc, WEBHOOK_PATH, "", ""))
