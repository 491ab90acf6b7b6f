"""``BRIDGE_AGENT=backend`` end to end: a real bridge, emulated Twilio callers and toys, and a
fake Twilio-ready agent server on loopback that sees the bridge exactly as it would see Twilio.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bridge.agents import build_agent_factory
from bridge.settings import Settings
from pipeline.agents.backend.agent import BackendAgent
from pipeline.apology import apology_audio
from pipeline.audio import ULAW_8K
from tests.fakes.agents import Factory, tone_pcm
from tests.fakes.backend_server import FakeBackend, tone_ulaw
from tests.support.realtime import PhoneLine, speech_ulaw, wait_for
from tests.support.serverthread import MakeServer, ServerThread
from tests.support.talk_page import FakePage
from tests.support.toys import open_toy
from tests.support.twilio_calls import open_call
from tests.support.xiaozhi import open_device

APOLOGY = apology_audio(ULAW_8K)


@pytest.fixture
async def fake() -> AsyncIterator[FakeBackend]:
    async with FakeBackend() as server:
        yield server


def start_bridge(
    make_server: MakeServer, fake: FakeBackend, **env: Any
) -> tuple[ServerThread, Factory]:
    env = {
        "BRIDGE_AGENT": "backend",
        "BRIDGE_BACKEND_URL": fake.url,
        "BRIDGE_BACKEND_HEADERS": '{"Authorization": "Bearer backend-token"}',
        **env,
    }
    settings = Settings.from_env({k: str(v) for k, v in env.items()}, dotenv_path=None)
    factory = Factory(build_agent_factory(settings).create)
    return make_server(factory, **env), factory


def only_agent(factory: Factory) -> BackendAgent:
    (agent,) = factory.agents
    assert isinstance(agent, BackendAgent)
    return agent


async def test_a_phone_call_passes_through_byte_for_byte(
    make_server: MakeServer, fake: FakeBackend
) -> None:
    fake.reply_ms = 1200
    server, _ = start_bridge(make_server, fake)
    peer = await open_call(server, params={"persona": "default", "from": "+15550001111"})
    line = PhoneLine(peer)
    line.say(speech_ulaw(600))
    reply = tone_ulaw(1200)
    await wait_for(lambda: len(peer.played) >= len(reply), what="the reply")
    heard_all_at = time.monotonic()
    stream = fake.streams[0]
    await fake.wait_until(lambda: "reply-1" in stream.marks_echoed, what="the mark echo")
    await peer.send_dtmf("7")
    await fake.wait_until(lambda: bool(stream.of("dtmf")), what="the digit")
    await line.stop()
    await fake.wait_until(lambda: len(stream.audio) >= len(line.sent) - 160, what="caller audio")
    await peer.close()
    await fake.wait_until(lambda: bool(stream.of("stop")), what="stop")

    assert stream.headers["Authorization"] == "Bearer backend-token"
    events = [m["event"] for _, m in stream.received]
    assert events[:2] == ["connected", "start"] and events[-1] == "stop"
    start = stream.of("start")[0]
    assert start["start"]["callSid"] == peer.call_sid
    assert start["start"]["mediaFormat"] == {
        "encoding": "audio/x-mulaw",
        "sampleRate": 8000,
        "channels": 1,
    }
    params = start["start"]["customParameters"]
    assert params["transport"] == "twilio" and params["persona"] == "default"
    # μ-law straight through both ways: no decode, no resample
    assert bytes(stream.audio) == bytes(line.sent)[: len(stream.audio)]
    assert bytes(peer.played) == reply
    media = stream.of("media")
    assert [m["media"]["chunk"] for m in media[:3]] == ["1", "2", "3"]
    assert [m["media"]["timestamp"] for m in media[:3]] == ["20", "40", "60"]
    assert {m["media"]["track"] for m in media} == {"inbound"}
    seqs = [int(m["sequenceNumber"]) for _, m in stream.received if "sequenceNumber" in m]
    assert seqs == list(range(1, len(seqs) + 1))
    # the mark came back only once the caller had heard the whole reply
    assert stream.marks_echoed["reply-1"] >= heard_all_at - 0.1
    assert stream.marks_echoed["reply-1"] - stream.marks_sent["reply-1"] >= 1.1
    assert stream.of("dtmf")[0]["dtmf"] == {"track": "inbound_track", "digit": "7"}
    assert not peer.timeline.clears  # the caller's speech never cut the backend's audio


async def test_clear_stops_the_caller_and_echoes_pending_marks(
    make_server: MakeServer, fake: FakeBackend
) -> None:
    fake.reply_ms = 6000
    server, factory = start_bridge(make_server, fake)
    peer = await open_call(server)
    line = PhoneLine(peer)
    line.say(speech_ulaw(600))
    await wait_for(lambda: len(peer.played) >= 8 * 1500, what="1.5 s of the reply")
    line.say(speech_ulaw(1200, 900.0))  # the caller talks over the reply
    stream = fake.streams[0]
    await fake.wait_until(lambda: bool(stream.clears), what="the backend's clear")
    await wait_for(lambda: bool(peer.timeline.clears), what="the caller's clear")
    await fake.wait_until(lambda: "reply-1" in stream.marks_echoed, what="the pending mark")
    await asyncio.sleep(0.5)
    played_after = len(peer.played)
    await line.stop()
    await peer.close()
    # our own onset never cut it: the caller was cleared because the backend said so
    assert peer.timeline.clears[0] >= stream.clears[0] - 0.02
    assert peer.timeline.clears[0] - stream.clears[0] < 0.5
    assert stream.marks_echoed["reply-1"] - stream.clears[0] < 0.5
    assert played_after < 8 * 4000  # the rest of the 6 s reply was never played
    assert only_agent(factory).connections == 1


@pytest.mark.parametrize("caller", ["twilio", "esp32"])
async def test_a_mark_in_a_reply_comes_back_when_the_caller_got_there(
    make_server: MakeServer, fake: FakeBackend, caller: str
) -> None:
    fake.reply_ms, fake.mark_every_ms = 3000, 1000
    server, _ = start_bridge(make_server, fake)
    if caller == "twilio":
        peer = await open_call(server)
        line = PhoneLine(peer)
        line.say(speech_ulaw(600))
    else:
        toy = await open_toy(server, token=None)
        await toy.speak(tone_pcm(800, 1000.0, 16000), trailing_silence_ms=1200)
    await fake.wait_until(
        lambda: bool(fake.streams) and "reply-1" in fake.streams[0].marks_echoed,
        15,
        what="the last echo",
    )
    echoed = fake.streams[0].marks_echoed
    # each mark comes back as the caller reaches it: 1 s apart, not all at the end
    assert echoed["reply-1@2000"] - echoed["reply-1@1000"] == pytest.approx(1.0, abs=0.3)
    assert echoed["reply-1"] - echoed["reply-1@1000"] == pytest.approx(2.0, abs=0.4)
    if caller == "twilio":
        await line.stop()
        await peer.close()
    else:
        await toy.close()


async def test_a_toy_hears_the_backend_in_its_own_format(
    make_server: MakeServer, fake: FakeBackend
) -> None:
    fake.reply_ms = 1000
    server, _ = start_bridge(make_server, fake)
    toy = await open_toy(server, token=None)
    sent = await toy.speak(tone_pcm(800, 1000.0, 16000), trailing_silence_ms=1200)
    responses = await toy.wait_responses(2, 15)
    stream = fake.streams[0]
    await fake.wait_until(lambda: "reply-1" in stream.marks_echoed, what="the mark echo")
    await toy.close()
    start = stream.of("start")[0]["start"]
    assert start["callSid"].startswith("CA") and start["accountSid"].startswith("AC")
    assert start["customParameters"]["transport"] == "esp32"
    # 16 kHz PCM arrives as μ-law at 8 kHz (8 bytes per ms), as long as what the toy sent
    assert abs(len(stream.audio) / 8 - sent / 32) < 200
    spoken = responses[-1]
    assert spoken.ok is True and spoken.bracketed
    assert abs(spoken.decoded_ms - 1000) < 250


async def test_a_refusing_backend_apologises_and_ends_the_call(
    make_server: MakeServer, fake: FakeBackend
) -> None:
    fake.refuse_all = 403
    server, _ = start_bridge(make_server, fake)
    peer = await open_call(server)
    line = PhoneLine(peer)
    code = await peer.wait_closed(timeout_s=15)
    await line.stop()
    await peer.close()
    assert code == 1000
    assert bytes(peer.played) == APOLOGY
    assert fake.handshakes == [403]  # credentials: never retried


async def test_an_unavailable_backend_is_retried_a_few_times(
    make_server: MakeServer, fake: FakeBackend
) -> None:
    fake.refuse_all = 503
    server, _ = start_bridge(make_server, fake, BRIDGE_BACKEND_RECONNECTS=2)
    peer = await open_call(server)
    line = PhoneLine(peer)
    code = await peer.wait_closed(timeout_s=15)
    await line.stop()
    await peer.close()
    assert code == 1000
    assert bytes(peer.played) == APOLOGY
    assert fake.handshakes == [503, 503, 503]


async def test_a_drop_mid_reply_reconnects_then_goes_on(
    make_server: MakeServer, fake: FakeBackend
) -> None:
    fake.reply_ms = 2000
    fake.drop_after_frames = 20  # 400 ms of the first reply
    server, factory = start_bridge(make_server, fake)
    peer = await open_call(server)
    line = PhoneLine(peer)
    line.say(speech_ulaw(600))
    partial = tone_ulaw(2000)[: 20 * 160]
    await wait_for(lambda: len(peer.played) >= len(partial) + len(APOLOGY), what="the apology")
    await fake.wait_until(lambda: len(fake.streams) == 2, what="the reconnection")
    line.say(speech_ulaw(600))
    expected = partial + APOLOGY + tone_ulaw(2000)
    await wait_for(lambda: len(peer.played) >= len(expected), what="the next reply")
    await line.stop()
    await peer.close()
    assert bytes(peer.played) == expected
    first, second = (s.of("start")[0]["start"] for s in fake.streams)
    assert first["callSid"] == second["callSid"] and first["streamSid"] != second["streamSid"]
    assert only_agent(factory).connections == 2


async def test_a_backend_that_stays_away_after_a_drop_ends_the_call(
    make_server: MakeServer, fake: FakeBackend
) -> None:
    server, _ = start_bridge(make_server, fake, BRIDGE_BACKEND_RECONNECTS=1)
    peer = await open_call(server)
    line = PhoneLine(peer)
    await fake.wait_until(lambda: bool(fake.streams), what="the stream")
    fake.refuse_all = 503
    fake.drop_connections()
    code = await peer.wait_closed(timeout_s=15)
    await line.stop()
    await peer.close()
    assert code == 1000
    assert bytes(peer.played) == APOLOGY
    assert fake.handshakes == [101, 503]


async def test_a_talk_page_reaches_the_backend(make_server: MakeServer, fake: FakeBackend) -> None:
    fake.reply_ms = 1000
    server, _ = start_bridge(make_server, fake)
    page = await FakePage(server, persona="default").open()
    speech = tone_pcm(800, 1000.0, 16000)
    await page.say(speech, tail_ms=1200)
    await page.wait_for(lambda: len(page.played[1]) >= 32 * 900, 15, "the backend's reply")
    stream = fake.streams[0]
    await fake.wait_until(lambda: "reply-1" in stream.marks_echoed, what="the mark echo")
    await page.close()
    await fake.wait_until(lambda: bool(stream.of("stop")), what="stop")
    params = stream.of("start")[0]["start"]["customParameters"]
    assert params["transport"] == "browser" and params["persona"] == "default"
    # 16 kHz PCM up becomes 8 kHz μ-law; the reply comes back as 16 kHz PCM, whole
    assert abs(len(stream.audio) / 8 - len(speech) / 32) < 1500
    assert abs(len(page.played[1]) / 32 - 1000) < 100


async def test_a_xiaozhi_device_reaches_the_backend(
    make_server: MakeServer, fake: FakeBackend
) -> None:
    fake.reply_ms = 1000
    server, _ = start_bridge(make_server, fake)
    device = await open_device(server)
    await device.speak(tone_pcm(800, 1000.0, 16000))
    await device.wait_replies(1)
    stream = fake.streams[0]
    await fake.wait_until(lambda: "reply-1" in stream.marks_echoed, what="the mark echo")
    await device.close()
    params = stream.of("start")[0]["start"]["customParameters"]
    assert params["transport"] == "xiaozhi"
    assert abs(device.played_ms(0) - 1000) < 150  # decoded from the device's Opus
