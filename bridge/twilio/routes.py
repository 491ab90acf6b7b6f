"""Twilio's two ways in: the voice webhook (``/twiml``) and the Media Stream (``/stream``),
and the signature check and stream TwiML every Twilio route shares (bridge/twilio/callbacks.py).

Who is limited: a request that carries a valid ``X-Twilio-Signature`` is Twilio itself, which
connects calls in bursts from a few shared addresses, so the per-IP rate limit never refuses
it. The limit applies to requests that fail authentication or carry no signature; without
``TWILIO_AUTH_TOKEN`` nothing can be authenticated, so every request counts against it.
Capacity and a drain refuse everyone alike.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.websockets import WebSocket

from bridge.ops.admission import RATE_LIMITED
from bridge.refusals import BUSY_MESSAGE, RETRY_AFTER_S, TRY_AGAIN_LATER, deny
from bridge.state import client_ip, state_of
from bridge.twilio import twiml
from bridge.twilio.paths import STREAM_PATH
from bridge.twilio.signatures import SIGNATURE_HEADER, public_origin
from transports.twilio import binding
from transports.twilio.adapter import serve_twilio

log = logging.getLogger("bridge.twilio.routes")

MAX_WEBHOOK_BODY_BYTES = 64 * 1024

Pairs = list[tuple[str, str]]
#: given whether the request is authentic, the answer refusing it (rate, capacity), or None
Refuse = Callable[[bool], Response | None]


class BodyTooLarge(ValueError):
    """A webhook body over :data:`MAX_WEBHOOK_BODY_BYTES` (answered 413)."""


def public_host(request: Request) -> str:
    """The host Twilio reaches us at: configured, else trusted proxy headers, else Host."""
    return public_origin(request, state_of(request).settings)[1]


async def _bounded_body(request: Request) -> bytes:
    """The body, refused as soon as it is known to be too large: a declared length is checked
    before reading, and a chunked body is cut off mid-stream, never buffered whole."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_WEBHOOK_BODY_BYTES:
        raise BodyTooLarge("webhook body too large")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_WEBHOOK_BODY_BYTES:
            raise BodyTooLarge("webhook body too large")
    return bytes(body)


async def webhook_params(request: Request) -> Pairs:
    """Twilio's form fields, untouched: empty values and repeated keys are kept in order."""
    if request.method != "POST":
        return list(request.query_params.multi_items())
    body = await _bounded_body(request)
    return parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)


def forbidden() -> Response:
    return PlainTextResponse("invalid or missing X-Twilio-Signature", status_code=403)


async def twilio_form(request: Request, route: str, refuse: Refuse) -> Pairs | Response:
    """Twilio's form fields once the request passed the signature check, or the answer.

    The order matters and every Twilio route shares it: a signed request is checked first
    (its body is read, bounded, only when there is a signature to check), then ``refuse``
    decides with that knowledge (an authentic request is exempt from the per-IP rate), then
    an unauthentic request gets 403 when an auth token is configured. ``route`` labels the
    metrics and logs.
    """
    state = state_of(request)
    signatures = state.signatures
    pairs: Pairs | None = None
    authentic = False
    if signatures.enabled and SIGNATURE_HEADER in request.headers:
        try:
            pairs = await webhook_params(request)
        except BodyTooLarge as exc:
            return PlainTextResponse(str(exc), status_code=413)
        # a GET's parameters are in the query string, which the signed URL already covers
        signed = pairs if request.method == "POST" else []
        authentic = signatures.check_webhook(request, state.settings, signed)
    refusal = refuse(authentic)
    if refusal is not None:
        return refusal
    if signatures.enabled and not authentic:
        log.warning(
            "%s rejected: bad or missing X-Twilio-Signature from %s", route, client_ip(request)
        )
        state.metrics.rejected(route, "auth")
        return forbidden()
    if pairs is None:
        try:
            pairs = await webhook_params(request)
        except BodyTooLarge as exc:
            return PlainTextResponse(str(exc), status_code=413)
    return pairs


def refuse_calls(request: Request, route: str) -> Refuse:
    """For a request that starts (or resumes) a conversation with the agent: the per-IP rate
    when unauthentic, a drain and capacity for everyone; the caller hears an apology."""
    state = state_of(request)

    def refuse(authentic: bool) -> Response | None:
        refusal = state.admission.refusal("twilio", client_ip(request), rate_limited=not authentic)
        if refusal is None:
            return None
        state.metrics.rejected(route, refusal)
        return Response(twiml.say_and_hang_up(BUSY_MESSAGE), media_type="text/xml")

    return refuse


def connect_to_agent(request: Request, params: dict[str, str], call_sid: str) -> Response:
    """``<Connect><Stream>`` to our ``/stream`` with ``params`` as ``<Parameter>``s, plus a
    stream token bound to ``call_sid`` when tokens are enforced (400 without a CallSid).

    Every way to the agent goes through here (the voice webhook, a transfer nobody answered),
    so a stream is never opened without the token its ``start`` will be checked against.
    """
    state = state_of(request)
    tokens = state.twilio.stream_tokens
    if tokens is not None:
        if not call_sid:
            return PlainTextResponse("CallSid missing", status_code=400)
        params[binding.PARAMETER] = tokens.mint(call_sid, time.time())
    body = twiml.connect_stream(
        f"wss://{public_host(request)}{STREAM_PATH}", params, state.settings.twilio_after_stream
    )
    return Response(body, media_type="text/xml")


async def twiml_webhook(request: Request) -> Response:
    """Twilio's voice webhook: connect the call to our ``/stream`` WebSocket.

    A call we cannot take (capacity, drain, rate limit) hears a short spoken apology and is
    hung up, with HTTP 200: whatever else we answered, Twilio would play its own generic
    error to a real caller. With an auth token, an unsigned or badly signed request that was
    not refused gets 403, and the ``<Stream>`` carries a token bound to this CallSid (see
    transports/twilio/binding.py).
    """
    found = await twilio_form(request, "twiml", refuse_calls(request, "twiml"))
    if isinstance(found, Response):
        return found
    form = dict(found)
    params = {"from": form.get("From", ""), "to": form.get("To", "")}
    persona = request.query_params.get("persona", "")
    if persona:  # a webhook URL such as /twiml?persona=pirate picks the persona per number
        params["persona"] = persona
    return connect_to_agent(request, params, form.get("CallSid", ""))


async def stream_ws(ws: WebSocket) -> None:
    """A Twilio stream. A badly signed upgrade gets 403 and a flood 429, both before the 101
    (cheapest); a stream over capacity or during a drain is accepted and closed with 1013,
    which Twilio logs as 31921 "closed by the server" rather than 31920, a handshake failure
    that reads like a misconfigured URL or signature."""
    state = state_of(ws)
    signatures = state.signatures
    authentic = (
        signatures.enabled
        and SIGNATURE_HEADER in ws.headers
        and signatures.check_stream(ws, state.settings)
    )
    refusal = state.admission.refusal("twilio", client_ip(ws), rate_limited=not authentic)
    if refusal is not None:
        state.metrics.rejected("stream", refusal)
        if refusal == RATE_LIMITED:
            await deny(ws, 429, "too many connections", RETRY_AFTER_S)
        else:
            await ws.accept()
            await ws.close(TRY_AGAIN_LATER, "busy, try again later")
        return
    if signatures.enabled and not authentic:
        # an HTTP answer to the upgrade, never a 101 then a close: nothing is started
        state.metrics.rejected("stream", "auth")
        log.warning("stream upgrade rejected: bad X-Twilio-Signature from %s", client_ip(ws))
        await ws.send_denial_response(forbidden())
        return
    with state.admission.slot("twilio"):
        await serve_twilio(ws, state.switchboard, state.twilio)
