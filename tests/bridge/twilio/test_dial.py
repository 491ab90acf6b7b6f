"""What ``bridge dial`` asks Twilio for: the real ``twilio`` client against the fake REST API
on loopback, so the form fields are exactly what would reach Twilio."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.cli import main as cli_main
from bridge.twilio.paths import AMD_PATH, STATUS_PATH
from tests.fakes.twilio_rest_server import FakeTwilioRest
from tests.support.twilio_signing import ACCOUNT, TOKEN

PUBLIC = "voice.example.com"


@pytest.fixture
def dial_env(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, rest: FakeTwilioRest
) -> pytest.MonkeyPatch:
    monkeypatch.chdir(tmp_path)  # no stray .env
    for name, value in {
        "TWILIO_ACCOUNT_SID": ACCOUNT,
        "TWILIO_AUTH_TOKEN": TOKEN,
        "BRIDGE_PUBLIC_HOST": PUBLIC,
        "BRIDGE_TWILIO_FROM": "+15550009999",
        "BRIDGE_TWILIO_API_URL": rest.url,
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("TWILIO_API_KEY_SID", "TWILIO_API_KEY_SECRET", "BRIDGE_ENV"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


STATUS_FIELDS = {
    "StatusCallback": [f"https://{PUBLIC}{STATUS_PATH}"],
    "StatusCallbackEvent": ["initiated", "ringing", "answered", "completed"],
    "StatusCallbackMethod": ["POST"],
}
AMD_FIELDS = {
    "MachineDetection": ["DetectMessageEnd"],
    "AsyncAmd": ["true"],
    "AsyncAmdStatusCallback": [f"https://{PUBLIC}{AMD_PATH}"],
    "AsyncAmdStatusCallbackMethod": ["POST"],
}


def test_dial_asks_for_status_callbacks_and_answering_machine_detection(
    dial_env: pytest.MonkeyPatch, rest: FakeTwilioRest, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli_main(["dial", "+15551234567"]) == 0
    sid = capsys.readouterr().out.strip()
    [seen] = rest.created()
    assert seen.sid == sid
    assert seen.form == {
        "To": ["+15551234567"],
        "From": ["+15550009999"],
        "Url": [f"https://{PUBLIC}/twiml"],
        **STATUS_FIELDS,
        **AMD_FIELDS,
    }


def test_dial_without_amd_still_asks_for_status_callbacks(
    dial_env: pytest.MonkeyPatch, rest: FakeTwilioRest
) -> None:
    assert cli_main(["dial", "+15551234567", "--no-amd"]) == 0
    [seen] = rest.created()
    assert seen.form == {
        "To": ["+15551234567"],
        "From": ["+15550009999"],
        "Url": [f"https://{PUBLIC}/twiml"],
        **STATUS_FIELDS,
    }


def test_dial_inline_and_webhook_callbacks_use_the_right_host(
    dial_env: pytest.MonkeyPatch, rest: FakeTwilioRest
) -> None:
    dial_env.delenv("TWILIO_AUTH_TOKEN")
    dial_env.setenv("TWILIO_API_KEY_SID", "SK" + "2" * 32)
    dial_env.setenv("TWILIO_API_KEY_SECRET", "s" * 32)
    assert cli_main(["dial", "+15551234567", "--inline"]) == 0
    dial_env.delenv("BRIDGE_PUBLIC_HOST")
    assert cli_main(["dial", "+15551234567", "--webhook", "https://other.example/twiml"]) == 0
    inline, webhook = rest.created()
    assert "Twiml" in inline.form and inline.form["AsyncAmd"] == ["true"]
    assert inline.field("StatusCallback") == f"https://{PUBLIC}{STATUS_PATH}"
    assert webhook.field("Url") == "https://other.example/twiml"
    assert webhook.field("StatusCallback") == f"https://other.example{STATUS_PATH}"
    assert webhook.field("AsyncAmdStatusCallback") == f"https://other.example{AMD_PATH}"
