"""``bridge xiaozhi`` against a real bridge: the echo agent's reply comes back, decoded, in
the WAV; a typed turn and an abort work; a refused device fails the command."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bridge.cli import main
from pipeline.wav import read_wav, write_wav
from tests.support.serverthread import MakeServer
from tests.support.toys import hello_16k


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, object]]:
    code = main(["xiaozhi", *args])
    out = capsys.readouterr().out.strip().splitlines()
    return code, json.loads(out[-1])


def test_speech_comes_back_in_the_wav(
    make_server: MakeServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server = make_server()
    question = tmp_path / "q.wav"
    write_wav(question, hello_16k(), 16000)
    out = tmp_path / "heard.wav"
    code, summary = run(
        capsys,
        "--url",
        f"{server.ws}/xiaozhi/v1/",
        "--wav",
        str(question),
        "--out",
        str(out),
        "--version",
        "3",
        "--frame-ms",
        "20",
    )
    assert code == 0, summary
    pcm, rate_hz = read_wav(out)
    hello = summary["server_hello"]
    assert isinstance(hello, dict) and rate_hz == hello["audio_params"]["sample_rate"]
    heard_ms = len(pcm) / 2 / rate_hz * 1000
    spoken_ms = len(hello_16k()) / 32
    assert abs(heard_ms - spoken_ms) < 300  # the echo, decoded by real libopus
    assert np.abs(np.frombuffer(pcm, dtype=np.int16)).max() > 1000
    replies = summary["replies"]
    assert isinstance(replies, list) and len(replies) == 1 and replies[0]["stopped"]


def test_a_refused_device_fails_the_command(
    make_server: MakeServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    devices = tmp_path / "devices.json"
    devices.write_text(json.dumps({"devices": [{"id": "kitchen", "token": "k" * 32}]}))
    server = make_server(BRIDGE_ESP32_DEVICES_FILE=str(devices))
    question = tmp_path / "q.wav"
    write_wav(question, hello_16k(), 16000)
    code = main(
        [
            "xiaozhi",
            "--url",
            f"{server.ws}/xiaozhi/v1/",
            "--wav",
            str(question),
            "--out",
            str(tmp_path / "heard.wav"),
            "--timeout-s",
            "5",
            "--token",
            "not-the-kitchen-token",
        ]
    )
    assert code == 1
    assert "HTTP 401" in capsys.readouterr().err
