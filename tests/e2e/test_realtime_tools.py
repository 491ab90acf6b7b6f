"""The Realtime agent acts too: its function calls run against a real HTTP tool server, the
results go back as conversation items and the model answers; a slow tool brings the filler;
keys pressed reach the model as the caller's message. A real bridge, a real phone line, the
fake Realtime server (tests/fakes/realtime_server.py)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.fakes.realtime_server import FakeRealtime, Reply
from tests.fakes.tool_server import FakeToolServer
from tests.fakes.twilio_rest_server import FakeTwilioRest
from tests.support.realtime import PhoneLine, reply_ulaw, speech_ulaw, start_bridge, wait_for
from tests.support.serverthread import MakeServer
from tests.support.twilio_calls import open_call
from tests.support.twilio_signing import ACCOUNT, TOKEN, amd_form, post_callback, signed_call

FILLER = "One moment, let me check."


@pytest.fixture
async def fake() -> AsyncIterator[FakeRealtime]:
    async with FakeRealtime() as server:
        yield server


def personas(tmp_path: Path, tool_server: FakeToolServer) -> str:
    path = tmp_path / "personas.toml"
    path.write_text(
        f"""
[personas.shop]
system_prompt = "You help customers of a garden shop."
filler = "{FILLER}"

[[personas.shop.tools]]
name = "order_status"
description = "The status of an order, by its number."
url = "{tool_server.base_url}/orders/{{order_id}}"
method = "GET"

[personas.shop.tools.parameters]
type = "object"
properties = {{ order_id = {{ type = "string" }} }}
required = ["order_id"]
"""
    )
    return str(path)


async def test_a_function_call_is_run_and_the_model_answers_with_its_result(
    make_server: MakeServer, fake: FakeRealtime, tool_server: FakeToolServer, tmp_path: Path
) -> None:
    asking = Reply(
        audio_ms=600, transcript="Let me look.", tool_calls=[("order_status", {"order_id": "42"})]
    )
    answer = Reply(audio_ms=900, freq_hz=520.0, transcript="Order 42 has shipped.")
    fake.replies.extend([asking, answer])
    server, _, transcripts = start_bridge(
        make_server, fake, BRIDGE_PERSONAS_FILE=personas(tmp_path, tool_server)
    )
    peer = await open_call(server, params={"persona": "shop"})
    line = PhoneLine(peer)
    line.say(speech_ulaw(700))
    expected = reply_ulaw(asking) + reply_ulaw(answer)
    await wait_for(lambda: len(peer.played) >= len(expected), what="the answer")
    await line.stop()
    await peer.close()
    session = fake.sessions[0]
    update = session.of_type("session.update")[0]["session"]
    assert [t["name"] for t in update["tools"]] == ["end_call", "order_status"]
    assert [r.path for r in tool_server.requests] == ["/orders/42"]
    [(call_id, output)] = session.outputs.items()
    assert session.calls[call_id] == "order_status"
    assert json.loads(output)["status"] == "shipped"
    creates = session.of_type("response.create")
    items = session.of_type("conversation.item.create")
    # the output went back before the answer was asked for, and the answer played whole
    assert session.events.index(items[-1]) < session.events.index(creates[-1])
    assert bytes(peer.played).startswith(expected)
    assert FILLER not in json.dumps(creates)  # a quick tool: no filler
    assert ("assistant", "Order 42 has shipped.") in transcripts.lines


async def test_a_slow_tool_is_covered_by_the_filler_then_answered(
    make_server: MakeServer, fake: FakeRealtime, tool_server: FakeToolServer, tmp_path: Path
) -> None:
    tool_server.delay_s["/orders/42"] = 2.0
    asking = Reply(audio_ms=400, transcript="", tool_calls=[("order_status", {"order_id": "42"})])
    filler = Reply(audio_ms=700, freq_hz=300.0, transcript=FILLER)
    answer = Reply(audio_ms=900, freq_hz=520.0, transcript="Order 42 has shipped.")
    fake.replies.extend([asking, filler, answer])
    server, _, _ = start_bridge(
        make_server, fake, BRIDGE_PERSONAS_FILE=personas(tmp_path, tool_server)
    )
    peer = await open_call(server, params={"persona": "shop"})
    line = PhoneLine(peer)
    line.say(speech_ulaw(700))
    expected = reply_ulaw(asking) + reply_ulaw(filler) + reply_ulaw(answer)
    await wait_for(lambda: len(peer.played) >= len(expected), timeout_s=20, what="the answer")
    await line.stop()
    await peer.close()
    creates = [e.get("response", {}) for e in fake.sessions[0].of_type("response.create")]
    said = [c for c in creates if FILLER in c.get("instructions", "")]
    assert len(said) == 1 and "word for word" in said[0]["instructions"]
    assert bytes(peer.played).startswith(expected)


async def test_speaking_over_the_filler_cuts_it_and_the_callers_turn_is_answered_instead(
    make_server: MakeServer, fake: FakeRealtime, tool_server: FakeToolServer, tmp_path: Path
) -> None:
    fake.pace = 1.0  # generated in real time: the filler is still being generated when cut
    tool_server.delay_s["/orders/42"] = 2.5
    asking = Reply(speak=False, tool_calls=[("order_status", {"order_id": "42"})])
    filler = Reply(audio_ms=4000, freq_hz=300.0, transcript=FILLER)
    answer = Reply(audio_ms=600, freq_hz=520.0, transcript="Anything else?")
    fake.replies.extend([asking, filler, answer])
    server, _, _ = start_bridge(
        make_server, fake, BRIDGE_PERSONAS_FILE=personas(tmp_path, tool_server)
    )
    peer = await open_call(server, params={"persona": "shop"})
    line = PhoneLine(peer)
    line.say(speech_ulaw(700))
    await wait_for(lambda: len(peer.played) >= 8 * 600, timeout_s=10, what="the filler")
    line.say(speech_ulaw(1500, 900.0))  # the caller goes on talking over it: a real cut
    session = fake.sessions[0]
    await fake.wait_until(lambda: bool(session.outputs), timeout_s=5, what="the tool's output")
    await wait_for(lambda: bool(session.of_type("response.cancel")), what="the cut")
    await fake.wait_until(
        lambda: (
            any(e["type"] == "response.done" and "Anything" in json.dumps(e) for e in session.sent)
            or len(session.of_type("response.create")) >= 3
        ),
        timeout_s=10,
        what="the answer to the caller",
    )
    await line.stop()
    await peer.close()
    creates = session.of_type("response.create")
    # the first turn's answer, the filler, then the caller's next turn: no unasked-for
    # answer to the tool's result over the caller
    assert len(creates) == 3 and "response" not in creates[2]


async def test_keys_reach_the_model_as_the_callers_message(
    make_server: MakeServer, fake: FakeRealtime, tool_server: FakeToolServer, tmp_path: Path
) -> None:
    answer = Reply(audio_ms=600, transcript="We open at nine.")
    fake.replies.append(answer)
    server, _, transcripts = start_bridge(
        make_server,
        fake,
        BRIDGE_PERSONAS_FILE=personas(tmp_path, tool_server),
        BRIDGE_KEYPAD_GAP_MS=300,
    )
    peer = await open_call(server, params={"persona": "shop"})
    line = PhoneLine(peer)
    await peer.send_dtmf("1")
    await wait_for(lambda: len(peer.played) >= len(reply_ulaw(answer)), what="the answer")
    await line.stop()
    await peer.close()
    session = fake.sessions[0]
    [item] = session.of_type("conversation.item.create")
    assert item["item"]["content"] == [{"type": "input_text", "text": "[keypad: 1]"}]
    [create] = session.of_type("response.create")
    assert session.events.index(item) < session.events.index(create)
    assert ("user", "[keypad: 1]") in transcripts.lines


# -- phone calls that leave the agent ------------------------------------------------------

PUBLIC = "voice.example.com"


def leaving_env(
    tmp_path: Path, tool_server: FakeToolServer, rest: FakeTwilioRest
) -> dict[str, str]:
    path = Path(personas(tmp_path, tool_server))
    voicemail = 'voicemail = "Hello from the garden shop, please call us back."\n'
    text = path.read_text().replace(
        "[[personas.shop.tools]]", voicemail + "[[personas.shop.tools]]"
    )
    path.write_text(
        text
        + """
[[personas.shop.transfer]]
name = "billing"
to = "+15551230002"
description = "Billing questions."

[numbers]
"+15550002222" = "shop"
"""
    )
    return {
        "BRIDGE_PERSONAS_FILE": str(path),
        "TWILIO_AUTH_TOKEN": TOKEN,
        "TWILIO_ACCOUNT_SID": ACCOUNT,
        "BRIDGE_TWILIO_API_URL": rest.url,
        "BRIDGE_PUBLIC_HOST": PUBLIC,
    }


async def test_a_silent_transfer_call_gets_the_handoff_line_then_the_call_moves(
    make_server: MakeServer,
    fake: FakeRealtime,
    tool_server: FakeToolServer,
    rest: FakeTwilioRest,
    tmp_path: Path,
) -> None:
    transfer = Reply(speak=False, tool_calls=[("transfer_call", {"destination": "billing"})])
    handoff = Reply(audio_ms=700, freq_hz=300.0, transcript="Let me put you through.")
    fake.replies.extend([transfer, handoff])
    server, _, _ = start_bridge(make_server, fake, **leaving_env(tmp_path, tool_server, rest))
    peer = await signed_call(server, public_host=PUBLIC)
    line = PhoneLine(peer)
    line.say(speech_ulaw(700))
    update = await asyncio.to_thread(rest.wait_for, lambda seen: seen.is_twiml_update, 15)
    assert "<Number>+15551230002</Number>" in update.field("Twiml")
    assert bytes(peer.played).startswith(reply_ulaw(handoff))  # heard before the call moved
    session = fake.sessions[0]
    said = [
        e.get("response", {}).get("instructions", "") for e in session.of_type("response.create")
    ]
    assert any("Please hold while I transfer your call." in s for s in said)
    [(call_id, output)] = session.outputs.items()
    assert session.calls[call_id] == "transfer_call" and json.loads(output)["transferred"]
    await line.stop()
    await peer.close()


async def test_an_answering_machine_gets_the_voicemail_from_the_model(
    make_server: MakeServer,
    fake: FakeRealtime,
    tool_server: FakeToolServer,
    rest: FakeTwilioRest,
    tmp_path: Path,
) -> None:
    message = Reply(audio_ms=900, freq_hz=610.0, transcript="Hello from the garden shop.")
    fake.replies.append(message)
    server, _, _ = start_bridge(make_server, fake, **leaving_env(tmp_path, tool_server, rest))
    peer = await signed_call(server, public_host=PUBLIC)
    line = PhoneLine(peer)
    form = amd_form(peer.call_sid, "machine_end_beep")
    answered = await post_callback(server, f"https://{PUBLIC}/twilio/amd", form)
    assert answered.status_code == 204
    assert await peer.wait_closed(20) == 1000
    await line.stop()
    await peer.close()
    assert bytes(peer.played) == reply_ulaw(message)
    [create] = fake.sessions[0].of_type("response.create")
    assert "please call us back" in create["response"]["instructions"]
