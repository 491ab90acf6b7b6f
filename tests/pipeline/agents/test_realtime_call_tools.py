"""The Realtime agent offers a call's own tools listed after its session opened (a xiaozhi
device lists its MCP tools a moment after the hello): the next response's session has them,
and the model can call them. The real agent against the fake Realtime server on loopback."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest

from pipeline.agents.base import CallInfo
from pipeline.agents.persona import Persona, PersonaBook
from pipeline.agents.realtime import events
from pipeline.agents.realtime.agent import RealtimeAgent, RealtimeAgentFactory
from pipeline.agents.realtime.config import RealtimeConfig
from pipeline.audio import PCM16_16K, PCM16_24K
from pipeline.tasks import TaskSet
from pipeline.tools.base import (
    Tool,
    ToolCallRecord,
    ToolContext,
    ToolResult,
    ToolSpec,
    TransferFailed,
    TransferTarget,
)
from tests.fakes.agents import tone_pcm
from tests.fakes.realtime_server import API_KEY, FakeRealtime, FakeSession, Reply

SILENCE_MS = 200
LAMP = ToolSpec(
    "self_lamp_set",
    "Turn the device's lamp on or off.",
    {"type": "object", "properties": {"on": {"type": "boolean"}}, "required": ["on"]},
)


class Lamp(Tool):
    spec = LAMP

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    async def run(self, arguments: dict[str, Any], context: ToolContext) -> ToolResult:
        self.calls.append(arguments)
        return ToolResult(json.dumps({"lamp": "on" if arguments["on"] else "off"}))


class DeviceToolsSoFar:
    """A far end's tools (a :class:`~pipeline.tools.call_tools.CallTools`), listed later."""

    def __init__(self) -> None:
        self.listed: list[Tool] = []

    def tools(self) -> Sequence[Tool]:
        return self.listed


class Output:
    """The call as the agent sees it: turns, audio, tool records."""

    def __init__(self) -> None:
        self.tasks = TaskSet("test")
        self.audio_bytes: dict[int, int] = {}
        self.ended: list[int] = []
        self.records: list[ToolCallRecord] = []
        self.failed: list[tuple[int, str]] = []
        self._turns = 0

    def begin_turn(self) -> int:
        self._turns += 1
        return self._turns

    async def audio(self, turn_id: int, pcm: bytes) -> None:
        self.audio_bytes[turn_id] = self.audio_bytes.get(turn_id, 0) + len(pcm)

    def end_turn(self, turn_id: int) -> None:
        self.ended.append(turn_id)

    def caption(self, turn_id: int, text: str) -> None:
        pass

    def commit_turn(self, words: str | None = None) -> int | None:
        raise AssertionError("the Realtime agent's turns come from the server")

    def user_speech_started(self) -> None:
        pass

    def interrupt(self) -> None:
        pass

    async def played(self, turn_id: int, position_ms: float | None = None) -> None:
        pass

    def judging_sound(self) -> bool:
        return False

    def transcript(self, turn_id: int, role: str, text: str) -> None:
        pass

    def hang_up(self, reason: str) -> None:
        raise AssertionError(f"hung up: {reason}")

    def tool_call(self, record: ToolCallRecord) -> None:
        self.records.append(record)

    async def transfer(self, target: TransferTarget) -> None:
        raise TransferFailed("no transfers here")

    async def fail_turn(self, turn_id: int, kind: str) -> None:
        self.failed.append((turn_id, kind))


@pytest.fixture
async def fake() -> AsyncIterator[FakeRealtime]:
    async with FakeRealtime(pace=8.0) as server:
        yield server


def realtime_agent(fake: FakeRealtime, device: DeviceToolsSoFar) -> RealtimeAgent:
    """The agent as the factory builds it for a toy whose device brings its own tools."""
    config = RealtimeConfig(url=fake.url, api_key=API_KEY, silence_ms=SILENCE_MS)
    factory = RealtimeAgentFactory(config, PersonaBook(Persona(system_prompt="Be brief.")))
    call = CallInfo("call-1", "xiaozhi", PCM16_16K, tools=device)
    agent = factory.create(call)
    assert isinstance(agent, RealtimeAgent) and agent.input_spec == PCM16_24K
    return agent


def speak(agent: RealtimeAgent) -> None:
    """A caller's turn: loud enough for the fake's VAD, then the silence that ends it."""
    agent.feed(tone_pcm(400, 700.0, 24000) + bytes(PCM16_24K.bytes_for_ms(SILENCE_MS + 200)))


def tool_names(session_update: dict[str, Any]) -> list[str]:
    return [tool["name"] for tool in session_update["session"]["tools"]]


def position(session: FakeSession, event: dict[str, Any]) -> int:
    """Where ``event`` itself is among the events received (answers are equal dicts)."""
    return next(i for i, seen in enumerate(session.events) if seen is event)


def done(session: FakeSession) -> int:
    return len(session.sent_of_type("response.done"))


async def test_tools_listed_after_connect_are_offered_to_the_next_response_and_called(
    fake: FakeRealtime,
) -> None:
    lamp, device = Lamp(), DeviceToolsSoFar()
    fake.replies.extend(
        [
            Reply(audio_ms=300, transcript="Hello."),
            Reply(audio_ms=300, transcript="Sure.", tool_calls=[("self_lamp_set", {"on": True})]),
            Reply(audio_ms=300, transcript="The lamp is on."),
        ]
    )
    agent, out = realtime_agent(fake, device), Output()
    await agent.start(out)
    try:
        await fake.wait_until(lambda: bool(fake.sessions), what="the connection")
        session = fake.sessions[0]
        speak(agent)  # a turn before the device listed anything: its tools are not there
        await fake.wait_until(lambda: done(session) == 1, what="the first answer")
        assert [tool_names(u) for u in session.of_type("session.update")] == [["end_call"]]

        device.listed.append(lamp)  # the device lists its tools mid-call
        speak(agent)
        await fake.wait_until(lambda: done(session) == 3, what="the tool's answer")
        await fake.wait_until(lambda: len(out.ended) == 3, what="the answer played")
    finally:
        await agent.close()
        await out.tasks.cancel_all()

    opening, update = session.of_type("session.update")  # one update, no more
    assert update["session"] == {
        "type": "realtime",
        "tools": events.session_tools([LAMP]),
    }  # only the tools: the voice, format and turn detection stay as they were
    creates = session.of_type("response.create")
    assert len(creates) == 3
    assert position(session, creates[0]) < position(session, update) < position(session, creates[1])
    assert [t["name"] for t in session.config["tools"]] == ["end_call", "self_lamp_set"]
    assert session.config["audio"] == opening["session"]["audio"]
    # the model called the device's tool: it ran, and its result went back before the answer
    assert lamp.calls == [{"on": True}]
    [(call_id, output)] = session.outputs.items()
    assert session.calls[call_id] == "self_lamp_set"
    assert json.loads(output) == {"lamp": "on"}
    [record] = {id(r): r for r in out.records}.values()  # reported as it starts and ends
    assert (record.name, record.error, record.turn_id) == ("self_lamp_set", "", 2)
    assert not out.failed
    assert not [e for e in session.sent_of_type("error")]


async def test_unchanged_tools_are_not_offered_again(fake: FakeRealtime) -> None:
    device = DeviceToolsSoFar()
    device.listed.append(Lamp())  # listed before the session opened: in its first update
    agent, out = realtime_agent(fake, device), Output()
    await agent.start(out)
    try:
        await fake.wait_until(lambda: bool(fake.sessions), what="the connection")
        session = fake.sessions[0]
        for answers in (1, 2):
            speak(agent)
            await fake.wait_until(lambda: done(session) == answers, what="an answer")  # noqa: B023
    finally:
        await agent.close()
        await out.tasks.cancel_all()
    [update] = session.of_type("session.update")
    assert tool_names(update) == ["end_call", "self_lamp_set"]
    assert len(session.of_type("response.create")) == 2
