"""Twilio request authentication over real sockets: signatures, stream tokens, modes."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from bridge.app import create_app
from bridge.cli import main as cli_main
from bridge.settings import Settings, SettingsError
from tests.fakes.agents import Factory, ToneAgent
from tests.support.audio import FIXTURES
from tests.support.serverthread import MakeServer, ServerThread
from tests.support.twilio_calls import say_and_listen
from tests.support.twilio_signing import (
    ACCOUNT,
    SECONDARY,
    TOKEN,
    sign,
    signed_call,
    signed_webhook,
    stream_headers,
    stream_parameters,
    webhook_form,
)
from transports.twilio import binding
from transports.twilio.binding import BindingError, StreamTokens
from transports.twilio.emulator.client import FakeTwilio, new_sid

PUBLIC = "voice.example.com"


def secured(make_server: MakeServer, factory: Factory | None = None, **env: Any) -> ServerThread:
    return make_server(factory, TWILIO_AUTH_TOKEN=TOKEN, **env)


def post_twiml(
    server: ServerThread,
    form: list[tuple[str, str]],
    signature: str | None,
    headers: dict[str, str] | None = None,
    query: str = "",
) -> httpx.Response:
    all_headers = dict(headers or {})
    if signature is not None:
        all_headers["X-Twilio-Signature"] = signature
    with httpx.Client(base_url=server.http) as http:
        return http.post(
            "/twiml" + query,
            content=urlencode(form).encode(),
            headers={**all_headers, "Content-Type": "application/x-www-form-urlencoded"},
        )


# -- webhook signature matrix --------------------------------------------------------------


def test_webhook_signature_matrix(make_server: MakeServer) -> None:
    server = secured(make_server, TWILIO_AUTH_TOKEN_SECONDARY=SECONDARY)
    url = f"{server.http}/twiml"
    form = webhook_form(new_sid("CA"))

    ok = post_twiml(server, form, sign(TOKEN, url, form))
    assert ok.status_code == 200
    params = stream_parameters(ok.text)
    assert params["from"] == "+15550001111" and binding.PARAMETER in params
    # rotation: the secondary token signs just as well
    assert post_twiml(server, form, sign(SECONDARY, url, form)).status_code == 200

    refused = {
        "wrong token": sign("not-the-token-not-the-token-1234", url, form),
        "missing header": None,
        "empty header": "",
        "stream URL (wss) used for the webhook": sign(TOKEN, url.replace("http", "wss"), form),
        "https instead of the http it was sent to": sign(
            TOKEN, url.replace("http://", "https://"), form
        ),
        "signed without the form": sign(TOKEN, url),
        "oversized": "A" * 4096,
    }
    for why, signature in refused.items():
        response = post_twiml(server, form, signature)
        assert response.status_code == 403, why
        assert "<Stream" not in response.text, why

    tampered = [(k, "+19995550000" if k == "From" else v) for k, v in form]
    assert post_twiml(server, tampered, sign(TOKEN, url, form)).status_code == 403
    extra = [*form, ("Digits", "1")]
    assert post_twiml(server, extra, sign(TOKEN, url, form)).status_code == 403
    # repeated fields are signed value by value, and checked that way
    repeated = [*form, ("StirVerstat", "A"), ("StirVerstat", "B")]
    assert post_twiml(server, repeated, sign(TOKEN, url, repeated)).status_code == 200
    assert post_twiml(server, repeated[:-1], sign(TOKEN, url, repeated)).status_code == 403


def test_webhook_get_with_query_is_signed_over_the_whole_url(make_server: MakeServer) -> None:
    server = secured(make_server)
    query = "?CallSid=" + new_sid("CA") + "&From=%2B15550001111"
    url = f"{server.http}/twiml{query}"
    with httpx.Client() as http:
        assert http.get(url, headers={"X-Twilio-Signature": sign(TOKEN, url)}).status_code == 200
        stripped = sign(TOKEN, f"{server.http}/twiml")
        assert http.get(url, headers={"X-Twilio-Signature": stripped}).status_code == 403


def test_webhook_behind_a_proxy_trusted_and_untrusted(make_server: MakeServer) -> None:
    proxy_headers = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": PUBLIC}
    public_url = f"https://{PUBLIC}/twiml"
    form = webhook_form(new_sid("CA"))

    trusted = secured(make_server, BRIDGE_TRUST_FORWARDED="true")
    response = post_twiml(trusted, form, sign(TOKEN, public_url, form), proxy_headers)
    assert response.status_code == 200
    assert f'url="wss://{PUBLIC}/stream"' in response.text
    internal = sign(TOKEN, f"{trusted.http}/twiml", form)
    assert post_twiml(trusted, form, internal, proxy_headers).status_code == 403

    # not trusted: anyone reaching the bridge directly could send these headers
    untrusted = secured(make_server)
    forged = post_twiml(untrusted, form, sign(TOKEN, public_url, form), proxy_headers)
    assert forged.status_code == 403
    internal = sign(TOKEN, f"{untrusted.http}/twiml", form)
    forged_host = {"X-Forwarded-Host": PUBLIC}
    assert post_twiml(untrusted, form, internal, forged_host).status_code == 200


def test_webhook_with_public_host_ignores_forwarded_headers(make_server: MakeServer) -> None:
    server = secured(make_server, BRIDGE_PUBLIC_HOST=PUBLIC, BRIDGE_TRUST_FORWARDED="true")
    form = webhook_form(new_sid("CA"))
    good = sign(TOKEN, f"https://{PUBLIC}/twiml", form)
    assert post_twiml(server, form, good).status_code == 200
    forged = {"X-Forwarded-Host": "evil.test", "X-Forwarded-Proto": "http"}
    evil = sign(TOKEN, "http://evil.test/twiml", form)
    assert post_twiml(server, form, evil, forged).status_code == 403


def test_webhook_without_callsid_gets_400_when_tokens_are_enforced(
    make_server: MakeServer,
) -> None:
    server = secured(make_server)
    form = [("From", "+15550001111")]
    response = post_twiml(server, form, sign(TOKEN, f"{server.http}/twiml", form))
    assert response.status_code == 400


# -- stream upgrade signature matrix -------------------------------------------------------


async def upgrade_status(server: ServerThread, headers: dict[str, str]) -> int:
    """Open /stream with ``headers``; the HTTP status of a refusal, or 101."""
    try:
        async with connect(f"{server.ws}/stream", additional_headers=headers, open_timeout=5):
            return 101
    except InvalidStatus as exc:
        return exc.response.status_code


async def test_stream_upgrade_signature_matrix(make_server: MakeServer) -> None:
    server = secured(make_server, TWILIO_AUTH_TOKEN_SECONDARY=SECONDARY)
    wss = f"wss://127.0.0.1:{server.port}/stream"
    cases = {
        "wss, primary": (sign(TOKEN, wss), 101),
        "wss, secondary": (sign(SECONDARY, wss), 101),
        "wrong token": (sign("some-other-token-some-other-token", wss), 403),
        "https URL of the stream": (sign(TOKEN, wss.replace("wss://", "https://")), 403),
        "ws URL of the stream": (sign(TOKEN, wss.replace("wss://", "ws://")), 403),
        "webhook signature replayed": (sign(TOKEN, f"https://127.0.0.1:{server.port}/twiml"), 403),
        "with parameters": (sign(TOKEN, wss, [("CallSid", "CA1")]), 403),
        "empty": ("", 403),
    }
    for why, (signature, expected) in cases.items():
        assert await upgrade_status(server, {"X-Twilio-Signature": signature}) == expected, why
    assert await upgrade_status(server, {}) == 403


async def test_stream_upgrade_behind_a_proxy(make_server: MakeServer) -> None:
    headers = {
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Host": PUBLIC,
        "X-Twilio-Signature": sign(TOKEN, f"wss://{PUBLIC}/stream"),
    }
    trusted = secured(make_server, BRIDGE_TRUST_FORWARDED="true")
    assert await upgrade_status(trusted, headers) == 101
    untrusted = secured(make_server)
    assert await upgrade_status(untrusted, headers) == 403
    assert await upgrade_status(untrusted, stream_headers(untrusted)) == 101


async def test_unsigned_requests_are_served_without_a_token(make_server: MakeServer) -> None:
    """Local trials: no TWILIO_AUTH_TOKEN, no checks and no stream token."""
    server = make_server()
    async with httpx.AsyncClient(base_url=server.http) as http:
        response = await http.post("/twiml", data={"CallSid": new_sid("CA"), "From": "+1555"})
    assert response.status_code == 200
    assert binding.PARAMETER not in stream_parameters(response.text)
    assert await upgrade_status(server, {}) == 101


# -- per-call stream tokens ----------------------------------------------------------------


async def test_signed_call_with_a_valid_token_reaches_the_agent(
    make_server: MakeServer, hello_ulaw: bytes
) -> None:
    factory = Factory(lambda call: ToneAgent(call, reply_ms=400))
    server = secured(make_server, factory)
    peer = await signed_call(server)
    await say_and_listen(peer, hello_ulaw)
    assert len(peer.played) == 400 * 8
    agent = factory.agents[0]
    assert isinstance(agent, ToneAgent)
    assert agent.call.call_id == peer.call_sid
    assert binding.PARAMETER not in agent.call.params  # the token never reaches the agent
    assert agent.call.params["from"] == "+15550001111"
    await peer.send_stop()
    assert await peer.wait_closed() == 1000
    await peer.close()


async def refused_start(
    server: ServerThread, params: dict[str, str], call_sid: str | None = None
) -> FakeTwilio:
    peer = FakeTwilio(
        f"{server.ws}/stream",
        call_sid=call_sid,
        account_sid=ACCOUNT,
        params=params,
        headers=stream_headers(server),
    )
    await peer.connect()
    await peer.begin()
    assert await peer.wait_closed() == 1008
    assert peer.close_reason == "stream token rejected"
    assert not peer.outbound("media")
    await peer.close()
    return peer


async def test_stream_token_matrix(
    make_server: MakeServer, caplog: pytest.LogCaptureFixture
) -> None:
    factory = Factory(lambda call: ToneAgent(call))
    server = secured(make_server, factory, TWILIO_AUTH_TOKEN_SECONDARY=SECONDARY)
    caplog.set_level(logging.WARNING, logger="transports.twilio")
    other_call = new_sid("CA")
    other_params = stream_parameters(await signed_webhook(server, other_call))
    tokens = StreamTokens.from_auth_tokens([TOKEN], 60)

    # minted for another call
    await refused_start(server, other_params)
    # missing
    await refused_start(server, {"from": "+15550001111"})
    # forged: right shape, wrong MAC
    forged = other_params[binding.PARAMETER][:-4] + "AAAA"
    await refused_start(server, {binding.PARAMETER: forged}, call_sid=other_call)
    # expired (minted long ago for the right call)
    call_sid = new_sid("CA")
    expired = tokens.mint(call_sid, now_s=0)
    await refused_start(server, {binding.PARAMETER: expired}, call_sid=call_sid)
    # minted under a token nobody configured
    stranger = StreamTokens.from_auth_tokens(["x" * 32], 60).mint(call_sid, 2e9)
    await refused_start(server, {binding.PARAMETER: stranger}, call_sid=call_sid)

    assert factory.agents == []  # no agent was ever started for a refused stream
    reasons = " | ".join(r.getMessage() for r in caplog.records)
    assert "not issued for this CallSid" in reasons
    assert "no stream token" in reasons
    assert "expired" in reasons

    # the right call still gets in, with a token from the secondary (rotated-in) key
    rotated = StreamTokens.from_auth_tokens([SECONDARY], 60)

    peer = FakeTwilio(
        f"{server.ws}/stream",
        call_sid=call_sid,
        params={binding.PARAMETER: rotated.mint(call_sid, time.time())},
        headers=stream_headers(server),
    )
    await peer.connect()
    await peer.begin()
    await peer.silence(200)
    await peer.send_stop()
    assert await peer.wait_closed() == 1000
    await peer.close()
    assert len(factory.agents) == 1


def test_stream_tokens_unit() -> None:
    tokens = StreamTokens.from_auth_tokens([TOKEN, SECONDARY], ttl_s=60)
    token = tokens.mint("CA1", now_s=1000)
    tokens.verify(token, "CA1", now_s=1060)
    with pytest.raises(BindingError, match="expired"):
        tokens.verify(token, "CA1", now_s=1061)
    with pytest.raises(BindingError, match="not issued"):
        tokens.verify(token, "CA2", now_s=1000)
    # the expiry is inside the MAC: extending it breaks the token
    version, expiry, mac = token.split(".")
    with pytest.raises(BindingError, match="not issued"):
        tokens.verify(f"{version}.{int(expiry) + 3600}.{mac}", "CA1", now_s=1000)
    for junk in ["", "v1", "v2.1.x", "v1.x.y", "v1.١٢.x", "v1.1.é", "v1.1." + "A" * 300]:
        with pytest.raises(BindingError):
            tokens.verify(junk, "CA1", now_s=0)
    with pytest.raises(ValueError):
        StreamTokens.from_auth_tokens(["", ""], 60)


# -- modes ---------------------------------------------------------------------------------


def test_production_refuses_to_start_without_credentials(tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as exc:
        Settings.from_env({"BRIDGE_ENV": "production"}, dotenv_path=None)
    message = str(exc.value)
    assert "TWILIO_AUTH_TOKEN" in message and "BRIDGE_ESP32_JWT_SECRET" in message

    with pytest.raises(SettingsError, match="BRIDGE_ESP32_JWT_SECRET"):
        Settings.from_env(
            {"BRIDGE_ENV": "production", "TWILIO_AUTH_TOKEN": TOKEN}, dotenv_path=None
        )
    # create_app checks too, for settings built in code
    with pytest.raises(SettingsError, match="TWILIO_AUTH_TOKEN"):
        create_app(Settings(env="production", esp32_jwt_secret="s" * 32))

    devices = tmp_path / "devices.json"
    devices.write_text(json.dumps({"devices": []}))
    ok = Settings.from_env(
        {
            "BRIDGE_ENV": "production",
            "TWILIO_AUTH_TOKEN": TOKEN,
            "BRIDGE_ESP32_DEVICES_FILE": str(devices),
        },
        dotenv_path=None,
    )
    assert ok.production


def test_serve_exits_2_with_the_reason_in_production(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.setenv("BRIDGE_ENV", "production")
    monkeypatch.delenv("TWILIO_AUTH_TOKEN", raising=False)
    assert cli_main(["serve"]) == 2
    assert "BRIDGE_ENV=production needs TWILIO_AUTH_TOKEN" in capsys.readouterr().err


def test_inconsistent_twilio_settings_are_reported() -> None:
    cases = {
        "TWILIO_AUTH_TOKEN_SECONDARY is set without": {"TWILIO_AUTH_TOKEN_SECONDARY": SECONDARY},
        "must be set together": {"TWILIO_API_KEY_SID": "SK" + "0" * 32},
        "needs REST credentials": {"BRIDGE_TWILIO_AFTER_STREAM": "apology"},
        "must be an http:// or https:// URL": {"BRIDGE_TWILIO_API_URL": "api.twilio.com"},
    }
    for message, env in cases.items():
        with pytest.raises(SettingsError, match=message):
            Settings.from_env(env, dotenv_path=None)


async def test_healthz_and_start_up_warn_when_unauthenticated(
    make_server: MakeServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="bridge.app")
    server = make_server()
    async with httpx.AsyncClient(base_url=server.http) as http:
        health = (await http.get("/healthz")).json()
    assert health["twilio_auth"] == "disabled" and health["env"] == "development"
    assert any("NOT authenticated" in w for w in health["warnings"])
    assert any("toys are accepted WITHOUT authentication" in w for w in health["warnings"])
    logged = [r.getMessage() for r in caplog.records if r.name == "bridge.app"]
    assert any(m.startswith("INSECURE: TWILIO_AUTH_TOKEN is not set") for m in logged)


async def test_production_with_credentials_is_quiet_and_refuses_anonymous_toys(
    make_server: MakeServer, tmp_path: Path
) -> None:
    devices = tmp_path / "devices.json"
    devices.write_text(json.dumps({"devices": [{"id": "toy-1", "token": "t" * 24}]}))
    server = secured(make_server, BRIDGE_ENV="production", BRIDGE_ESP32_DEVICES_FILE=str(devices))
    async with httpx.AsyncClient(base_url=server.http) as http:
        health = (await http.get("/healthz")).json()
    assert health == {**health, "twilio_auth": "enabled", "env": "production", "warnings": []}
    # a loopback toy without a token would be admitted in development; not here
    with pytest.raises(InvalidStatus) as refused:
        async with connect(f"{server.ws}/ws/esp32", open_timeout=5):
            pass
    assert refused.value.response.status_code == 401


def test_bridge_call_signs_like_twilio(
    make_server: MakeServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``bridge call --auth-token`` passes a secured server's checks end to end."""
    factory = Factory(lambda call: ToneAgent(call, reply_ms=400))
    server = secured(make_server, factory)
    out = tmp_path / "reply.wav"
    args = ["call", "--url", f"{server.ws}/stream", "--out", str(out), "--timeout-s", "15"]
    args += ["--wav", str(FIXTURES / "hello_16k.wav"), "--lead-silence-ms", "200"]
    assert cli_main([*args, "--auth-token", TOKEN]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["heard_ms"] == 400 and summary["close_code"] == 1000
    assert len(factory.agents) == 1
