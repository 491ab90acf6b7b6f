"""``bridge talk-link`` mints a link the bridge accepts, and says why it cannot."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

import pytest

from bridge.browser.tokens import TalkTokens
from bridge.cli import main

SECRET = "talk-secret-0123456789"


def test_the_link_carries_a_token_the_bridge_accepts(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("BRIDGE_TALK_SECRET", SECRET)
    monkeypatch.setenv("BRIDGE_PUBLIC_HOST", "voice.example.com")
    assert main(["talk-link", "--name", "kiosk-1", "--ttl", "120", "--autostart"]) == 0
    link = urlsplit(capsys.readouterr().out.strip())
    assert (link.scheme, link.netloc, link.path) == ("https", "voice.example.com", "/talk")
    query = parse_qs(link.query)
    assert query["autostart"] == ["1"]
    claims = TalkTokens(SECRET).verify(query["token"][0], time.time())
    assert claims.name == "kiosk-1" and 100 < claims.expires_at_s - time.time() <= 120


def test_without_a_secret_or_a_public_host_it_says_so(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("BRIDGE_TALK_SECRET", raising=False)
    monkeypatch.delenv("BRIDGE_PUBLIC_HOST", raising=False)
    assert main(["talk-link", "--persona", "ghost"]) == 2
    err = capsys.readouterr().err
    assert "BRIDGE_TALK_SECRET" in err and "BRIDGE_PUBLIC_HOST" in err and "ghost" in err
