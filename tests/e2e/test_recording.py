"""Per-call WAV recordings: caller left, agent right, on one timeline."""

from __future__ import annotations

import asyncio
import wave
from pathlib import Path

import numpy as np

from pipeline.g711 import ulaw_to_pcm16
from tests.fakes.agents import Factory, ToneAgent
from tests.support.records import wait_for_call
from tests.support.serverthread import MakeServer
from tests.support.twilio_calls import open_call, say_and_listen

RATE_HZ = 8000


def read_stereo(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with wave.open(str(path), "rb") as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (2, 2, RATE_HZ)
        frames = np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16)
    stereo = frames.reshape(-1, 2).astype(np.float64)
    return stereo[:, 0], stereo[:, 1]


def locate(haystack: np.ndarray, needle: np.ndarray) -> tuple[int, float]:
    """Best offset of ``needle`` in ``haystack`` and the normalised correlation there."""
    corr = np.correlate(haystack, needle, mode="valid")
    offset = int(np.argmax(corr))
    window = haystack[offset : offset + len(needle)]
    score = float(corr[offset] / (np.linalg.norm(window) * np.linalg.norm(needle) + 1e-9))
    return offset, score


def active(channel: np.ndarray, threshold: float = 500.0) -> np.ndarray:
    """Indices of 10 ms blocks whose RMS exceeds ``threshold``."""
    blocks = channel[: len(channel) // 80 * 80].reshape(-1, 80)
    return np.flatnonzero(np.sqrt((blocks**2).mean(axis=1)) > threshold)


async def test_both_directions_are_recorded_on_one_timeline(
    make_server: MakeServer, tmp_path: Path, hello_ulaw: bytes
) -> None:
    url = f"sqlite:///{tmp_path / 'calls.db'}"
    server = make_server(
        Factory(lambda call: ToneAgent(call, reply_ms=1200)),
        BRIDGE_RECORDS_URL=url,
        BRIDGE_RECORDINGS_DIR=str(tmp_path / "rec"),
    )
    peer = await open_call(server)
    await say_and_listen(peer, hello_ulaw, lead_ms=500)
    await peer.send_stop()
    await peer.wait_closed()
    await peer.close()

    summary = (await asyncio.to_thread(wait_for_call, url, peer.call_sid)).summary
    path = Path(summary.call.recording_path)
    assert path.parent == tmp_path / "rec" and path.name.endswith(f"-{peer.call_sid}.wav")
    caller, agent = read_stereo(path)

    # The caller channel holds what FakeTwilio sent, sample for sample.
    hello = np.frombuffer(ulaw_to_pcm16(hello_ulaw), dtype=np.int16).astype(np.float64)
    hello_at, score = locate(caller, hello)
    assert score > 0.99, score
    hello_end = hello_at + len(hello)
    assert 0.3 * RATE_HZ < hello_at < 3 * RATE_HZ  # after ~500 ms of leading silence

    # The agent channel holds the 440 Hz reply, after the caller finished, about as long.
    speaking = active(agent)
    assert len(speaking) > 0
    reply_start, reply_end = speaking[0] * 80, (speaking[-1] + 1) * 80
    # the fixture ends in its own silence: measure from the end of the caller's speech
    spoke = active(caller)
    speech_end = (spoke[spoke * 80 < reply_start][-1] + 1) * 80
    assert hello_at <= speech_end <= hello_end
    assert speech_end + 0.3 * RATE_HZ < reply_start < speech_end + 3 * RATE_HZ
    assert abs((reply_end - reply_start) / RATE_HZ - 1.2) < 0.15
    reply = agent[reply_start:reply_end]
    spectrum = np.abs(np.fft.rfft(reply))
    peak_hz = np.argmax(spectrum) * RATE_HZ / len(reply)
    assert abs(peak_hz - 440) < 10, peak_hz
    # ... and nothing where the caller spoke; the caller was silent during the reply.
    assert np.abs(agent[hello_at:speech_end]).max() == 0
    assert np.sqrt((caller[reply_start:reply_end] ** 2).mean()) < 50


async def test_recordings_off_attach_no_tap(make_server: MakeServer, hello_ulaw: bytes) -> None:
    server = make_server()
    peer = await open_call(server)

    async def taps() -> list[object]:
        return [s.tap for s in server.app.state.bridge.switchboard.sessions()]

    for _ in range(250):
        found = await asyncio.to_thread(server.call_in_loop, taps)
        if found:
            break
        await asyncio.sleep(0.02)
    assert found == [None]
    await peer.send_stop()
    await peer.wait_closed()
    await peer.close()
