"""Shared pieces of the speech-stack end-to-end tests (tests/e2e/test_speech_*.py): the
settings that point each stage of the cascade at its fake, and what a test reads back."""

from __future__ import annotations

import socket
from typing import Any

from pipeline.observers import ObservedCall, SessionObserver
from tests.fakes.deepgram import API_KEY as DEEPGRAM_KEY
from tests.fakes.deepgram import CF_TOKEN, FakeDeepgram
from tests.fakes.elevenlabs import API_KEY as ELEVENLABS_KEY
from tests.fakes.elevenlabs import FakeElevenLabs
from tests.fakes.openai_server import FakeOpenAI
from tests.support.serverthread import ServerThread
from tests.support.twilio_calls import background
from transports.twilio.emulator.client import FakeTwilio

OPENAI_KEY = "sk-test-0123456789"
ELEVENLABS_VOICE = "voice-test-1"
CF_ACCOUNT = "acct-test"
CF_GATEWAY = "gw-test"
ULAW_BYTES_PER_MS = 8
#: a phone's heard audio: chunking and the last partial frame make it differ slightly
TOLERANCE_MS = 60


def cascade_env(openai: FakeOpenAI, **overrides: Any) -> dict[str, Any]:
    """The cascade on the fake OpenAI (every stage, until ``overrides`` say otherwise), with
    short deadlines so a failure shows within a second or two."""
    env: dict[str, Any] = {
        "BRIDGE_AGENT": "openai",
        "BRIDGE_OPENAI_BASE_URL": openai.base_url,
        "BRIDGE_OPENAI_API_KEY": OPENAI_KEY,
        "BRIDGE_FIRST_MESSAGE": "",
        "BRIDGE_OPENAI_TURN_DEADLINE_S": 2,
        "BRIDGE_OPENAI_REQUEST_TIMEOUT_S": 0.6,
    }
    env.update(overrides)
    return env


def deepgram_env(fake: FakeDeepgram) -> dict[str, Any]:
    return {"BRIDGE_DEEPGRAM_API_KEY": DEEPGRAM_KEY, "BRIDGE_DEEPGRAM_URL": fake.ws}


def cloudflare_env(fake: FakeDeepgram) -> dict[str, Any]:
    """Workers AI through AI Gateway, served by the fake Deepgram's gateway paths."""
    return {
        "BRIDGE_CLOUDFLARE_ACCOUNT_ID": CF_ACCOUNT,
        "BRIDGE_CLOUDFLARE_GATEWAY_ID": CF_GATEWAY,
        "BRIDGE_CLOUDFLARE_API_TOKEN": CF_TOKEN,
        "BRIDGE_CLOUDFLARE_URL": fake.ws,
    }


def elevenlabs_env(fake: FakeElevenLabs) -> dict[str, Any]:
    return {
        "BRIDGE_ELEVENLABS_API_KEY": ELEVENLABS_KEY,
        "BRIDGE_ELEVENLABS_VOICE_ID": ELEVENLABS_VOICE,
        "BRIDGE_ELEVENLABS_URL": fake.base_url,
    }


def refused_url() -> str:
    """An HTTP base URL on loopback where nothing listens (a chat server that is down)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


class Transcripts(SessionObserver):
    def __init__(self) -> None:
        self.lines: list[tuple[int, str, str]] = []

    def on_transcript(self, session: ObservedCall, turn_id: int, role: str, text: str) -> None:
        self.lines.append((turn_id, role, text))

    def of(self, role: str) -> list[str]:
        return [text for _, r, text in self.lines if r == role]


def watch_transcripts(server: ServerThread) -> Transcripts:
    transcripts = Transcripts()
    server.app.state.bridge.observers.add(transcripts)
    return transcripts


def heard_ms(peer: FakeTwilio, since_bytes: int = 0) -> float:
    return (len(peer.played) - since_bytes) / ULAW_BYTES_PER_MS


async def listen(peer: FakeTwilio, quiet_s: float = 0.8, timeout_s: float = 15) -> None:
    """Keep the line alive with silence until what is playing has finished."""
    talker = background(peer.silence(int(timeout_s * 1000)))
    try:
        await peer.wait_quiet(quiet_s=quiet_s, timeout_s=timeout_s)
    finally:
        talker.cancel()
