"""The echo agent: plays each user utterance straight back. For line tests and benchmarks."""

from __future__ import annotations

from pipeline.agents.base import Agent, AgentFactory, AgentOutput, CallInfo
from pipeline.audio import AudioSpec

#: Echo audio is handed over in slices so playout back-pressure applies to long utterances.
ECHO_SLICE_MS = 200


class EchoAgent(Agent):
    """Receives and returns PCM16 at the call's native rate: nothing is resampled."""

    def __init__(self, spec: AudioSpec) -> None:
        self.input_spec = spec
        self.output_spec = spec
        self.digits: list[str] = []

    async def respond(self, turn_id: int, utterance: bytes, out: AgentOutput) -> None:
        step = self.output_spec.bytes_for_ms(ECHO_SLICE_MS)
        for i in range(0, len(utterance), step):
            await out.audio(turn_id, utterance[i : i + step])

    def dtmf(self, digit: str, out: AgentOutput) -> None:
        self.digits.append(digit)


class EchoAgentFactory(AgentFactory):
    name = "echo"

    def create(self, call: CallInfo) -> Agent:
        return EchoAgent(call.native_in)
