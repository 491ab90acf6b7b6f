"""Pieces shared by the Realtime agent tests: the bridge wired to the fake, a live phone line."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from bridge.agents import build_agent_factory
from bridge.settings import Settings
from pipeline.g711 import pcm16_to_ulaw
from pipeline.observers import ObservedCall, SessionObserver
from tests.fakes.agents import Factory, tone_pcm
from tests.fakes.realtime_server import API_KEY, FakeRealtime, Reply
from tests.support.serverthread import MakeServer, ServerThread
from transports.twilio.emulator.client import FakeTwilio

SILENCE = b"\xff"
FRAME_BYTES = 160  # 20 ms of μ-law


def start_bridge(
    make_server: MakeServer, fake: FakeRealtime, **env: Any
) -> tuple[ServerThread, Factory, TranscriptLog]:
    """A real server with ``BRIDGE_AGENT=openai-realtime`` pointed at the fake."""
    env = {
        "BRIDGE_AGENT": "openai-realtime",
        "BRIDGE_OPENAI_API_KEY": API_KEY,
        "BRIDGE_OPENAI_REALTIME_URL": fake.url,
        "BRIDGE_FIRST_MESSAGE": "",
        "BRIDGE_OPENAI_REALTIME_RECONNECT_S": 5,
        **env,
    }
    settings = Settings.from_env({k: str(v) for k, v in env.items()}, dotenv_path=None)
    factory = Factory(build_agent_factory(settings).create)
    server = make_server(factory, **env)
    transcripts = TranscriptLog()
    server.app.state.bridge.observers.add(transcripts)
    return server, factory, transcripts


class TranscriptLog(SessionObserver):
    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []

    def on_transcript(self, session: ObservedCall, turn_id: int, role: str, text: str) -> None:
        self.lines.append((role, text))


def speech_ulaw(ms: int, freq_hz: float = 700.0) -> bytes:
    """A loud tone the fake's energy VAD hears as speech, as Twilio sends it."""
    return pcm16_to_ulaw(tone_pcm(ms, freq_hz, 8000))


def reply_ulaw(reply: Reply) -> bytes:
    """What the fake sends for ``reply`` on a phone call (its format is μ-law)."""
    return pcm16_to_ulaw(tone_pcm(reply.audio_ms, reply.freq_hz, 8000))


class PhoneLine:
    """Streams μ-law at real time like Twilio does: queued speech, otherwise silence.

    Keeps every byte it sent, so a test can compare it with what the model received.
    """

    def __init__(self, peer: FakeTwilio) -> None:
        self.peer = peer
        self.sent = bytearray()
        self._pending = bytearray()
        self._task = asyncio.create_task(self._run(), name="phone-line")

    def say(self, ulaw: bytes) -> None:
        self._pending += ulaw

    @property
    def speaking(self) -> bool:
        return bool(self._pending)

    async def _run(self) -> None:
        start = time.monotonic()
        frames = 0
        while not self.peer.is_closed:
            frame = bytes(self._pending[:FRAME_BYTES]) or SILENCE * FRAME_BYTES
            del self._pending[:FRAME_BYTES]
            try:
                await self.peer.send_media(frame)
            except Exception:
                return
            self.sent += frame
            frames += 1
            await asyncio.sleep(max(0.0, start + frames * 0.02 - time.monotonic()))

    async def stop(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


async def wait_for(ready: Any, timeout_s: float = 15.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout_s
    while not ready():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)
