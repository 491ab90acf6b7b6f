"""The REST side of a transfer: the ``<Dial>`` TwiML a live call is given, through the real
``twilio`` client against the fake REST API on loopback, and its failures."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest

from bridge.settings import Settings
from bridge.twilio.paths import DIAL_RESULT_PATH
from bridge.twilio.rest import TwilioRest
from bridge.twilio.transfer import (
    RestTransferrer,
    describe,
    dial_action_url,
    transferrer,
    transfers_possible,
)
from pipeline.tools.base import TransferFailed, TransferTarget
from tests.fakes.twilio_rest_server import FakeTwilioRest
from tests.support.twilio_signing import ACCOUNT, TOKEN
from transports.twilio.emulator.client import new_sid

PUBLIC = "voice.example.com"
PARAMS = {"from": "+15550001111", "to": "+15550002222", "persona": "shop"}
NUMBER = TransferTarget(
    "billing", "+15551230002", "Billing", caller_id="+15551230001", ring_timeout_s=25
)
SIP = TransferTarget("desk", "sip:desk@pbx.example.com", "The desk", no_answer="message")


@pytest.fixture
def rest() -> Iterator[FakeTwilioRest]:
    fake = FakeTwilioRest().start()
    yield fake
    fake.stop()


def settings(api_url: str, **overrides: str) -> Settings:
    env = {
        "TWILIO_ACCOUNT_SID": ACCOUNT,
        "TWILIO_AUTH_TOKEN": TOKEN,
        "BRIDGE_PUBLIC_HOST": PUBLIC,
        "BRIDGE_TWILIO_API_URL": api_url,
        **overrides,
    }
    return Settings.from_env({k: v for k, v in env.items() if v}, dotenv_path=None)


def the_dial(rest: FakeTwilioRest, call_sid: str) -> ET.Element:
    [seen] = rest.twiml_updates(call_sid)
    assert seen.method == "POST"
    assert seen.path == f"/2010-04-01/Accounts/{ACCOUNT}/Calls/{call_sid}.json"
    assert seen.auth == (ACCOUNT, TOKEN)
    assert set(seen.form) == {"Twiml"}  # the call goes on: no Status=completed
    root = ET.fromstring(seen.field("Twiml"))
    assert [child.tag for child in root] == ["Dial"]
    return root[0]


async def test_a_number_is_dialled_with_caller_id_timeout_and_action(
    rest: FakeTwilioRest,
) -> None:
    transfer = transferrer(settings(rest.url))
    assert transfer is not None
    call_sid = new_sid("CA")
    await transfer(call_sid, NUMBER, PARAMS)
    dial = the_dial(rest, call_sid)
    assert dial.attrib == {
        "action": f"https://{PUBLIC}{DIAL_RESULT_PATH}?persona=shop&target=billing",
        "method": "POST",
        "timeout": "25",
        "callerId": "+15551230001",
    }
    assert [(c.tag, c.text) for c in dial] == [("Number", "+15551230002")]


async def test_a_sip_uri_is_dialled_as_sip_and_shows_the_caller(rest: FakeTwilioRest) -> None:
    transfer = RestTransferrer(TwilioRest.from_settings(settings(rest.url)), PUBLIC)
    call_sid = new_sid("CA")
    await transfer(call_sid, SIP, {"from": "+15550001111"})  # persona from the called number
    dial = the_dial(rest, call_sid)
    assert "callerId" not in dial.attrib  # Twilio then shows the caller's own number
    assert dial.attrib["timeout"] == "20"
    action = urlsplit(dial.attrib["action"])
    assert (action.scheme, action.netloc, action.path) == ("https", PUBLIC, DIAL_RESULT_PATH)
    assert parse_qs(action.query) == {"target": ["desk"]}
    assert [(c.tag, c.text) for c in dial] == [("Sip", "sip:desk@pbx.example.com")]


def test_names_with_odd_characters_survive_the_action_url() -> None:
    url = dial_action_url(PUBLIC, "the shop & co", "billing/refunds")
    assert parse_qs(urlsplit(url).query) == {
        "persona": ["the shop & co"],
        "target": ["billing/refunds"],
    }


@pytest.mark.parametrize(
    ("failure", "reason"),
    [
        ((500, {"code": 20500, "message": "Internal error", "status": 500}), "error 20500"),
        ((400, {"code": 21220, "message": "Call is not in-progress", "status": 400}), "21220"),
        ((404, {"code": 20404, "message": "Not found", "status": 404}), "already over"),
    ],
)
async def test_rest_errors_raise_transfer_failed(
    rest: FakeTwilioRest,
    caplog: pytest.LogCaptureFixture,
    failure: tuple[int, dict[str, object]],
    reason: str,
) -> None:
    rest.update_failure = failure
    transfer = transferrer(settings(rest.url))
    assert transfer is not None
    with pytest.raises(TransferFailed, match=reason) as raised:
        await transfer(new_sid("CA"), NUMBER, PARAMS)
    assert TOKEN not in str(raised.value) and "+1555" not in str(raised.value)
    logged = " ".join(r.getMessage() for r in caplog.records if r.name == "bridge.twilio.transfer")
    assert "transfer to billing" in logged and "+15551230002" not in logged


async def test_an_unreachable_api_raises_transfer_failed() -> None:
    transfer = transferrer(settings("http://127.0.0.1:9"))
    assert transfer is not None
    with pytest.raises(TransferFailed, match="could not be reached"):
        await transfer(new_sid("CA"), SIP, PARAMS)


def test_transfers_need_rest_credentials_and_a_public_host(rest: FakeTwilioRest) -> None:
    assert transfers_possible(settings(rest.url))
    for missing in ("BRIDGE_PUBLIC_HOST", "TWILIO_ACCOUNT_SID"):
        incomplete = settings(rest.url, **{missing: ""})
        assert not transfers_possible(incomplete), missing
        assert transferrer(incomplete) is None, missing


def test_logs_mask_numbers_and_sip_users() -> None:
    assert describe(NUMBER) == "billing (********0002)"
    assert describe(SIP) == "desk (sip:…@pbx.example.com)"
