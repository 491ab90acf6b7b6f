"""kill -9 in the middle of a call: completed turns, the call row and the recording survive."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import wave
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from pipeline.g711 import ulaw_to_pcm16
from tests import records_fixtures
from tests.records_fixtures import read_call
from tests.twilio_helpers import background, say, say_and_listen
from transports.twilio.emulator import FakeTwilio

postgres_url = records_fixtures.postgres_url
store_url = records_fixtures.store_url
ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def crashable_server(store_url: str, tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], int]]:
    """``bridge serve`` as a real process we may kill (echo agent, records and recordings)."""
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "BRIDGE_AGENT": "echo",
        "BRIDGE_RECORDS_URL": store_url,
        "BRIDGE_RECORDINGS_DIR": str(tmp_path / "rec"),
        "BRIDGE_LOG_LEVEL": "WARNING",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "bridge.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
        cwd=tmp_path,  # no .env of the developer's
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"server did not start: {process.stderr.read()}")  # type: ignore[union-attr]
            time.sleep(0.1)
        yield process, port
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(10)
        if process.stderr is not None:
            process.stderr.close()


async def test_kill_9_during_the_third_turn_keeps_the_first_two(
    crashable_server: tuple[subprocess.Popen[str], int],
    store_url: str,
    tmp_path: Path,
    hello_ulaw: bytes,
) -> None:
    process, port = crashable_server
    peer = FakeTwilio(f"ws://127.0.0.1:{port}/stream")
    await peer.connect()
    await peer.begin()
    for _ in range(2):
        await say_and_listen(peer, hello_ulaw)
    heard_before = len(peer.played)
    await say(peer, hello_ulaw)
    talker = background(peer.silence(20_000))
    deadline = time.monotonic() + 20
    while len(peer.played) < heard_before + 800:  # the third reply is playing (100 ms of it)
        assert time.monotonic() < deadline, "no third reply"
        await asyncio.sleep(0.02)
    os.kill(process.pid, signal.SIGKILL)
    assert process.wait(10) == -signal.SIGKILL
    await asyncio.wait({talker}, timeout=10)
    await peer.close()

    found = await asyncio.to_thread(read_call, store_url, peer.call_sid)
    assert found is not None, "the call row was lost"
    summary, turns = found
    assert summary.call.transport == "twilio" and summary.call.ended_at_s is None
    assert [t.turn_id for t in turns][:2] == [1, 2]
    for turn in turns[:2]:
        assert turn.user_speech_ms is not None and turn.user_speech_ms > 500
        assert turn.latency_ms is not None

    # The recording is a valid WAV up to its last block, with the caller's words in it.
    recording = Path(summary.call.recording_path)
    assert recording.parent == tmp_path / "rec"
    with wave.open(str(recording), "rb") as wav:
        assert wav.getnchannels() == 2
        frames = np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16)
        assert wav.getnframes() == len(frames) // 2
    caller = frames.reshape(-1, 2)[:, 0].astype(np.float64)
    hello = np.frombuffer(ulaw_to_pcm16(hello_ulaw), dtype=np.int16).astype(np.float64)
    assert len(caller) > 2 * len(hello)  # two turns at least
    corr = np.correlate(caller, hello, mode="valid")
    at = int(np.argmax(corr))
    window = caller[at : at + len(hello)]
    assert corr[at] / (np.linalg.norm(window) * np.linalg.norm(hello)) > 0.99
