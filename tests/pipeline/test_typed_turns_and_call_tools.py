"""Typed turns, captions' positions and a call's own tools, in the call core.

Typed turns run on a virtual clock in a real :class:`CallSession` (``tests/support/core.py``):
like a keypad entry they cut a reply off for real and are turns of their own. Captions are
placed at the agent's audio position. A toolbox asks a call's tool source at every use, so
tools listed during the call are offered from then on, under names the model may call.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from pipeline.agents.base import AgentOutput, CallInfo
from pipeline.agents.persona import Persona
from pipeline.audio import PCM16_16K
from pipeline.captions import Captions
from pipeline.tasks import TaskSet
from pipeline.tools.base import Tool, ToolContext, ToolRequest, ToolResult, ToolSpec
from pipeline.tools.call_tools import MAX_FUNCTION_NAME_CHARS, function_name
from pipeline.tools.offer import ToolOffer
from pipeline.tools.toolbox import Toolbox
from tests.fakes.agents import ToneAgent, tone_pcm
from tests.fakes.port import RecordingPort
from tests.support.core import Core, wait_until
from tests.support.virtual_time import run_virtual

INFO = CallInfo("call-1", "fake", PCM16_16K)


class TypingAgent(ToneAgent):
    """Answers typed text with a captioned tone."""

    reads_text = True

    def __init__(self, reply_ms: int = 1000) -> None:
        super().__init__(INFO, reply_ms=reply_ms)
        self.typed_texts: list[tuple[int, str]] = []

    async def typed(self, turn_id: int, text: str, out: AgentOutput) -> None:
        self.typed_texts.append((turn_id, text))
        out.transcript(turn_id, "user", text)
        out.caption(turn_id, f"you said {text}")
        await out.audio(turn_id, tone_pcm(self.reply_ms))


def test_a_typed_turn_cuts_a_reply_off_and_is_answered() -> None:
    async def main() -> None:
        agent = TypingAgent(reply_ms=3000)
        core = await Core(agent).start()
        core.session.typed_turn("tell me a story")
        await wait_until(lambda: core.port.played_ms(1) > 500)
        core.session.typed_turn("stop")
        await wait_until(lambda: core.port.names()[-1:] == ["end"] and len(agent.typed_texts) == 2)
        assert agent.typed_texts == [(1, "tell me a story"), (2, "stop")]
        [(turn, heard_ms)] = agent.interruptions
        assert turn == 1 and 500 <= heard_ms < 1000  # a real interruption, heard so far
        assert [h.args[0] for h in core.observer.named("user_turn")] == [1, 2]
        assert [h.args[0] for h in core.observer.named("barge_in")] == [1]
        await core.hang_up()

    run_virtual(main)


def test_an_agent_that_reads_no_text_leaves_a_reply_alone() -> None:
    async def main() -> None:
        agent = ToneAgent(INFO, reply_ms=2000, greeting_ms=1500)
        core = await Core(agent).start()
        await wait_until(lambda: core.port.played_ms(1) > 300)
        core.session.typed_turn("hello?")
        await wait_until(lambda: core.port.names()[-1:] == ["end"])
        assert agent.interruptions == [] and core.observer.named("user_turn") == []
        sent_ms = sum(sent.duration_ms for sent in core.port.audio_of(1))
        assert sent_ms == pytest.approx(1500, abs=1)  # the whole greeting
        await core.hang_up()

    run_virtual(main)


@dataclass
class ScreenPort(RecordingPort):
    captions: list[tuple[int, float, str]] = field(default_factory=list)

    def caption(self, turn_id: int, at_ms: float, text: str) -> None:
        self.captions.append((turn_id, at_ms, text))


def test_captions_are_placed_at_the_audio_queued_before_them() -> None:
    port = ScreenPort(lambda: 0.0)
    captions = Captions(port, PCM16_16K)
    captions.caption(1, "  First.  ")
    captions.audio(1, bytes(PCM16_16K.bytes_for_ms(500)))
    captions.caption(1, "Second.")
    captions.caption(1, "   ")  # no words: nothing to show
    captions.audio(2, bytes(PCM16_16K.bytes_for_ms(100)))
    captions.caption(2, "Other turn.")
    assert port.captions == [(1, 0.0, "First."), (1, 500.0, "Second."), (2, 100.0, "Other turn.")]
    plain = Captions(RecordingPort(lambda: 0.0), PCM16_16K)  # no screen: nothing kept
    plain.audio(1, bytes(320))
    plain.caption(1, "ignored")


# -- a call's own tools ----------------------------------------------------------------------


def test_function_names_are_safe_unique_and_stable() -> None:
    assert function_name("self.audio_speaker.set_volume") == "self_audio_speaker_set_volume"
    assert function_name("get-time_2") == "get-time_2"
    assert function_name("温度") == "__"
    assert function_name("") == "tool"
    taken = {"self_light_on"}
    other = function_name("self.light.on", taken)
    assert other != "self_light_on" and other.startswith("self_light_on_")
    assert other == function_name("self.light.on", taken)  # the same name maps the same way
    long = "x." * 60
    mapped = function_name(long)
    assert len(mapped) == MAX_FUNCTION_NAME_CHARS and mapped != function_name("y" + long)


class EchoTool(Tool):
    def __init__(self, name: str, answer: str) -> None:
        self.spec = ToolSpec(name, "test tool")
        self.answer = answer

    async def run(self, arguments: dict[str, Any], context: ToolContext) -> ToolResult:
        return ToolResult(self.answer)


@dataclass
class Source:
    listed: list[Tool] = field(default_factory=list)

    def tools(self) -> Sequence[Tool]:
        return self.listed


class Call:
    def __init__(self) -> None:
        self.tasks = TaskSet("test")
        self.records: list[object] = []

    def tool_call(self, record: object) -> None:
        self.records.append(record)

    async def transfer(self, target: object) -> None:
        raise AssertionError("no transfers")


async def test_a_toolbox_offers_a_sources_tools_as_they_are_listed() -> None:
    source = Source()
    device_info = CallInfo("call-1", "xiaozhi", PCM16_16K, tools=source)
    toolbox = ToolOffer().toolbox(Persona(), device_info, logging.getLogger())
    assert toolbox and toolbox.specs == []  # may have tools: the agent keeps it
    source.listed = [EchoTool("self_get_device_status", "ok"), EchoTool("fixed", "device")]
    assert [spec.name for spec in toolbox.specs] == ["self_get_device_status", "fixed"]
    assert "self_get_device_status" in toolbox
    call = Call()
    [result] = await toolbox.run([ToolRequest("c1", "self_get_device_status", "{}")], 1, call)
    assert result == ToolResult("ok")
    fixed = Toolbox([EchoTool("fixed", "persona")], sources=[source])
    [result] = await fixed.run([ToolRequest("c2", "fixed", "{}")], 1, call)
    assert result.output == "persona"  # a fixed tool's name wins
    source.listed = []
    [result] = await toolbox.run([ToolRequest("c3", "self_get_device_status", "{}")], 2, call)
    assert "no tool named" in result.error
    await asyncio.sleep(0)
    await call.tasks.cancel_all()
    assert not Toolbox([])
