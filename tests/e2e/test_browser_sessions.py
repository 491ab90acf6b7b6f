"""The talk page's wire over a real server: a page speaks and hears itself (echo), a barge-in
stops the reply at the sample the page reports, captions and latency reach the page, access
rules and hostile input. The page here is a test's (tests/support/talk_page.py); the real one
runs in Chromium in tests/e2e/test_talk_page.py."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from bridge.browser.tokens import TalkTokens
from pipeline.agents.echo import EchoAgentFactory
from tests.fakes.agents import Factory, ToneAgent
from tests.support.records import TranscriptAgent
from tests.support.serverthread import MakeServer, ServerThread
from tests.support.talk_page import FakePage
from tests.support.toys import hello_16k

SECRET = "talk-secret-0123456789"


def similarity(a: bytes, b: bytes) -> float:
    x = np.frombuffer(a[: len(b)], dtype=np.int16).astype(np.float64)
    y = np.frombuffer(b[: len(a)], dtype=np.int16).astype(np.float64)
    return float(np.dot(x, y) / (np.linalg.norm(x) * np.linalg.norm(y) + 1e-9))


async def test_a_page_speaks_and_hears_its_own_words_back(make_server: MakeServer) -> None:
    server = make_server(EchoAgentFactory())
    page = await FakePage(server).open()
    speech = hello_16k()
    await page.say(speech)
    await page.wait_for(
        lambda: page.played and len(page.played[1]) >= len(speech) * 0.9, 15, "the echo"
    )
    [hello] = page.of_type("hello")
    assert hello["sample_rate"] == 16000 and hello["session_id"].startswith("web-")
    heard = bytes(page.played[1])
    offset = int(np.argmax([similarity(heard[i:], speech) for i in range(0, 3200, 32)])) * 32
    assert similarity(heard[offset:], speech) > 0.9  # the same words, resampled nowhere
    await page.wait_for(lambda: bool(page.of_type("turn_end")), what="the end of the reply")
    await page.close()


async def test_captions_and_latency_reach_the_page(make_server: MakeServer) -> None:
    server = make_server(Factory(lambda call: TranscriptAgent(call, reply_ms=600)))
    page = await FakePage(server).open()
    await page.say(hello_16k())
    await page.wait_for(lambda: bool(page.of_type("latency")), what="the latency")
    captions = {(m["role"], m["text"]) for m in page.of_type("transcript")}
    assert captions == {("user", "question 1"), ("assistant", "answer 1")}
    [latency] = page.of_type("latency")
    assert latency["turn"] == 1 and 0 < latency["ms"] < 3000
    await page.close()


async def test_speaking_over_a_reply_stops_it_where_the_page_says(
    make_server: MakeServer, interrupt_ulaw: bytes
) -> None:
    factory = Factory(lambda call: ToneAgent(call, reply_ms=6000))
    server = make_server(factory)
    page = await FakePage(server).open()
    await page.say(hello_16k(), tail_ms=1500)
    await page.wait_for(lambda: len(page.played[1]) >= 32 * 1000, what="a second of the reply")
    talking = asyncio.create_task(page.say(hello_16k() * 2))  # speech that goes on: real
    await page.wait_for(lambda: bool(page.clears), what="the clear")
    await talking
    agent = factory.agents[0]
    assert isinstance(agent, ToneAgent)
    await page.wait_for(lambda: bool(agent.interruptions), what="the cut")
    [(turn, heard_ms)] = agent.interruptions
    assert turn == 1
    assert heard_ms == pytest.approx(len(page.played[1]) / 32, abs=1)  # to the sample
    assert len(page.played[1]) / 32 < 4000  # stopped long before its end
    await page.close()


async def test_a_persona_is_chosen_on_the_page(make_server: MakeServer, tmp_path: Path) -> None:
    personas = tmp_path / "personas.toml"
    personas.write_text('[personas.pirate]\nsystem_prompt = "Arr."\n')
    factory = Factory(lambda call: ToneAgent(call))
    server = make_server(factory, BRIDGE_PERSONAS_FILE=str(personas))
    async with httpx.AsyncClient() as http:
        listed = (await http.get(f"{server.http}/talk/personas")).json()
        page_html = await http.get(f"{server.http}/talk")
        worklets = await http.get(f"{server.http}/talk/static/worklets.js")
    assert listed == {"personas": ["", "pirate"], "fixed": False}
    assert page_html.status_code == 200 and "talk.js" in page_html.text
    assert worklets.status_code == 200 and "registerProcessor" in worklets.text
    page = await FakePage(server, persona="pirate").open()
    await page.wait_for(lambda: bool(factory.agents), what="the session")
    assert factory.agents[0].call.params == {"persona": "pirate"}  # type: ignore[attr-defined]
    await page.close()
    stranger = await FakePage(server, persona="ghost").open()
    await stranger.closed.wait()
    assert stranger.close_code == 1008
    await stranger.close()


async def production_server(make_server: MakeServer, tmp_path: Path) -> ServerThread:
    personas = tmp_path / "personas.toml"
    personas.write_text('[personas.pirate]\nsystem_prompt = "Arr."\n')
    devices = tmp_path / "devices.toml"
    devices.write_text("")
    return make_server(
        Factory(lambda call: ToneAgent(call)),
        BRIDGE_ENV="production",
        BRIDGE_TALK_SECRET=SECRET,
        BRIDGE_PERSONAS_FILE=str(personas),
        TWILIO_AUTH_TOKEN="x" * 32,
        BRIDGE_ESP32_JWT_SECRET="y" * 40,
    )


async def test_in_production_only_a_token_opens_the_page(
    make_server: MakeServer, tmp_path: Path
) -> None:
    server = await production_server(make_server, tmp_path)
    async with httpx.AsyncClient() as http:
        refused = await http.get(f"{server.http}/talk")
    assert refused.status_code == 403 and "token is required" in refused.text
    with pytest.raises(InvalidStatus) as denied:
        async with connect(f"{server.ws}/ws/browser"):
            pass
    assert denied.value.response.status_code == 403
    tokens = TalkTokens(SECRET)
    fixed = tokens.mint(time.time(), 60, name="kiosk-1", persona="pirate")
    async with httpx.AsyncClient() as http:
        listed = (await http.get(f"{server.http}/talk/personas?token={fixed}")).json()
    assert listed == {"personas": ["pirate"], "fixed": True}
    page = await FakePage(server, persona="", query=f"?token={fixed}").open()
    await page.wait_for(lambda: bool(page.of_type("hello")), what="the hello")
    assert page.of_type("hello")[0]["persona"] == "pirate"
    await page.close()
    expired = tokens.mint(time.time() - 120, 60)
    forged = fixed[:-4] + "AAAA"
    for bad in (expired, forged):
        with pytest.raises(InvalidStatus) as denied:
            async with connect(f"{server.ws}/ws/browser?token={bad}"):
                pass
        assert denied.value.response.status_code == 403


@pytest.mark.parametrize(
    ("first", "code"),
    [
        (b"\x00\x01" * 10, 1008),  # audio before hello
        (json.dumps({"type": "played", "turn": 1, "ms": 5}), 1008),  # control before hello
    ],
)
async def test_hostile_pages_get_clear_close_codes(
    server: ServerThread, first: str | bytes, code: int
) -> None:
    async with connect(f"{server.ws}/ws/browser") as ws:
        await ws.send(first)
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 5)
        assert ws.close_code == code


async def test_odd_and_oversized_audio_close_the_page_and_nothing_else(
    make_server: MakeServer,
) -> None:
    server = make_server(EchoAgentFactory())
    steady = await FakePage(server).open()
    for payload, code in ((b"\x01" * 641, 1007), (b"\x00" * 40_000, 1009)):
        async with connect(f"{server.ws}/ws/browser", max_size=None) as ws:
            await ws.send(json.dumps({"type": "hello", "persona": ""}))
            await ws.recv()  # hello
            await ws.send(payload)
            with pytest.raises(ConnectionClosed):
                while True:
                    await asyncio.wait_for(ws.recv(), 5)
            assert ws.close_code == code
    await steady.say(hello_16k())
    await steady.wait_for(lambda: bool(steady.played), what="the steady page's echo")
    await steady.close()
