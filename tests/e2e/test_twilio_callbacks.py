"""Twilio's callbacks over real sockets: call status, answering-machine detection, a
transfer's dial result (what ``bridge dial`` asks for: tests/bridge/twilio/test_dial.py)."""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest

from bridge.call_records.model import CallSummary
from bridge.twilio.callbacks import TRANSFER_FALLBACK_MESSAGE
from bridge.twilio.paths import AMD_PATH, DIAL_RESULT_PATH, STATUS_PATH
from bridge.twilio.routes import MAX_WEBHOOK_BODY_BYTES
from bridge.twilio.transfer import dial_action_url
from pipeline.tools.base import TransferFailed, TransferTarget
from tests.fakes.twilio_rest_server import FakeTwilioRest
from tests.support.records import read_call
from tests.support.serverthread import MakeServer, ServerThread
from tests.support.twilio_signing import (
    ACCOUNT,
    SECONDARY,
    TOKEN,
    amd_form,
    dial_result_form,
    post_callback,
    sign,
    status_form,
    stream_parameters,
)
from transports.twilio import binding
from transports.twilio.binding import StreamTokens
from transports.twilio.emulator.client import new_sid

PUBLIC = "voice.example.com"
PERSONAS = """
[personas.shop]
system_prompt = "You sell garden tools."

[[personas.shop.transfer]]
name = "billing"
to = "+15551230002"
description = "Billing questions."

[[personas.shop.transfer]]
name = "desk"
to = "sip:desk@pbx.example.com"
description = "The front desk."
no_answer = "message"
no_answer_message = "Nobody is at the desk. Please call again tomorrow."

[numbers]
"+15550002222" = "shop"
"""


def public_server(make_server: MakeServer, tmp_path: Path, **env: str) -> ServerThread:
    """A bridge behind ``BRIDGE_PUBLIC_HOST`` with an auth token and the shop persona."""
    personas = tmp_path / "personas.toml"
    personas.write_text(PERSONAS)
    return make_server(
        None,
        TWILIO_AUTH_TOKEN=TOKEN,
        BRIDGE_PUBLIC_HOST=PUBLIC,
        BRIDGE_PERSONAS_FILE=str(personas),
        **env,
    )


def records_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'calls.db'}"  # make_server's default


def wait_for_summary(tmp_path: Path, call_sid: str, status: str = "") -> CallSummary:
    """The call's summary once the writer stored it (and ``status``, when given)."""
    deadline = time.monotonic() + 10
    while True:
        found = read_call(records_url(tmp_path), call_sid)
        if found is not None and (not status or found.summary.twilio_status == status):
            return found.summary
        if time.monotonic() > deadline:
            raise AssertionError(f"no record of {call_sid} with status {status!r}: {found}")
        time.sleep(0.05)


def public(path: str) -> str:
    return f"https://{PUBLIC}{path}"


# -- status callbacks ------------------------------------------------------------------------


async def test_status_callbacks_record_a_call_that_never_connected(
    make_server: MakeServer, tmp_path: Path
) -> None:
    server = public_server(make_server, tmp_path)
    call_sid = new_sid("CA")
    callee = "+15557654321"
    for status in ("initiated", "ringing"):
        form = status_form(call_sid, status, to=callee)
        response = await post_callback(server, public(STATUS_PATH), form)
        assert response.status_code == 204, response.text
    final = status_form(call_sid, "no-answer", duration_s=0, to=callee)
    assert (await post_callback(server, public(STATUS_PATH), final)).status_code == 204

    summary = wait_for_summary(tmp_path, call_sid, "no-answer")
    assert summary.twilio_duration_s == 0
    assert summary.turns == 0
    assert summary.call.transport == "twilio"
    assert summary.call.caller.endswith("1111") and "+1555000" not in summary.call.caller
    assert summary.call.callee.endswith("4321")


async def test_status_callback_may_be_a_get(make_server: MakeServer, tmp_path: Path) -> None:
    """A number's console status callback can be set to GET: signed over the query."""
    server = public_server(make_server, tmp_path)
    call_sid = new_sid("CA")
    query = urlencode(status_form(call_sid, "completed", duration_s=17))
    url = f"{public(STATUS_PATH)}?{query}"
    async with httpx.AsyncClient() as http:
        response = await http.get(
            f"{server.http}{STATUS_PATH}?{query}", headers={"X-Twilio-Signature": sign(TOKEN, url)}
        )
    assert response.status_code == 204, response.text
    assert wait_for_summary(tmp_path, call_sid, "completed").twilio_duration_s == 17


async def test_amd_verdict_without_a_live_session_is_recorded(
    make_server: MakeServer, tmp_path: Path
) -> None:
    server = public_server(make_server, tmp_path)
    call_sid = new_sid("CA")
    response = await post_callback(server, public(AMD_PATH), amd_form(call_sid, "machine_end_beep"))
    assert response.status_code == 204, response.text
    completed = status_form(call_sid, "completed", duration_s=31)
    assert (await post_callback(server, public(STATUS_PATH), completed)).status_code == 204
    summary = wait_for_summary(tmp_path, call_sid, "completed")
    assert summary.answered_by == "machine_end_beep"
    assert summary.twilio_duration_s == 31


# -- signatures, limits, garbage ---------------------------------------------------------------

CALLBACKS = {
    STATUS_PATH: lambda sid: status_form(sid, "ringing"),
    AMD_PATH: lambda sid: amd_form(sid, "human"),
    DIAL_RESULT_PATH: lambda sid: dial_result_form(sid, "completed"),
}


@pytest.mark.parametrize("path", list(CALLBACKS))
async def test_callbacks_are_signature_checked(
    make_server: MakeServer, tmp_path: Path, path: str
) -> None:
    server = public_server(make_server, tmp_path, TWILIO_AUTH_TOKEN_SECONDARY=SECONDARY)
    url = public(path) + ("?target=billing" if path == DIAL_RESULT_PATH else "")
    form = CALLBACKS[path](new_sid("CA"))
    ok = 200 if path == DIAL_RESULT_PATH else 204
    assert (await post_callback(server, url, form)).status_code == ok
    assert (await post_callback(server, url, form, SECONDARY)).status_code == ok

    refused = {
        "unsigned": await post_callback(server, url, form, None),
        "wrong token": await post_callback(server, url, form, "x" * 32),
        "another route's URL": await post_callback(server, url, form, signed_url=public("/twiml")),
        "the loopback URL, not the public one": await post_callback(
            server, url, form, signed_url=server.http + path
        ),
    }
    # signed over the original form, sent with one more field
    async with httpx.AsyncClient() as http:
        refused["tampered"] = await http.post(
            server.http + url.removeprefix(f"https://{PUBLIC}"),
            data=dict([*form, ("Extra", "1")]),
            headers={"X-Twilio-Signature": sign(TOKEN, url, form)},
        )
    if path == DIAL_RESULT_PATH:  # the query is signed too
        refused["query changed"] = await post_callback(
            server, public(path) + "?target=desk", form, signed_url=url
        )
    for why, response in refused.items():
        assert response.status_code == 403, why
        assert "<Dial" not in response.text and "<Stream" not in response.text, why


async def test_without_an_auth_token_callbacks_are_served_unsigned(
    make_server: MakeServer, tmp_path: Path
) -> None:
    server = make_server()
    call_sid = new_sid("CA")
    url = f"{server.http}{STATUS_PATH}"
    response = await post_callback(server, url, status_form(call_sid, "busy", duration_s=0), None)
    assert response.status_code == 204
    assert wait_for_summary(tmp_path, call_sid, "busy").twilio_status == "busy"


async def test_unsigned_callbacks_are_rate_limited(make_server: MakeServer) -> None:
    server = make_server(None, BRIDGE_RATE_LIMIT_PER_S="0.01", BRIDGE_RATE_LIMIT_BURST="2")
    url = f"{server.http}{AMD_PATH}"
    codes = [
        (await post_callback(server, url, amd_form(new_sid("CA"), "human"), None)).status_code
        for _ in range(3)
    ]
    assert codes == [204, 204, 429]
    # a caller mid-transfer still hears TwiML, never Twilio's generic application error
    dial = await post_callback(
        server, f"{server.http}{DIAL_RESULT_PATH}", dial_result_form(new_sid("CA"), "busy"), None
    )
    assert dial.status_code == 200
    assert [child.tag for child in ET.fromstring(dial.text)] == ["Say", "Hangup"]


async def test_signed_callbacks_are_not_rate_limited(
    make_server: MakeServer, tmp_path: Path
) -> None:
    server = public_server(
        make_server, tmp_path, BRIDGE_RATE_LIMIT_PER_S="0.01", BRIDGE_RATE_LIMIT_BURST="1"
    )
    for _ in range(4):
        response = await post_callback(server, public(AMD_PATH), amd_form(new_sid("CA"), "human"))
        assert response.status_code == 204


async def test_malformed_callbacks_get_400_with_the_reason(
    make_server: MakeServer, tmp_path: Path
) -> None:
    server = public_server(make_server, tmp_path)
    sid = new_sid("CA")
    cases = [
        (STATUS_PATH, [("CallStatus", "completed")], "CallSid missing"),
        (STATUS_PATH, [("CallSid", "CA123"), ("CallStatus", "completed")], "CallSid"),
        (STATUS_PATH, [("CallSid", sid)], "CallStatus missing"),
        (STATUS_PATH, [("CallSid", sid), ("CallStatus", "<b>done</b>")], "CallStatus"),
        (STATUS_PATH, [*status_form(sid, "completed"), ("CallDuration", "soon")], "CallDuration"),
        (STATUS_PATH, [*status_form(sid, "completed"), ("CallDuration", "nan")], "CallDuration"),
        (STATUS_PATH, [*status_form(sid, "completed"), ("CallDuration", "-3")], "CallDuration"),
        (STATUS_PATH, [*status_form(sid, "ringing"), ("From", "9" * 300)], "From too long"),
        (AMD_PATH, [("CallSid", sid)], "AnsweredBy missing"),
        (AMD_PATH, [("AnsweredBy", "human")], "CallSid missing"),
        (DIAL_RESULT_PATH, [("CallSid", sid)], "DialCallStatus missing"),
        (DIAL_RESULT_PATH, [("DialCallStatus", "no-answer")], "CallSid missing"),
    ]
    for path, form, message in cases:
        response = await post_callback(server, public(path), form)
        assert response.status_code == 400, (path, form)
        assert message in response.text, (path, response.text)

    huge = [("CallSid", sid), ("CallStatus", "ringing"), ("Pad", "x" * MAX_WEBHOOK_BODY_BYTES)]
    assert (await post_callback(server, public(STATUS_PATH), huge)).status_code == 413


# -- dial result -------------------------------------------------------------------------------


async def dial_result(
    server: ServerThread, persona: str, target: str, dial_status: str, call_sid: str
) -> ET.Element:
    url = dial_action_url(PUBLIC, persona, target)
    response = await post_callback(server, url, dial_result_form(call_sid, dial_status))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/xml")
    return ET.fromstring(response.text)


@pytest.mark.parametrize("dial_status", ["completed", "answered"])
async def test_an_answered_transfer_hangs_up_after_the_conversation(
    make_server: MakeServer, tmp_path: Path, dial_status: str
) -> None:
    server = public_server(make_server, tmp_path)
    root = await dial_result(server, "shop", "billing", dial_status, new_sid("CA"))
    assert [child.tag for child in root] == ["Hangup"]


@pytest.mark.parametrize("dial_status", ["no-answer", "busy", "failed"])
async def test_no_answer_with_a_message_says_it_and_hangs_up(
    make_server: MakeServer, tmp_path: Path, dial_status: str
) -> None:
    server = public_server(make_server, tmp_path)
    root = await dial_result(server, "shop", "desk", dial_status, new_sid("CA"))
    assert [child.tag for child in root] == ["Say", "Hangup"]
    assert root[0].text == "Nobody is at the desk. Please call again tomorrow."


@pytest.mark.parametrize("persona", ["shop", ""])
async def test_no_answer_goes_back_to_the_agent_with_a_fresh_token(
    make_server: MakeServer, tmp_path: Path, persona: str
) -> None:
    """``persona=""``: the call's persona came from its number, as the session chose it."""
    server = public_server(make_server, tmp_path)
    call_sid = new_sid("CA")
    root = await dial_result(server, persona, "billing", "no-answer", call_sid)
    assert [child.tag for child in root] == ["Connect"]
    stream = root.find("./Connect/Stream")
    assert stream is not None and stream.attrib["url"] == f"wss://{PUBLIC}/stream"
    params = stream_parameters(ET.tostring(root, encoding="unicode"))
    token = params.pop(binding.PARAMETER)
    expected = {"from": "+15550001111", "to": "+15550002222"}
    if persona:
        expected["persona"] = persona
    assert params == {**expected, "transfer_failed": "billing", "dial_status": "no-answer"}
    StreamTokens.from_auth_tokens([TOKEN], 120).verify(token, call_sid, time.time())


async def test_the_agent_route_follows_the_after_stream_choice(
    make_server: MakeServer, tmp_path: Path, rest: FakeTwilioRest
) -> None:
    server = public_server(
        make_server,
        tmp_path,
        BRIDGE_TWILIO_AFTER_STREAM="apology",
        TWILIO_ACCOUNT_SID=ACCOUNT,
        BRIDGE_TWILIO_API_URL=rest.url,
    )
    root = await dial_result(server, "shop", "billing", "busy", new_sid("CA"))
    assert [child.tag for child in root] == ["Connect", "Say", "Hangup"]


@pytest.mark.parametrize(
    ("persona", "target", "to"),
    [
        ("shop", "nobody", "+15550002222"),
        # an unknown persona falls back as the session's did: the default, which has no targets
        ("ghost", "billing", "+15559990000"),
    ],
)
async def test_an_unknown_target_says_sorry_and_hangs_up(
    make_server: MakeServer, tmp_path: Path, persona: str, target: str, to: str
) -> None:
    server = public_server(make_server, tmp_path)
    url = dial_action_url(PUBLIC, persona, target)
    form = dial_result_form(new_sid("CA"), "no-answer", to=to)
    response = await post_callback(server, url, form)
    assert response.status_code == 200, response.text
    root = ET.fromstring(response.text)
    assert [child.tag for child in root] == ["Say", "Hangup"]
    assert root[0].text == TRANSFER_FALLBACK_MESSAGE


# -- transfers through the wired REST client -----------------------------------------------------


async def test_transfers_are_wired_only_with_rest_credentials_and_a_public_host(
    make_server: MakeServer, tmp_path: Path, rest: FakeTwilioRest
) -> None:
    env = {"TWILIO_ACCOUNT_SID": ACCOUNT, "BRIDGE_TWILIO_API_URL": rest.url}
    server = public_server(make_server, tmp_path, **env)
    transfer_call = server.app.state.bridge.twilio.transfer_call
    assert transfer_call is not None
    assert public_server(make_server, tmp_path).app.state.bridge.twilio.transfer_call is None
    no_host = make_server(None, TWILIO_AUTH_TOKEN=TOKEN, **env)
    assert no_host.app.state.bridge.twilio.transfer_call is None

    call_sid = new_sid("CA")
    target = TransferTarget("billing", "+15551230002", "Billing", ring_timeout_s=15)

    async def transfer() -> None:
        await transfer_call(call_sid, target, {"from": "+15550001111", "persona": "shop"})

    server.call_in_loop(transfer)
    [seen] = rest.twiml_updates(call_sid)
    assert seen.auth == (ACCOUNT, TOKEN)
    dial = ET.fromstring(seen.field("Twiml")).find("Dial")
    assert dial is not None
    assert (
        dial.attrib["action"] == f"https://{PUBLIC}{DIAL_RESULT_PATH}?persona=shop&target=billing"
    )

    rest.ended.add(call_sid)
    with pytest.raises(TransferFailed, match="already over"):
        server.call_in_loop(transfer)
