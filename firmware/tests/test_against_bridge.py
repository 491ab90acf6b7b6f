"""The firmware's own device core (toy-host) holds a conversation with the real bridge.

Run by ``make firmware-test`` after the host build, with ``TOY_HOST`` pointing at the
binary. This proves the device logic (firmware/lib/toycore) and the server agree on the
wire: the same state machine that runs on the ESP32 drives these sessions.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bridge.app import create_app  # noqa: E402
from bridge.settings import Settings  # noqa: E402
from tests.support.serverthread import ServerThread  # noqa: E402

SECRET = "firmware-e2e-secret-0123456789-abcdefghijklmnopqrstuvwxyz-0123456789"
TOY_HOST = os.environ.get("TOY_HOST", str(ROOT / "build" / "firmware" / "toy-host"))


@pytest.fixture(scope="module")
def mic_raw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from pipeline.wav import read_wav

    pcm, rate_hz = read_wav(ROOT / "tests" / "fixtures" / "hello_16k.wav")
    assert rate_hz == 16000
    path = tmp_path_factory.mktemp("mic") / "hello.raw"
    path.write_bytes(pcm)
    return path


@pytest.fixture(scope="module")
def server() -> Iterator[ServerThread]:
    if not Path(TOY_HOST).is_file():
        pytest.fail(f"toy-host not built at {TOY_HOST}: run firmware/scripts/host-test.sh first")
    settings = Settings.from_env(
        {"BRIDGE_ESP32_JWT_SECRET": SECRET, "BRIDGE_AGENT": "echo", "BRIDGE_RECORDS_URL": "none"},
        dotenv_path=None,
    )
    thread = ServerThread(create_app(settings), settings).start()
    yield thread
    assert thread.wait_clean() == {"tasks": [], "connections": 0, "sessions": 0}
    thread.stop()


async def toy_host(server: ServerThread, *args: str, token: str | None = None) -> dict[str, Any]:
    token = token or jwt.encode({"sub": "firmware-e2e"}, SECRET, algorithm="HS256")
    proc = await asyncio.create_subprocess_exec(
        TOY_HOST,
        "--url",
        f"{server.ws}/ws/esp32",
        "--token",
        token,
        "--mac",
        "24:0A:C4:12:34:56",
        *args,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    lines = out.decode().strip().splitlines()
    assert lines, err.decode()
    summary: dict[str, Any] = json.loads(lines[-1])
    summary["exit"] = proc.returncode
    return summary


async def test_conversation_with_two_turns_and_a_goodbye(
    server: ServerThread, mic_raw: Path, tmp_path: Path
) -> None:
    heard = tmp_path / "heard.raw"
    result = await toy_host(
        server,
        "--mic",
        str(mic_raw),
        "--out",
        str(heard),
        "--turns",
        "2",
        "--end-session",
        "--timeout-s",
        "90",
    )
    assert result["exit"] == 0 and result["ok"], result
    assert result["errors"] == 0 and result["protocol_errors"] == 0 and result["decode_errors"] == 0
    assert result["messages"]["auth"] == 1 and result["messages"]["AUDIO.COMMITTED"] == 2
    assert (
        result["responses_completed"] == 3
        and result["session_end"]
        and result["close_code"] == 1000
    )
    speech_ms = mic_raw.stat().st_size / 32
    assert result["decoded_ms"] >= 2 * 0.8 * speech_ms  # both echoes came back whole
    assert heard.stat().st_size == result["samples_decoded"] * 2


async def test_tap_to_interrupt_stops_the_reply(
    server: ServerThread, mic_raw: Path, tmp_path: Path
) -> None:
    result = await toy_host(
        server,
        "--mic",
        str(mic_raw),
        "--out",
        str(tmp_path / "h.raw"),
        "--turns",
        "1",
        "--interrupt-after-ms",
        "1000",
        "--timeout-s",
        "60",
    )
    assert result["exit"] == 0 and result["interrupt_sent"], result
    assert result["responses_completed"] == 2  # greeting slot + the interrupted reply
    speech_ms = mic_raw.stat().st_size / 32
    assert result["decoded_ms"] < 0.8 * speech_ms  # the reply was cut short


async def test_a_rejected_device_gets_401(server: ServerThread) -> None:
    result = await toy_host(server, "--turns", "0", "--timeout-s", "10", token="not-a-token")
    assert result["exit"] == 1 and result["http_status"] == 401 and result["connects"] == 1
