"""Shared pieces of the ESP32 end-to-end tests."""

from __future__ import annotations

import itertools
from typing import Any

import jwt
import numpy as np
from websockets.exceptions import InvalidStatus

from pipeline.agents.base import Agent, AgentOutput, CallInfo
from pipeline.audio import PCM16_16K
from pipeline.wav import read_wav
from tests.support.audio import FIXTURES
from tests.support.serverthread import ServerThread
from transports.esp32.emulator.client import FakeToy, ToyResponse

SECRET = "test-secret-0123456789-abcdefghijklmnop-0123456789-abcdefghijklmn"  # 64+ bytes
#: the spec's minimum gap between COMPLETE/ERROR and the next CREATED, with timing slack
MIN_GAP_S = 1.2 - 0.05


def token(
    sub: str = "user-1", secret: str = SECRET, algorithm: str = "HS256", **claims: Any
) -> str:
    return jwt.encode({"sub": sub, **claims}, secret, algorithm=algorithm)


def hello_16k() -> bytes:
    pcm, rate = read_wav(FIXTURES / "hello_16k.wav")
    assert rate == 16000
    return pcm


def tone_16k(ms: int, freq_hz: float = 1000.0, rate_hz: int = 16000) -> bytes:
    t = np.arange(rate_hz * ms // 1000) / rate_hz
    return (8000 * np.sin(2 * np.pi * freq_hz * t)).astype(np.int16).tobytes()


def toy_url(server: ServerThread) -> str:
    return f"{server.ws}/ws/esp32"


async def open_toy(server: ServerThread, **kwargs: Any) -> FakeToy:
    kwargs.setdefault("token", token())
    toy = FakeToy(toy_url(server), **kwargs)
    return await toy.connect()


async def refused_status(server: ServerThread, **kwargs: Any) -> int:
    """Connect a toy that must be refused before the 101; returns the HTTP status."""
    toy = FakeToy(toy_url(server), **kwargs)
    try:
        await toy.connect()
    except InvalidStatus as exc:
        return exc.response.status_code
    finally:
        await toy.close()
    raise AssertionError("the upgrade was accepted")


def assert_gaps(responses: list[ToyResponse]) -> None:
    """No CREATED sooner than 1200 ms after the previous COMPLETE/ERROR (spec TE4)."""
    for previous, current in itertools.pairwise(responses):
        if current.bracketed and previous.ended_at is not None:
            assert current.created_at - previous.ended_at >= MIN_GAP_S, (previous, current)


class RecordingStreamAgent(Agent):
    """A speech-to-speech-style agent: receives every inbound frame through feed()."""

    detects_turns = True
    input_spec = PCM16_16K
    output_spec = PCM16_16K

    def __init__(self, call: CallInfo) -> None:
        self.call = call
        self.received = bytearray()

    def feed(self, audio: bytes) -> None:
        self.received += audio


class SilentAgent(Agent):
    """Answers nothing (an empty transcript): the toy must get RESPONSE.ERROR."""

    input_spec = PCM16_16K
    output_spec = PCM16_16K

    def __init__(self, call: CallInfo) -> None:
        self.call = call
        self.turns = 0

    async def respond(self, turn_id: int, utterance: bytes, out: AgentOutput) -> None:
        self.turns += 1
