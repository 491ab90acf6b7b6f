"""``bridge call`` against a real server on loopback: the caller waits for the reply to its
question, not for quiet after whatever it heard first."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bridge.cli import main as cli_main
from pipeline.wav import read_wav
from tests.fakes.agents import Factory, ToneAgent
from tests.support.audio import FIXTURES
from tests.support.serverthread import MakeServer, ServerThread

GREETING_MS = 800
REPLY_MS = 600
ULAW_BYTES_PER_MS = 8
PCM16_BYTES_PER_MS_8K = 16
#: longer than --quiet-s after the greeting: the case that used to hang up unanswered
LONG_LEAD_SILENCE_MS = 2500
QUIET_S = 0.8


def greeting_factory(greeting_ms: int = GREETING_MS) -> Factory:
    return Factory(lambda call: ToneAgent(call, reply_ms=REPLY_MS, greeting_ms=greeting_ms))


def bridge_call(
    server: ServerThread, out: Path, capsys: pytest.CaptureFixture[str], *options: str
) -> tuple[int, dict[str, Any]]:
    args = ["call", "--url", f"{server.ws}/stream", "--out", str(out), "--timeout-s", "15"]
    args += ["--wav", str(FIXTURES / "hello_16k.wav"), "--quiet-s", str(QUIET_S), *options]
    code = cli_main(args)
    summary: dict[str, Any] = json.loads(capsys.readouterr().out)
    return code, summary


def test_reply_after_a_lead_silence_longer_than_quiet_s(
    make_server: MakeServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The greeting ends seconds before the question does; the reply is still waited for,
    reported and written after the whole greeting."""
    factory = greeting_factory()
    server = make_server(factory)
    out = tmp_path / "reply.wav"
    lead = ["--lead-silence-ms", str(LONG_LEAD_SILENCE_MS)]
    code, summary = bridge_call(server, out, capsys, *lead)

    assert code == 0, summary
    assert summary["first_reply_after_speech_ms"] is not None, summary
    assert summary["heard_ms"] == GREETING_MS + REPLY_MS, summary
    assert summary["clears"] == 0 and summary["close_code"] == 1000
    pcm, rate_hz = read_wav(out)
    assert rate_hz == 8000 and len(pcm) == (GREETING_MS + REPLY_MS) * PCM16_BYTES_PER_MS_8K
    (agent,) = factory.agents
    assert isinstance(agent, ToneAgent) and len(agent.utterances) == 1


def test_the_greeting_finishes_before_the_caller_speaks(
    make_server: MakeServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A greeting longer than the lead silence is not talked over (no barge-in, no clear)."""
    long_greeting_ms = 2500
    server = make_server(greeting_factory(long_greeting_ms))
    code, summary = bridge_call(server, tmp_path / "r.wav", capsys, "--lead-silence-ms", "200")
    assert code == 0, summary
    assert summary["clears"] == 0
    assert summary["heard_ms"] == long_greeting_ms + REPLY_MS


def test_barge_in_speaks_over_the_greeting(
    make_server: MakeServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    long_greeting_ms = 6000
    server = make_server(greeting_factory(long_greeting_ms))
    options = ["--lead-silence-ms", "200", "--barge-in"]
    code, summary = bridge_call(server, tmp_path / "r.wav", capsys, *options)
    assert code == 0, summary
    assert summary["clears"] >= 1, summary
    assert summary["first_reply_after_speech_ms"] is not None
    assert summary["heard_ms"] < long_greeting_ms


def test_no_reply_is_a_failure(
    make_server: MakeServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A greeting alone is not an answer: without a reply the call exits 1 and says so."""
    factory = Factory(lambda call: ToneAgent(call, reply_ms=0, greeting_ms=GREETING_MS))
    server = make_server(factory)
    out = tmp_path / "r.wav"
    args = ["call", "--url", f"{server.ws}/stream", "--out", str(out), "--timeout-s", "3"]
    args += ["--wav", str(FIXTURES / "hello_16k.wav"), "--quiet-s", str(QUIET_S)]
    assert cli_main(args) == 1
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    assert summary["first_reply_after_speech_ms"] is None
    assert summary["heard_ms"] == GREETING_MS
    assert "no reply after the question" in captured.err
