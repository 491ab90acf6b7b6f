"""kill -9 in the middle of a call: completed turns, the call row and the recording survive."""

from __future__ import annotations

import asyncio
import os
import signal
import time
import wave
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

from pipeline.g711 import ulaw_to_pcm16
from tests.support import records as records_fixtures
from tests.support.records import read_call
from tests.support.serveprocess import ServeProcess
from tests.support.twilio_calls import background, say, say_and_listen
from transports.twilio.emulator.client import FakeTwilio

postgres_url = records_fixtures.postgres_url
store_url = records_fixtures.store_url


@pytest.fixture
async def crashable_server(store_url: str, tmp_path: Path) -> AsyncIterator[ServeProcess]:
    """``bridge serve`` as a real process we may kill (echo agent, records and recordings)."""
    process = ServeProcess(
        tmp_path,
        BRIDGE_RECORDS_URL=store_url,
        BRIDGE_RECORDINGS_DIR=str(tmp_path / "rec"),
        BRIDGE_LOG_LEVEL="WARNING",
    )
    try:
        await process.wait_ready()
        yield process
    finally:
        process.stop()


async def test_kill_9_during_the_third_turn_keeps_the_first_two(
    crashable_server: ServeProcess,
    store_url: str,
    tmp_path: Path,
    hello_ulaw: bytes,
) -> None:
    process = crashable_server.proc
    peer = FakeTwilio(f"{crashable_server.ws}/stream")
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
    summary, turns = found.summary, found.turns
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
