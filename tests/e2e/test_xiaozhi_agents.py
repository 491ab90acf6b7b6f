"""xiaozhi devices and LLM agents end to end: typed turns, captions and the face on the
device's screen, and the device's own MCP tools driven by the model. A real bridge, the
emulated device (real libopus) with its MCP server, the cascaded agent on the fake OpenAI
(which scripts the model's tool calls), call records read back from SQLite."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_openai_agent import KEY, openai_env, spoken
from tests.e2e.test_xiaozhi_sessions import echo_factory
from tests.fakes.openai_server import ChatScript, FakeOpenAI, Recorded, tts_ms
from tests.support.records import wait_for_call
from tests.support.serverthread import MakeServer, ServerThread
from tests.support.xiaozhi import open_device
from transports.xiaozhi import device_tools
from transports.xiaozhi.emulator.client import FakeXiaozhi
from transports.xiaozhi.emulator.mcp_server import DeviceMcp
from transports.xiaozhi.protocol import DOWNLINK_FRAME_MS

SET_VOLUME = "self_audio_speaker_set_volume"


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    server = FakeOpenAI(api_key=KEY).start()
    yield server
    server.stop()


def cascade(make_server: MakeServer, fake: FakeOpenAI, tmp_path: Path) -> ServerThread:
    records = f"sqlite:///{tmp_path / 'calls.db'}"
    env = openai_env(fake, BRIDGE_OPENAI_TURN_DEADLINE_S=5, BRIDGE_RECORDS_URL=records)
    return make_server(**env)


def records_of(tmp_path: Path, device: FakeXiaozhi) -> Any:
    call_id = f"xiaozhi-{device.model.session_id[:12]}"
    return wait_for_call(f"sqlite:///{tmp_path / 'calls.db'}", call_id)


def volume_then_answer(request: Recorded) -> ChatScript:
    """The model: sets the volume to 30 with the device's tool, then says how it went."""
    last = request.body["messages"][-1]
    if last == {"role": "user", "content": "Thank you."}:
        return ChatScript("You are welcome.")
    if last["role"] != "tool":
        return ChatScript("Sure.", tool_calls=[(SET_VOLUME, {"volume": 30})])
    if last["content"] == "true":
        return ChatScript("Done, the volume is 30.")
    return ChatScript("Sorry, the speaker did not answer.")


async def test_a_typed_turn_is_answered_with_captions_before_their_audio(
    make_server: MakeServer, fake: FakeOpenAI, tmp_path: Path
) -> None:
    fake.replies.append(ChatScript("Great question! It is sunny today."))
    server = cascade(make_server, fake, tmp_path)
    device = await open_device(server)
    await device.type_text("What is the weather like?")
    await device.wait_replies(1, 15)
    [chat] = fake.to("chat")
    assert chat.body["messages"][-1] == {"role": "user", "content": "What is the weather like?"}
    assert fake.to("transcriptions") == []  # typed: nothing to recognise
    model = device.model
    assert model.stt == ["What is the weather like?"]
    [reply] = model.replies
    assert reply.sentences == ["Great question!", "It is sunny today."]
    # each caption right before the packet its sentence starts in: the first before any
    # audio, the second after the first sentence's audio (within a packet)
    assert reply.sentence_at[0] == 0
    first_ms = reply.sentence_at[1] * DOWNLINK_FRAME_MS
    assert first_ms == pytest.approx(tts_ms("Great question!"), abs=DOWNLINK_FRAME_MS)
    assert reply.emotions == ["happy"]  # once per reply, from its first sentence
    assert model.late_captions == 0
    await device.close()
    [turn] = [t for t in records_of(tmp_path, device).turns if t.user_text]
    assert turn.user_text == "What is the weather like?"
    assert turn.assistant_text == "Great question! It is sunny today."


async def test_a_typed_turn_over_a_reply_cuts_it_off(
    make_server: MakeServer, fake: FakeOpenAI, tmp_path: Path
) -> None:
    long_reply = " ".join(f"This is sentence number {n} of a long answer." for n in range(8))
    fake.replies.extend([ChatScript(long_reply), ChatScript("Okay, I stop.")])
    server = cascade(make_server, fake, tmp_path)
    device = await open_device(server)
    await device.type_text("Tell me a long story.")
    await device.wait(lambda: device.model.speaking and device.played_ms() > 600, 15)
    await device.type_text("Stop, please.")
    await device.wait_replies(2, 15)
    first, second = device.model.replies
    assert first.stopped and device.played_ms(0) < tts_ms(long_reply) / 2
    assert len(first.sentences) < 8  # the unsent sentences were never shown
    assert second.sentences == ["Okay, I stop."]
    assert [r.emotions for r in device.model.replies] == [["neutral"], ["neutral"]]
    assert device.model.late_captions == 0  # nothing of the cut reply after its tts stop
    messages = fake.to("chat")[1].body["messages"]
    assert messages[-1] == {"role": "user", "content": "Stop, please."}
    assert messages[-2]["role"] == "assistant" and len(messages[-2]["content"]) < len(long_reply)
    await device.close()
    turns = [t for t in records_of(tmp_path, device).turns if t.user_text]
    assert [t.user_text for t in turns] == ["Tell me a long story.", "Stop, please."]
    assert turns[0].interrupted and not turns[1].interrupted


async def test_the_model_sets_the_volume_with_the_devices_own_tool(
    make_server: MakeServer, fake: FakeOpenAI, tmp_path: Path
) -> None:
    mcp = DeviceMcp(volume=70, page_size=1)
    fake.reply_of = volume_then_answer
    server = cascade(make_server, fake, tmp_path)
    device = await open_device(server, mcp=mcp)
    await device.wait(lambda: mcp.methods.count("tools/list") == 2, 10)
    assert mcp.methods == ["initialize", "notifications/initialized", "tools/list", "tools/list"]
    init = mcp.received[0]["params"]
    assert init["protocolVersion"] == "2024-11-05" and init["clientInfo"]["name"]
    assert "capabilities" in init
    assert mcp.received[3]["params"] == {"cursor": "self.audio_speaker.set_volume"}
    await device.type_text("Turn the volume down to 30.")
    await device.wait(lambda: "Done, the volume is 30." in spoken(fake), 15)
    assert mcp.volume == 30  # the device's state changed
    assert mcp.received[-1]["method"] == "tools/call"
    assert mcp.received[-1]["params"] == {
        "name": "self.audio_speaker.set_volume",
        "arguments": {"volume": 30},
    }
    first, second = fake.to("chat")
    offered = {tool["function"]["name"] for tool in first.body["tools"]}
    assert {"self_get_device_status", SET_VOLUME} <= offered
    assert second.body["messages"][-1]["content"] == "true"
    await device.wait_replies(1, 10)
    await device.close()
    [tool_call] = records_of(tmp_path, device).tool_calls
    assert (tool_call.name, tool_call.error) == (SET_VOLUME, "")


async def test_a_device_that_never_answers_a_tool_call_does_not_hang_the_call(
    make_server: MakeServer, fake: FakeOpenAI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(device_tools, "CALL_TIMEOUT_S", 1.0)
    mcp = DeviceMcp(calls="silent")
    fake.reply_of = volume_then_answer
    server = cascade(make_server, fake, tmp_path)
    device = await open_device(server, mcp=mcp)
    await device.wait(lambda: mcp.methods.count("tools/list") == 2, 10)
    await device.type_text("Turn the volume down to 30.")
    await device.wait(lambda: "Sorry, the speaker did not answer." in spoken(fake), 15)
    result = json.loads(fake.to("chat")[1].body["messages"][-1]["content"])
    assert result == {"error": "tools/call: the device did not answer within 1 s"}
    assert mcp.volume == 70
    await device.wait_replies(1, 10)
    # the call goes on: the next turn is answered too
    await device.type_text("Thank you.")
    await device.wait_replies(2, 15)
    assert device.close_code is None
    await device.close()
    [tool_call] = records_of(tmp_path, device).tool_calls
    assert "did not answer" in tool_call.error


@pytest.mark.parametrize("listing", ["garbage", "silent"])
async def test_a_device_whose_tools_cannot_be_listed_still_talks(
    make_server: MakeServer,
    fake: FakeOpenAI,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    listing: str,
) -> None:
    monkeypatch.setattr(device_tools, "REQUEST_TIMEOUT_S", 0.5)
    mcp = DeviceMcp(listing=listing)
    fake.replies.append(ChatScript("Hello there."))
    server = cascade(make_server, fake, tmp_path)
    device = await open_device(server, mcp=mcp)
    await device.wait(lambda: "initialize" in mcp.methods, 10)
    await asyncio.sleep(0.7)  # a silent device: past the request's timeout
    await device.type_text("Hi!")
    await device.wait_replies(1, 15)
    offered = {tool["function"]["name"] for tool in fake.to("chat")[0].body["tools"]}
    assert offered == {"end_call"}  # nothing listed, nothing offered
    assert "tools/list" not in mcp.methods
    assert device.close_code is None
    await device.close()


async def test_an_agent_that_reads_no_text_ignores_a_typed_turn(make_server: MakeServer) -> None:
    server = make_server(echo_factory())
    device = await open_device(server)
    await device.type_text("Hello?")
    await asyncio.sleep(0.5)
    assert device.model.replies == [] and device.close_code is None
    await device.close()
