"""Twilio's callbacks: call progress (``/twilio/status``), answering-machine detection
(``/twilio/amd``) and the end of a transfer's ``<Dial>`` (``/twilio/dial-result``).

Each is signed like the voice webhook and checked the same way (bridge/twilio/routes.py:
``X-Twilio-Signature`` over the full URL, query included, and the POST fields; 403 when an
auth token is configured and the signature is bad or missing; a bounded body). Unsigned
requests count against the per-IP rate like any unauthenticated webhook. Capacity and a drain
do not apply to status and AMD callbacks: they start nothing, and dropping them would lose a
call's record. A malformed field gets 400 naming it: Twilio never sends one, so whoever did
should learn why.

* ``status``: Twilio's word on the call (CallStatus, CallDuration) goes to the call records;
  it is the only record of a call whose stream never connected (busy, no-answer, failed).
* ``amd``: the verdict (AnsweredBy) is recorded, and handed to the live session, which
  leaves the persona's voicemail after the beep (``machine_end_*``) and hangs up.
* ``dial-result``: the transferred leg ended. Answered: hang up (the conversation happened).
  Not answered: what the target's ``no_answer`` says, a message then hang-up, or back to the
  agent with ``transfer_failed`` and ``dial_status`` parameters so it knows why it is back.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from bridge.ops.admission import RATE_LIMITED
from bridge.refusals import BUSY_MESSAGE, RETRY_AFTER_S
from bridge.state import client_ip, state_of
from bridge.twilio import twiml
from bridge.twilio.routes import Refuse, connect_to_agent, twilio_form
from pipeline.agents.persona import Persona, PersonaBook
from pipeline.tools.base import TransferTarget
from transports.base import mask_phone

log = logging.getLogger("bridge.twilio.callbacks")

CALL_SID = re.compile(r"CA[0-9a-fA-F]{32}")
#: a CallStatus, AnsweredBy or DialCallStatus value: lower-case words
STATUS_WORD = re.compile(r"[a-z][a-z_-]{0,39}")
#: From and To can be numbers, ``client:…`` or SIP URIs; nothing real is longer
MAX_ADDRESS_CHARS = 256
#: a call's CallDuration cannot be longer than Twilio's own 24-hour limit; leave margin
MAX_DURATION_S = 7 * 86400.0

#: AnsweredBy values (MachineDetection=DetectMessageEnd); the session acts on machine_end_*
ANSWERED_BY = (
    "human",
    "machine_start",
    "machine_end_beep",
    "machine_end_silence",
    "machine_end_other",
    "fax",
    "unknown",
)
#: DialCallStatus values meaning the person took the call
DIAL_ANSWERED = frozenset({"completed", "answered"})
#: heard when a transfer's target cannot be found again (the personas file changed)
TRANSFER_FALLBACK_MESSAGE = "Sorry, nobody can take your call right now. Please call again later."


class BadField(ValueError):
    """A Twilio field is missing or malformed (answered 400 with this message)."""


def call_sid_of(form: Mapping[str, str], *, required: bool = True) -> str:
    call_sid = form.get("CallSid", "")
    if not call_sid and not required:
        return ""
    if not CALL_SID.fullmatch(call_sid):
        raise BadField("CallSid missing or malformed" if call_sid else "CallSid missing")
    return call_sid


def word_of(form: Mapping[str, str], name: str) -> str:
    value = form.get(name, "")
    if not STATUS_WORD.fullmatch(value):
        raise BadField(f"{name} missing or malformed" if value else f"{name} missing")
    return value


def address_of(form: Mapping[str, str], name: str) -> str:
    value = form.get(name, "")
    if len(value) > MAX_ADDRESS_CHARS:
        raise BadField(f"{name} too long")
    return value


def duration_of(form: Mapping[str, str]) -> float | None:
    """CallDuration in seconds; absent (it only comes with the final status) is None."""
    value = form.get("CallDuration", "")
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        raise BadField("CallDuration is not a number") from None
    if not math.isfinite(seconds) or not 0 <= seconds <= MAX_DURATION_S:
        raise BadField("CallDuration out of range")
    return seconds


def bad_request(exc: BadField) -> Response:
    return PlainTextResponse(str(exc), status_code=400)


def refuse_unsigned(request: Request, route: str) -> Refuse:
    """Only the per-IP rate, and only for unauthentic requests: a callback starts nothing, so
    neither capacity nor a drain is a reason to lose it."""
    state = state_of(request)

    def refuse(authentic: bool) -> Response | None:
        if authentic or state.admission.rate.take(client_ip(request)):
            return None
        state.metrics.rejected(route, RATE_LIMITED)
        return PlainTextResponse(
            "too many requests", status_code=429, headers={"Retry-After": str(RETRY_AFTER_S)}
        )

    return refuse


async def status_callback(request: Request) -> Response:
    """``StatusCallback``: record CallStatus and CallDuration (204)."""
    found = await twilio_form(request, "status", refuse_unsigned(request, "status"))
    if isinstance(found, Response):
        return found
    form = dict(found)
    try:
        call_sid = call_sid_of(form)
        status = word_of(form, "CallStatus")
        duration_s = duration_of(form)
        caller, callee = address_of(form, "From"), address_of(form, "To")
    except BadField as exc:
        return bad_request(exc)
    state_of(request).records.twilio_status(
        call_sid, status=status, duration_s=duration_s, caller=mask_phone(caller), callee=callee
    )
    log.info(
        "call status %s%s",
        status,
        f" after {duration_s:.0f}s" if duration_s is not None else "",
        extra={"call_id": call_sid, "transport": "twilio"},
    )
    return Response(status_code=204)


async def amd_callback(request: Request) -> Response:
    """``AsyncAmdStatusCallback``: record AnsweredBy and tell the live session (204)."""
    found = await twilio_form(request, "amd", refuse_unsigned(request, "amd"))
    if isinstance(found, Response):
        return found
    form = dict(found)
    try:
        call_sid = call_sid_of(form)
        answered_by = word_of(form, "AnsweredBy")
    except BadField as exc:
        return bad_request(exc)
    state = state_of(request)
    state.records.twilio_status(call_sid, answered_by=answered_by)
    extra = {"call_id": call_sid, "transport": "twilio"}
    session = state.switchboard.find("twilio", call_sid)
    if session is None:
        log.info("answered by %s; no live session", answered_by, extra=extra)
        return Response(status_code=204)
    log.info("answered by %s", answered_by, extra=extra)
    try:
        # the session decides: voicemail then hang-up on machine_end_*, nothing on human
        session.answered_by(answered_by)
    except Exception:
        log.exception("the session failed to act on AnsweredBy=%s", answered_by, extra=extra)
    return Response(status_code=204)


def persona_of(book: PersonaBook, name: str, to: str) -> Persona:
    """The call's persona as the session chose it (``PersonaBook.for_call``'s order for a
    phone call): the named one, else the called number's, else the default."""
    for candidate in (name, book.numbers.get(to, "")):
        if candidate and candidate in book.personas:
            return book.personas[candidate]
    return book.default


def target_of(persona: Persona, name: str) -> TransferTarget | None:
    return next((t for t in persona.transfer if t.name == name), None)


async def dial_result(request: Request) -> Response:
    """The ``<Dial action>`` of a transfer: TwiML for what follows the dialled leg."""
    state = state_of(request)
    found = await twilio_form(request, "dial_result", _refuse_rate_with_apology(request))
    if isinstance(found, Response):
        return found
    form = dict(found)
    try:
        call_sid = call_sid_of(form, required=state.twilio.stream_tokens is not None)
        dial_status = word_of(form, "DialCallStatus")
        caller, callee = address_of(form, "From"), address_of(form, "To")
    except BadField as exc:
        return bad_request(exc)
    extra = {"call_id": call_sid, "transport": "twilio"}
    persona_name = request.query_params.get("persona", "")
    target_name = request.query_params.get("target", "")
    if dial_status in DIAL_ANSWERED:
        log.info("transfer to %s ended (%s)", target_name, dial_status, extra=extra)
        return _xml(twiml.hang_up())
    target = target_of(persona_of(state.personas, persona_name, callee), target_name)
    if target is None:
        log.warning(
            "transfer to %r not answered (%s), and persona %r has no such target",
            target_name,
            dial_status,
            persona_name,
            extra=extra,
        )
        return _xml(twiml.say_and_hang_up(TRANSFER_FALLBACK_MESSAGE))
    if target.no_answer == "message":
        log.info("transfer to %s: %s; message, hang-up", target.name, dial_status, extra=extra)
        return _xml(twiml.say_and_hang_up(target.no_answer_message))
    refusal = state.admission.refusal("twilio", client_ip(request), rate_limited=False)
    if refusal is not None:
        state.metrics.rejected("dial_result", refusal)
        log.warning(
            "transfer to %s: %s; cannot return to the agent (%s)",
            target.name,
            dial_status,
            refusal,
            extra=extra,
        )
        return _xml(twiml.say_and_hang_up(BUSY_MESSAGE))
    log.info("transfer to %s: %s; back to the agent", target.name, dial_status, extra=extra)
    params = {"from": caller, "to": callee}
    if persona_name:
        params["persona"] = persona_name
    params["transfer_failed"] = target.name
    params["dial_status"] = dial_status
    return connect_to_agent(request, params, call_sid)


def _refuse_rate_with_apology(request: Request) -> Refuse:
    """A caller is on the line: a rate-limited dial-result still answers TwiML (an apology),
    because anything else makes Twilio play its generic application error."""
    state = state_of(request)

    def refuse(authentic: bool) -> Response | None:
        if authentic or state.admission.rate.take(client_ip(request)):
            return None
        state.metrics.rejected("dial_result", RATE_LIMITED)
        return _xml(twiml.say_and_hang_up(BUSY_MESSAGE))

    return refuse


def _xml(body: str) -> Response:
    return Response(body, media_type="text/xml")
