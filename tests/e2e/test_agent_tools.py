"""Agents that act, end to end: a real bridge and real phone calls, the cascaded agent on the
fake OpenAI (which scripts the model's tool calls), an HTTP tool server and an MCP server on
loopback, the fake Twilio REST API, and the call records read back from SQLite."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline import call_actions
from tests.e2e.test_openai_agent import KEY, openai_env, spoken
from tests.fakes.mcp_server import FakeMcpServer
from tests.fakes.openai_server import ChatScript, FakeOpenAI, Recorded
from tests.fakes.tool_server import FakeToolServer
from tests.fakes.twilio_rest_server import FakeTwilioRest
from tests.support.records import wait_for_call
from tests.support.serverthread import MakeServer, ServerThread
from tests.support.stacks import listen
from tests.support.twilio_calls import background, open_call, say
from tests.support.twilio_signing import ACCOUNT, TOKEN, amd_form, post_callback, signed_call
from transports.twilio.emulator.client import FakeTwilio

SECRET = "orders-secret-0123"
ANSWER = "Order 42 has shipped and arrives Friday."
PUBLIC = "voice.example.com"


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    server = FakeOpenAI(api_key=KEY).start()
    yield server
    server.stop()


def personas(tmp_path: Path, tool_server: FakeToolServer, extra: str = "") -> str:
    path = tmp_path / "personas.toml"
    path.write_text(
        f"""
[personas.shop]
system_prompt = "You help customers of a garden shop. Press 1 for opening hours."
filler = "One moment, let me check."
voicemail = "Hello from the garden shop, please call us back."
handoff = "Let me put you through."

[[personas.shop.tools]]
name = "order_status"
description = "The status of an order, by its number."
url = "{tool_server.base_url}/orders/{{order_id}}"
method = "GET"
headers = {{ Authorization = "Bearer ${{ORDERS_KEY}}" }}
timeout_s = 5

[personas.shop.tools.parameters]
type = "object"
properties = {{ order_id = {{ type = "string" }} }}
required = ["order_id"]

[[personas.shop.transfer]]
name = "billing"
to = "+15551230002"
description = "Billing questions."
{extra}
[numbers]
"+15550002222" = "shop"
"""
    )
    return str(path)


def tool_then_answer(name: str, arguments: dict[str, Any], opening: str = "Let me look.") -> Any:
    """The model: asks for ``name`` first, then answers with what the tool gave."""

    def reply(request: Recorded) -> ChatScript:
        last = request.body["messages"][-1]
        if last["role"] != "tool":
            return ChatScript(opening, tool_calls=[(name, arguments)])
        result = json.loads(last["content"])
        if name == "order_status":
            return ChatScript(
                f"Order {result['order_id']} has {result['status']} and arrives {result['eta']}."
            )
        return ChatScript(f"You are {result['name']}, a {result['tier']} customer.")

    return reply


def shop_server(
    make_server: MakeServer,
    fake: FakeOpenAI,
    tmp_path: Path,
    tool_server: FakeToolServer,
    monkeypatch: pytest.MonkeyPatch,
    extra: str = "",
    **env: Any,
) -> ServerThread:
    monkeypatch.setenv("ORDERS_KEY", SECRET)
    return make_server(
        **openai_env(
            fake,
            BRIDGE_PERSONAS_FILE=personas(tmp_path, tool_server, extra),
            BRIDGE_RECORDS_URL=f"sqlite:///{tmp_path / 'calls.db'}",
            BRIDGE_OPENAI_TURN_DEADLINE_S=5,
            **env,
        )
    )


async def shop_call(server: ServerThread) -> FakeTwilio:
    return await open_call(server, params={"persona": "shop", "from": "+15550001111"})


async def test_a_caller_asks_for_an_order_and_hears_the_tools_answer(
    make_server: MakeServer,
    fake: FakeOpenAI,
    tool_server: FakeToolServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    hello_ulaw: bytes,
) -> None:
    fake.transcripts.append("What is the status of order 42?")
    fake.reply_of = tool_then_answer("order_status", {"order_id": "42"})
    server = shop_server(make_server, fake, tmp_path, tool_server, monkeypatch)
    peer = await shop_call(server)
    await say(peer, hello_ulaw)
    await fake.wait_for(lambda: ANSWER in spoken(fake), what="the answer")
    await listen(peer)
    assert spoken(fake) == ["Let me look.", ANSWER]  # quick tool: no filler
    [seen] = tool_server.requests
    assert (seen.method, seen.path, seen.headers["authorization"]) == (
        "GET",
        "/orders/42",
        f"Bearer {SECRET}",
    )
    first, second = fake.to("chat")
    offered = [t["function"]["name"] for t in first.body["tools"]]
    assert offered == ["end_call", "order_status"]  # a phone call without REST: no transfer
    asked, answered = second.body["messages"][-2:]
    assert asked["role"] == "assistant" and asked["content"] == "Let me look."
    assert asked["tool_calls"][0]["function"]["name"] == "order_status"
    assert answered["tool_call_id"] == asked["tool_calls"][0]["id"]
    assert json.loads(answered["content"])["status"] == "shipped"
    await peer.close()
    detail = await asyncio.to_thread(
        wait_for_call, f"sqlite:///{tmp_path / 'calls.db'}", peer.call_sid
    )
    [tool] = detail.tool_calls
    assert (tool.name, json.loads(tool.arguments), tool.error) == (
        "order_status",
        {"order_id": "42"},
        "",
    )
    assert "shipped" in tool.result and tool.duration_ms is not None and not tool.speech_cancelled
    assert SECRET not in str(detail)
    [turn] = detail.turns
    assert turn.assistant_text == f"Let me look. {ANSWER}"


async def test_a_slow_tool_brings_the_filler_line(
    make_server: MakeServer,
    fake: FakeOpenAI,
    tool_server: FakeToolServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    hello_ulaw: bytes,
) -> None:
    tool_server.delay_s["/orders/42"] = 2.5
    fake.transcripts.append("What about order 42?")
    fake.reply_of = tool_then_answer("order_status", {"order_id": "42"})
    server = shop_server(make_server, fake, tmp_path, tool_server, monkeypatch)
    peer = await shop_call(server)
    await say(peer, hello_ulaw)
    await fake.wait_for(lambda: ANSWER in spoken(fake), timeout_s=15, what="the answer")
    await listen(peer)
    assert spoken(fake) == ["Let me look.", "One moment, let me check.", ANSWER]
    [tool] = tool_server.requests
    filler = next(r for r in fake.to("speech") if r.body["input"].startswith("One moment"))
    waited_s = filler.started_at - tool.at
    assert 0.9 <= waited_s < 2.5, waited_s  # after about a second, before the tool answered
    await peer.close()


async def test_an_mcp_servers_tools_are_offered_and_called(
    make_server: MakeServer,
    fake: FakeOpenAI,
    tool_server: FakeToolServer,
    mcp_fake: FakeMcpServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    hello_ulaw: bytes,
) -> None:
    extra = f'\n[[personas.shop.mcp]]\nurl = "{mcp_fake.url}"\ntools = ["lookup_customer"]\n'
    fake.transcripts.append("Who am I?")
    fake.reply_of = tool_then_answer("lookup_customer", {"phone": "+15550001111"}, "Checking.")
    server = shop_server(make_server, fake, tmp_path, tool_server, monkeypatch, extra)
    peer = await shop_call(server)
    await say(peer, hello_ulaw)
    await fake.wait_for(lambda: len(spoken(fake)) == 2, what="the answer")
    offered = [t["function"]["name"] for t in fake.to("chat")[0].body["tools"]]
    assert offered == ["end_call", "order_status", "lookup_customer"]
    assert mcp_fake.called("lookup_customer") == [{"phone": "+15550001111"}]
    assert spoken(fake)[1] == "You are Ada, a gold customer."
    await peer.close()


async def test_a_keypad_entry_is_the_callers_turn(
    make_server: MakeServer,
    fake: FakeOpenAI,
    tool_server: FakeToolServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake.replies.append(ChatScript("We open at nine."))
    server = shop_server(
        make_server, fake, tmp_path, tool_server, monkeypatch, BRIDGE_KEYPAD_GAP_MS=400
    )
    peer = await shop_call(server)
    await peer.silence(200)
    await peer.send_dtmf("1")
    await fake.wait_for(lambda: "We open at nine." in spoken(fake), what="the answer")
    [chat] = fake.to("chat")
    assert chat.body["messages"][-1] == {"role": "user", "content": "[keypad: 1]"}
    assert fake.to("transcriptions") == []
    await listen(peer)
    await peer.close()
    detail = await asyncio.to_thread(
        wait_for_call, f"sqlite:///{tmp_path / 'calls.db'}", peer.call_sid
    )
    [turn] = detail.turns
    assert (turn.dtmf, turn.user_text, turn.assistant_text) == (
        "1",
        "[keypad: 1]",
        "We open at nine.",
    )
    assert detail.summary.call.dtmf == "1"


# -- phone calls that leave the agent ------------------------------------------------------


def twilio_env(rest: FakeTwilioRest) -> dict[str, Any]:
    return {
        "TWILIO_AUTH_TOKEN": TOKEN,
        "TWILIO_ACCOUNT_SID": ACCOUNT,
        "BRIDGE_TWILIO_API_URL": rest.url,
        "BRIDGE_PUBLIC_HOST": PUBLIC,
    }


async def test_the_agent_hands_the_caller_to_a_person(
    make_server: MakeServer,
    fake: FakeOpenAI,
    tool_server: FakeToolServer,
    rest: FakeTwilioRest,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    hello_ulaw: bytes,
) -> None:
    fake.transcripts.append("I want to talk to billing.")
    fake.replies.append(ChatScript("", tool_calls=[("transfer_call", {"destination": "billing"})]))
    server = shop_server(make_server, fake, tmp_path, tool_server, monkeypatch, **twilio_env(rest))
    peer = await signed_call(server, public_host=PUBLIC)
    talking = background(say(peer, hello_ulaw, tail_ms=4000))
    update = await asyncio.to_thread(rest.wait_for, lambda seen: seen.is_twiml_update, 15)
    # Twilio answers the update, then ends the stream once the new TwiML runs: wait for the
    # bridge to have read that answer (a stop before it is a known race, see the closing note)
    await wait_for_transfer_answer(server)
    await peer.send_stop()
    talking.cancel()
    twiml = update.field("Twiml")
    assert "<Number>+15551230002</Number>" in twiml and "/twilio/dial-result" in twiml
    assert spoken(fake) == ["Let me put you through."]  # the model said nothing: the handoff line
    handoff_ends = peer.timeline.media_times[-1]
    assert update.at >= handoff_ends - 0.05  # the line was heard before the call moved
    offered = [t["function"]["name"] for t in fake.to("chat")[0].body["tools"]]
    assert "transfer_call" in offered
    await peer.close()
    detail = await asyncio.to_thread(
        wait_for_call, f"sqlite:///{tmp_path / 'calls.db'}", peer.call_sid
    )
    assert detail.summary.call.transferred_to == "billing +15551230002"
    assert detail.summary.call.end_reason == "transferred"
    assert [t.name for t in detail.tool_calls] == ["transfer_call"]
    assert len(fake.to("chat")) == 1  # a call that left the agent is not answered again


async def test_an_answering_machine_gets_the_voicemail_and_the_call_ends(
    make_server: MakeServer,
    fake: FakeOpenAI,
    tool_server: FakeToolServer,
    rest: FakeTwilioRest,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    hello_ulaw: bytes,
) -> None:
    fake.replies.append(ChatScript("Hello, is this the owner of the house? " * 3))
    server = shop_server(make_server, fake, tmp_path, tool_server, monkeypatch, **twilio_env(rest))
    peer = await signed_call(server, public_host=PUBLIC)
    talking = background(say(peer, hello_ulaw, tail_ms=12000))  # the machine's greeting
    await fake.wait_for(lambda: len(spoken(fake)) >= 1, what="the answer to the greeting")
    await peer.wait_for_media(5)
    form = amd_form(peer.call_sid, "machine_end_beep")
    answered = await post_callback(server, "https://voice.example.com/twilio/amd", form)
    assert answered.status_code == 204
    assert await peer.wait_closed(20) == 1000
    talking.cancel()
    assert spoken(fake)[-1] == "Hello from the garden shop, please call us back."
    await peer.close()
    detail = await asyncio.to_thread(
        wait_for_call, f"sqlite:///{tmp_path / 'calls.db'}", peer.call_sid
    )
    call = detail.summary.call
    assert (call.end_reason, detail.summary.answered_by) == ("voicemail left", "machine_end_beep")
    assert detail.turns[0].interrupted  # the answer to the machine stopped at the beep
    assert time.time() - call.started_at_s < 60


async def test_a_barge_in_cancels_the_answer_not_the_tool_and_the_record_says_so(
    make_server: MakeServer,
    fake: FakeOpenAI,
    tool_server: FakeToolServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    hello_ulaw: bytes,
) -> None:
    tool_server.delay_s["/orders/42"] = 3.0
    fake.transcripts.extend(["What about order 42?", "Never mind, thanks."])
    asking = tool_then_answer("order_status", {"order_id": "42"})

    def reply(request: Recorded) -> ChatScript:
        last = request.body["messages"][-1]
        if last["role"] == "user" and last["content"].startswith("Never mind"):
            return ChatScript("Okay, anything else?")
        script: ChatScript = asking(request)
        return script

    fake.reply_of = reply
    server = shop_server(make_server, fake, tmp_path, tool_server, monkeypatch)
    peer = await shop_call(server)
    await say(peer, hello_ulaw)
    line = background(peer.silence(6000))  # a phone line always carries audio
    await fake.wait_for(lambda: "One moment, let me check." in spoken(fake), what="the filler")
    line.cancel()
    await say(peer, hello_ulaw, lead_ms=100)  # the caller speaks over the filler: a real cut
    await fake.wait_for(lambda: "Okay, anything else?" in spoken(fake), what="the next answer")
    await listen(peer)
    await peer.close()
    assert ANSWER not in spoken(fake)  # the tool's answer was never spoken...
    assert len(tool_server.requests) == 1  # ...but the tool ran, once
    last_chat = fake.to("chat")[-1].body["messages"]
    results = [m for m in last_chat if m["role"] == "tool"]
    assert json.loads(results[0]["content"])["status"] == "shipped"  # and the model knows
    detail = await asyncio.to_thread(
        wait_for_call, f"sqlite:///{tmp_path / 'calls.db'}", peer.call_sid
    )
    [tool] = detail.tool_calls
    assert tool.speech_cancelled and tool.duration_ms is not None and tool.duration_ms >= 2900
    assert "shipped" in tool.result and detail.turns[0].interrupted


async def test_a_transferred_call_is_never_completed_by_the_bridge(
    make_server: MakeServer,
    fake: FakeOpenAI,
    tool_server: FakeToolServer,
    rest: FakeTwilioRest,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    hello_ulaw: bytes,
) -> None:
    """Twilio normally ends the stream at once; if it does not, the bridge closes it after a
    while, and must not hang up the call the person now has (the REST hang-up is on)."""
    monkeypatch.setattr(call_actions, "TRANSFER_CLOSE_AFTER_S", 0.5)
    fake.transcripts.append("Billing, please.")
    fake.replies.append(
        ChatScript(
            "Putting you through.", tool_calls=[("transfer_call", {"destination": "billing"})]
        )
    )
    env = {**twilio_env(rest), "BRIDGE_TWILIO_AFTER_STREAM": "apology"}
    server = shop_server(make_server, fake, tmp_path, tool_server, monkeypatch, **env)
    peer = await signed_call(server, public_host=PUBLIC)
    talking = background(say(peer, hello_ulaw, tail_ms=8000))
    assert await peer.wait_closed(20) == 1000
    talking.cancel()
    await peer.close()
    assert len(rest.twiml_updates(peer.call_sid)) == 1
    assert [seen for seen in rest.requests if "Status" in seen.form] == []
    assert spoken(fake) == ["Putting you through."]  # the model's own line: no handoff added


async def wait_for_transfer_answer(server: ServerThread, timeout_s: float = 10.0) -> None:
    """Until the live call's session has taken Twilio's answer to the transfer."""

    async def transferred() -> bool:
        sessions = server.app.state.bridge.switchboard.sessions()
        return any(getattr(s, "end_reason", "") == "transferred" for s in sessions)

    deadline = time.monotonic() + timeout_s
    while not await asyncio.to_thread(server.call_in_loop, transferred):
        assert time.monotonic() < deadline, "the bridge never took the transfer's answer"
        await asyncio.sleep(0.02)
