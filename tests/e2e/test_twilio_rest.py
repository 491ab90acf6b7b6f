"""Twilio REST over real sockets: the real ``twilio`` client against a fake API on loopback."""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from bridge.cli import main as cli_main
from tests.fakes.agents import Factory, HangUpAgent
from tests.fakes.twilio_rest_server import CALL, FakeTwilioRest
from tests.support.serverthread import MakeServer, ServerThread
from tests.support.twilio_calls import background, say
from tests.support.twilio_signing import ACCOUNT, TOKEN, signed_call, signed_webhook
from transports.twilio.emulator.client import FakeTwilio, new_sid

GOODBYE_MS = 600
API_KEY = "SK" + "2" * 32
API_SECRET = "api-key-secret-api-key-secret-00"


def hang_up_server(make_server: MakeServer, rest: FakeTwilioRest, **env: str) -> ServerThread:
    factory = Factory(lambda call: HangUpAgent(call, reply_ms=GOODBYE_MS))
    settings = {
        "TWILIO_AUTH_TOKEN": TOKEN,
        "TWILIO_ACCOUNT_SID": ACCOUNT,
        "BRIDGE_TWILIO_AFTER_STREAM": "apology",
        "BRIDGE_TWILIO_API_URL": rest.url,
        **env,
    }
    return make_server(factory, **settings)


async def hang_up_call(server: ServerThread, hello_ulaw: bytes) -> FakeTwilio:
    """Say something to the HangUpAgent and wait for the call to end from our side."""
    peer = await signed_call(server)
    talker = background(say(peer, hello_ulaw, tail_ms=6000))
    assert await peer.wait_closed(20) == 1000
    talker.cancel()
    await peer.close()
    return peer


async def test_apology_twiml_follows_the_stream(
    make_server: MakeServer, rest: FakeTwilioRest
) -> None:
    server = hang_up_server(make_server, rest)
    root = ET.fromstring(await signed_webhook(server, new_sid("CA")))
    assert [child.tag for child in root] == ["Connect", "Say", "Hangup"]


async def test_agent_hang_up_completes_the_call_after_the_goodbye_was_heard(
    make_server: MakeServer, rest: FakeTwilioRest, hello_ulaw: bytes
) -> None:
    server = hang_up_server(make_server, rest)
    peer = await hang_up_call(server, hello_ulaw)
    assert len(peer.played) == GOODBYE_MS * 8  # the goodbye was heard in full
    [seen] = rest.requests
    assert seen.method == "POST"
    assert seen.path == f"/2010-04-01/Accounts/{ACCOUNT}/Calls/{peer.call_sid}.json"
    assert seen.auth == (ACCOUNT, TOKEN)
    assert seen.form == {"Status": ["completed"]}
    # every mark was echoed (the goodbye was heard) before the REST call, and the stream
    # closed only after it: Twilio never gets to run the apology
    assert len(peer.timeline.played_marks) == len(peer.timeline.media_times)
    assert max(peer.timeline.echo_times) < seen.at
    assert peer.closed_at is not None and seen.at < peer.closed_at


async def test_api_key_pair_authenticates_the_rest_call(
    make_server: MakeServer, rest: FakeTwilioRest, hello_ulaw: bytes
) -> None:
    server = hang_up_server(
        make_server, rest, TWILIO_API_KEY_SID=API_KEY, TWILIO_API_KEY_SECRET=API_SECRET
    )
    peer = await hang_up_call(server, hello_ulaw)
    [seen] = rest.requests
    assert seen.auth == (API_KEY, API_SECRET)
    assert CALL.fullmatch(seen.path) and peer.call_sid in seen.path


async def test_already_ended_404_20404_is_fine(
    make_server: MakeServer,
    rest: FakeTwilioRest,
    hello_ulaw: bytes,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="bridge.twilio.rest")
    server = hang_up_server(make_server, rest)
    call_sid = new_sid("CA")
    rest.ended.add(call_sid)  # the caller hung up while the goodbye played
    peer = await signed_call(server, call_sid=call_sid)
    talker = background(say(peer, hello_ulaw, tail_ms=6000))
    assert await peer.wait_closed(20) == 1000
    talker.cancel()
    await peer.close()
    assert len(rest.requests) == 1
    messages = [(r.levelno, r.getMessage()) for r in caplog.records]
    assert (logging.INFO, "call already ended (HTTP 404, error 20404)") in messages
    assert not [m for level, m in messages if level >= logging.ERROR]


@pytest.mark.parametrize("failure", ["http-500", "unreachable"])
async def test_rest_failures_are_logged_and_the_call_still_ends(
    make_server: MakeServer,
    rest: FakeTwilioRest,
    hello_ulaw: bytes,
    caplog: pytest.LogCaptureFixture,
    failure: str,
) -> None:
    caplog.set_level(logging.INFO, logger="bridge.twilio.rest")
    if failure == "http-500":
        rest.update_failure = (500, {"code": 20500, "message": "Internal error", "status": 500})
        server = hang_up_server(make_server, rest)
    else:
        server = hang_up_server(make_server, rest, BRIDGE_TWILIO_API_URL="http://127.0.0.1:9")
    peer = await hang_up_call(server, hello_ulaw)
    assert len(peer.played) == GOODBYE_MS * 8
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and errors[0].startswith("REST hang-up failed"), errors
    if failure == "http-500":
        assert "HTTP 500, Twilio error 20500" in errors[0]
        assert len(rest.requests) == 1


async def test_no_rest_call_when_closing_the_stream_ends_the_call(
    make_server: MakeServer, rest: FakeTwilioRest, hello_ulaw: bytes
) -> None:
    """Default TwiML (nothing after </Connect>): the close alone ends the call."""
    server = hang_up_server(make_server, rest, BRIDGE_TWILIO_AFTER_STREAM="end")
    root = ET.fromstring(await signed_webhook(server, new_sid("CA")))
    assert [child.tag for child in root] == ["Connect"]
    await hang_up_call(server, hello_ulaw)
    assert rest.requests == []


async def test_caller_hang_up_needs_no_rest_call(
    make_server: MakeServer, rest: FakeTwilioRest
) -> None:
    server = hang_up_server(make_server, rest)
    peer = await signed_call(server)
    await peer.silence(200)
    await peer.send_stop()
    assert await peer.wait_closed() == 1000
    await peer.close()
    assert rest.requests == []


# -- bridge dial ---------------------------------------------------------------------------


@pytest.fixture
def dial_env(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, rest: FakeTwilioRest
) -> pytest.MonkeyPatch:
    monkeypatch.chdir(tmp_path)  # no stray .env
    for name, value in {
        "TWILIO_ACCOUNT_SID": ACCOUNT,
        "TWILIO_AUTH_TOKEN": TOKEN,
        "BRIDGE_PUBLIC_HOST": "voice.example.com",
        "BRIDGE_TWILIO_FROM": "+15550009999",
        "BRIDGE_TWILIO_API_URL": rest.url,
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("TWILIO_API_KEY_SID", "TWILIO_API_KEY_SECRET", "BRIDGE_ENV"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_dial_places_a_call_to_the_webhook(
    dial_env: pytest.MonkeyPatch, rest: FakeTwilioRest, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli_main(["dial", "+15551234567"]) == 0
    sid = capsys.readouterr().out.strip()
    assert sid.startswith("CA") and len(sid) == 34
    [seen] = rest.requests
    assert (seen.method, seen.path) == ("POST", f"/2010-04-01/Accounts/{ACCOUNT}/Calls.json")
    assert seen.auth == (ACCOUNT, TOKEN)
    # the callbacks and answering-machine detection it also asks for: tests/bridge/twilio
    assert {key: seen.form[key] for key in ("To", "From", "Url")} == {
        "To": ["+15551234567"],
        "From": ["+15550009999"],
        "Url": ["https://voice.example.com/twiml"],
    }

    assert cli_main(["dial", "+15551234567", "--from", "+15550001234"]) == 0
    assert rest.requests[1].field("From") == "+15550001234"


def test_dial_inline_twiml_with_an_api_key(
    dial_env: pytest.MonkeyPatch, rest: FakeTwilioRest, capsys: pytest.CaptureFixture[str]
) -> None:
    dial_env.delenv("TWILIO_AUTH_TOKEN")
    dial_env.setenv("TWILIO_API_KEY_SID", API_KEY)
    dial_env.setenv("TWILIO_API_KEY_SECRET", API_SECRET)
    assert cli_main(["dial", "+15551234567", "--inline"]) == 0
    [seen] = rest.requests
    assert seen.auth == (API_KEY, API_SECRET) and "Url" not in seen.form
    stream = ET.fromstring(seen.field("Twiml")).find("./Connect/Stream")
    assert stream is not None and stream.attrib["url"] == "wss://voice.example.com/stream"


def test_dial_refuses_bad_input_clearly(
    dial_env: pytest.MonkeyPatch, rest: FakeTwilioRest, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli_main(["dial", "5551234"]) == 2
    assert "not an E.164 number" in capsys.readouterr().err
    assert cli_main(["dial", "+15551234567", "--inline"]) == 2
    assert "stream token" in capsys.readouterr().err
    dial_env.delenv("BRIDGE_TWILIO_FROM")
    assert cli_main(["dial", "+15551234567"]) == 2
    assert "BRIDGE_TWILIO_FROM" in capsys.readouterr().err
    dial_env.delenv("TWILIO_ACCOUNT_SID")
    assert cli_main(["dial", "+15551234567", "--from", "+15550001234"]) == 2
    assert "no REST credentials" in capsys.readouterr().err
    assert rest.requests == []
