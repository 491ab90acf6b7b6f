"""Deterministic agents for tests, plugged into the real seam of a real server."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import numpy as np

from pipeline.agents.base import Agent, AgentFactory, AgentOutput, CallInfo
from pipeline.audio import AudioSpec
from pipeline.session import CallSession

TONE_SPEC = AudioSpec("pcm16", 16000)
FAREWELL_MS = 360


def tone_pcm(ms: int, freq_hz: float = 440.0, rate_hz: int = 16000) -> bytes:
    t = np.arange(rate_hz * ms // 1000) / rate_hz
    return (6000 * np.sin(2 * np.pi * freq_hz * t)).astype(np.int16).tobytes()


class ToneAgent(Agent):
    """Answers every turn with ``reply_ms`` of a tone at 16 kHz (so output is resampled)."""

    input_spec = TONE_SPEC
    output_spec = TONE_SPEC

    def __init__(self, call: CallInfo, reply_ms: int = 1000, greeting_ms: int = 0) -> None:
        self.call = call
        self.reply_ms = reply_ms
        self.greeting_ms = greeting_ms
        self.utterances: list[bytes] = []
        self.interruptions: list[tuple[int, float]] = []
        self.digits: list[str] = []
        self.closed = False
        self.cancelled_turns: list[int] = []
        self.farewells = 0

    async def start(self, out: AgentOutput) -> None:
        if self.greeting_ms:
            turn = out.begin_turn()
            await out.audio(turn, tone_pcm(self.greeting_ms, 300))
            out.end_turn(turn)

    async def respond(self, turn_id: int, utterance: bytes, out: AgentOutput) -> None:
        self.utterances.append(utterance)
        pcm = tone_pcm(self.reply_ms)
        step = TONE_SPEC.bytes_for_ms(100)
        try:
            for i in range(0, len(pcm), step):
                await out.audio(turn_id, pcm[i : i + step])
        except asyncio.CancelledError:
            self.cancelled_turns.append(turn_id)
            raise

    def dtmf(self, digit: str, out: AgentOutput) -> None:
        self.digits.append(digit)

    async def farewell(self, turn_id: int, out: AgentOutput) -> None:
        self.farewells += 1
        await out.audio(turn_id, tone_pcm(FAREWELL_MS, 500))

    def interrupted(self, turn_id: int, heard_ms: float) -> None:
        self.interruptions.append((turn_id, heard_ms))

    async def close(self) -> None:
        self.closed = True


class HangUpAgent(ToneAgent):
    """Says a short goodbye to the first utterance and ends the call."""

    async def respond(self, turn_id: int, utterance: bytes, out: AgentOutput) -> None:
        await super().respond(turn_id, utterance, out)
        out.hang_up("agent said goodbye")


class FailingStartAgent(ToneAgent):
    async def start(self, out: AgentOutput) -> None:
        raise ConnectionError("provider unreachable")


class ExplodingDtmfAgent(ToneAgent):
    """Raises inside the receive path: the call must close 1011 and nothing else suffer."""

    def dtmf(self, digit: str, out: AgentOutput) -> None:
        raise RuntimeError("injected fault")


class FailingTurnAgent(ToneAgent):
    async def respond(self, turn_id: int, utterance: bytes, out: AgentOutput) -> None:
        raise RuntimeError("model returned garbage")


class SlowAgent(ToneAgent):
    """Stalls 2 s before answering (a slow model)."""

    async def respond(self, turn_id: int, utterance: bytes, out: AgentOutput) -> None:
        await asyncio.sleep(2.0)
        await super().respond(turn_id, utterance, out)


class BufferedReplyAgent(ToneAgent):
    """Writes its reply without pausing, as an agent reading a stream that arrived whole, and
    notes whether its first audio was already on its way when the first write returned."""

    first_write_sent: bool | None = None

    async def respond(self, turn_id: int, utterance: bytes, out: AgentOutput) -> None:
        latencies = out.stats.turn_latency_ms if isinstance(out, CallSession) else []
        answered = len(latencies)
        await out.audio(turn_id, tone_pcm(100))
        self.first_write_sent = len(latencies) > answered  # the pacer took the first chunk
        await super().respond(turn_id, utterance, out)


class Factory(AgentFactory):
    """Builds agents with ``build`` and keeps them so tests can inspect what they saw."""

    name = "test"

    def __init__(self, build: Callable[[CallInfo], Agent]) -> None:
        self._build = build
        self.agents: list[Agent] = []

    def create(self, call: CallInfo) -> Agent:
        agent = self._build(call)
        self.agents.append(agent)
        return agent


class StallingAgent(ToneAgent):
    """Never answers: a hung provider."""

    async def respond(self, turn_id: int, utterance: bytes, out: AgentOutput) -> None:
        self.utterances.append(utterance)
        await asyncio.Event().wait()


class StallMidReplyAgent(ToneAgent):
    """Starts answering, then hangs with the response open."""

    async def respond(self, turn_id: int, utterance: bytes, out: AgentOutput) -> None:
        await out.audio(turn_id, tone_pcm(240))
        await asyncio.Event().wait()
