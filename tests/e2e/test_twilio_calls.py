"""Phone calls end to end: a real uvicorn server on loopback and an emulated Twilio peer."""

from __future__ import annotations

import asyncio
import json
import time
import xml.etree.ElementTree as ET

import httpx
import pytest
from websockets.asyncio.client import connect

from pipeline.agents.base import CallInfo
from pipeline.agents.echo import EchoAgent
from tests.fakes.agents import (
    BufferedReplyAgent,
    ExplodingDtmfAgent,
    Factory,
    FailingStartAgent,
    HangUpAgent,
    SlowAgent,
    ToneAgent,
)
from tests.support.audio import load_ulaw
from tests.support.serverthread import MakeServer, ServerThread
from tests.support.twilio_calls import (
    SILENCE,
    assert_heard_own_words,
    background,
    media_payloads,
    open_call,
    say,
    say_and_listen,
)

CHUNK_MS = 40


def tone_factory(**kwargs: int) -> Factory:
    return Factory(lambda call: ToneAgent(call, **kwargs))


# -- HTTP routes ---------------------------------------------------------------------------


def test_health_healthz_twiml_and_plain_http_on_stream(server: ServerThread) -> None:
    with httpx.Client(base_url=server.http) as http:
        health = http.get("/health")
        assert health.status_code == 200 and health.text == "OK"
        assert health.headers["content-type"].startswith("text/plain")
        healthz = http.get("/healthz").json()
        assert healthz["ok"] is True and healthz["active_calls"] == {"twilio": 0, "esp32": 0}
        assert healthz["version"] and healthz["uptime_s"] >= 0
        twiml = http.post(
            "/twiml",
            data={"CallSid": "CA1", "From": "+15551230000", "To": "A&B <x>"},
            headers={"Host": "voice.example.com"},
        )
        assert twiml.status_code == 200 and twiml.headers["content-type"].startswith("text/xml")
        root = ET.fromstring(twiml.text)
        assert [child.tag for child in root] == ["Connect"]  # nothing after </Connect>
        stream = root.find("./Connect/Stream")
        assert stream is not None and stream.attrib == {"url": "wss://voice.example.com/stream"}
        params = {p.attrib["name"]: p.attrib["value"] for p in stream.findall("Parameter")}
        assert params == {"from": "+15551230000", "to": "A&B <x>"}
        assert "A&amp;B &lt;x&gt;" in twiml.text
        assert http.get("/twiml").status_code == 200
        plain = http.get("/stream")
        assert plain.status_code == 426 and plain.headers["upgrade"] == "websocket"


def test_configured_public_host_wins_over_request_host(make_server: MakeServer) -> None:
    server = make_server(BRIDGE_PUBLIC_HOST="voice.example.com")
    with httpx.Client(base_url=server.http) as http:
        body = http.post("/twiml", data={"From": "x"}, headers={"Host": "evil.test"}).text
    assert 'url="wss://voice.example.com/stream"' in body and "?" not in body.split("url=")[1][:40]


# -- the echo call -------------------------------------------------------------------------


async def test_caller_hears_own_words_back_paced_and_well_formed(
    server: ServerThread, hello_ulaw: bytes
) -> None:
    peer = await open_call(server)
    sent = await say_and_listen(peer, hello_ulaw, quiet_s=1.0, timeout_s=15)
    await peer.send_stop()
    await peer.close()

    heard = bytes(peer.played)
    assert len(heard) >= 0.8 * len(hello_ulaw)
    assert heard in sent  # exactly the caller's own audio, byte for byte

    frames = peer.timeline.received
    assert peer.timeline.non_text_frames == 0
    for _, frame in frames:
        assert frame["streamSid"] == peer.stream_sid
        if frame["event"] == "media":
            assert set(frame) == {"event", "streamSid", "media"} and set(frame["media"]) == {
                "payload"
            }
        else:
            assert frame["event"] == "mark" and set(frame) == {"event", "streamSid", "mark"}
    payloads = media_payloads(peer)
    assert all(160 <= len(p) <= 800 for p in payloads[:-1]) and 0 < len(payloads[-1]) <= 800
    assert not any(p.startswith(b"RIFF") for p in payloads)
    # each media is followed by its mark
    assert [f["event"] for _, f in frames] == ["media", "mark"] * len(payloads)

    # pacing: chunk n never arrives earlier than real time minus the lead (400 ms)
    times = peer.timeline.media_times
    for n, t in enumerate(times):
        assert t >= times[0] + n * CHUNK_MS / 1000 - 0.4 - 0.05
    # unacknowledged audio stays within 2 s
    echoed_by = [t for t, f in frames if f["event"] == "mark"]
    assert len(echoed_by) == len(payloads)
    assert max(len(payloads) - len(peer.timeline.echoed_marks), 0) * CHUNK_MS <= 2000


@pytest.mark.parametrize("ws_impl", ["websockets-sansio"])
async def test_stock_uvicorn_websockets_work_too(
    make_server: MakeServer, hello_ulaw: bytes, ws_impl: str
) -> None:
    """Without our protocol class (no fast-receive extension) the ordinary path serves."""
    server = make_server(BRIDGE_WS_IMPL=ws_impl)
    peer = await open_call(server)
    sent = await say_and_listen(peer, hello_ulaw, timeout_s=15)
    assert_heard_own_words(peer, hello_ulaw, sent)
    await peer.close()


async def test_unacknowledged_audio_never_exceeds_two_seconds(
    make_server: MakeServer, hello_ulaw: bytes
) -> None:
    """An agent that produces 30 s at once is still paced by the marks and the clock."""
    factory = tone_factory(reply_ms=30_000)
    server = make_server(factory, BRIDGE_TWILIO_LEAD_MS=2000)
    peer = await open_call(server)
    await say(peer, hello_ulaw)
    talker = background(peer.silence(8000))
    worst_ms = 0.0
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        unacked = len(peer.timeline.media_times) - len(peer.timeline.echoed_marks)
        worst_ms = max(worst_ms, unacked * CHUNK_MS)
        await asyncio.sleep(0.01)
    talker.cancel()
    assert len(peer.timeline.media_times) > 50
    assert worst_ms <= 2000 + 2 * CHUNK_MS
    await peer.close()


async def test_a_reply_written_all_at_once_starts_playing_at_its_first_write(
    make_server: MakeServer, hello_ulaw: bytes
) -> None:
    """The pacer sends a turn's first chunk before the agent can queue the rest: converting
    seconds of buffered audio first would add to the caller's wait."""
    factory = Factory(lambda call: BufferedReplyAgent(call, reply_ms=3000))
    server = make_server(factory)
    peer = await open_call(server)
    await say_and_listen(peer, hello_ulaw)
    await peer.close()
    [agent] = factory.agents
    assert isinstance(agent, BufferedReplyAgent) and agent.first_write_sent is True


async def test_start_without_connected_is_accepted(make_server: MakeServer) -> None:
    server = make_server(tone_factory(greeting_ms=300))
    peer = await open_call(server, begin=False)
    await peer.send_start()
    await peer.wait_for_media(1, timeout_s=3)
    await peer.close()


async def test_nothing_is_sent_before_start(server: ServerThread) -> None:
    peer = await open_call(server, begin=False)
    await peer.send_media(b"\x00" * 160)  # media before start: dropped, no crash
    await asyncio.sleep(0.3)
    assert peer.timeline.received == [] and not peer.is_closed
    await peer.close()


async def test_no_start_within_deadline_closes_1008(make_server: MakeServer) -> None:
    server = make_server(BRIDGE_START_TIMEOUT_S=0.5)
    peer = await open_call(server, begin=False)
    await peer.send_connected()
    assert await peer.wait_closed(3) == 1008
    await peer.close()


# -- hostile input -------------------------------------------------------------------------


async def test_hostile_frames_close_only_the_offending_call(
    make_server: MakeServer, hello_ulaw: bytes
) -> None:
    server = make_server(Factory(lambda call: EchoAgent(call.native_in)))
    good = await open_call(server)
    bad = await open_call(server)
    assert bad._ws is not None
    await bad.send_json({"event": "bogus", "streamSid": bad.stream_sid})  # ignored
    await bad.send_json({**bad.media_message(b"\xff" * 160), "extra": 1})  # extra keys ignored
    await bad.send_start()  # duplicate start ignored
    await bad.send_json({"event": "media", "streamSid": "MZnotmine", "media": {"payload": "AAAA"}})
    await bad.send_json({"event": "media", "streamSid": bad.stream_sid, "media": {"payload": "!!"}})
    for i in range(19):
        await bad._ws.send("{broken" if i % 2 else b"\x00\x01")
    assert not bad.is_closed
    await bad._ws.send("[]")
    assert await bad.wait_closed(3) == 1008
    sent = await say_and_listen(good, hello_ulaw, quiet_s=0.6, timeout_s=10)
    assert_heard_own_words(good, hello_ulaw, sent)
    await good.close()
    await bad.close()


async def test_oversized_message_closes_1009_and_other_calls_continue(
    make_server: MakeServer, hello_ulaw: bytes
) -> None:
    server = make_server(Factory(lambda call: EchoAgent(call.native_in)))
    good = await open_call(server)
    big = await open_call(server)
    assert big._ws is not None
    await big._ws.send(json.dumps({"event": "media", "pad": "x" * (65 * 1024)}))
    assert await big.wait_closed(3) == 1009
    sent = await say_and_listen(good, hello_ulaw, quiet_s=0.6, timeout_s=10)
    assert_heard_own_words(good, hello_ulaw, sent)
    await good.close()
    await big.close()


# -- barge-in and marks --------------------------------------------------------------------


async def test_barge_in_clears_once_drops_late_audio_and_truncates_at_heard(
    make_server: MakeServer, hello_ulaw: bytes, interrupt_ulaw: bytes
) -> None:
    factory = tone_factory(reply_ms=10_000)
    server = make_server(factory)
    peer = await open_call(server)
    await say(peer, hello_ulaw, tail_ms=700)
    await peer.wait_for_media(1, timeout_s=5)
    await peer.silence(1500)  # the caller listens to 1.5 s of the reply
    speech_at = time.monotonic()
    await peer.stream(interrupt_ulaw)  # the caller barges in, and speaks on: a real one
    assert len(peer.timeline.clears) == 1
    clear_at = peer.timeline.clears[0]
    assert clear_at - speech_at < 0.2 + 0.1 + 0.2  # speech-start window + 100 ms + VAD onset
    # no audio of turn 1 after the clear (allow one chunk already in flight)
    late = [t for t in peer.timeline.media_times if t > clear_at + 0.05]
    assert late == []
    await peer.close()
    await asyncio.sleep(0.2)
    [agent] = factory.agents
    assert isinstance(agent, ToneAgent)
    [(turn_id, heard_ms)] = agent.interruptions
    assert turn_id == 1 and 1 in agent.cancelled_turns
    played_marks = [m for m in peer.timeline.played_marks if m.startswith("t1:")]
    assert_heard_is_what_was_played(heard_ms, len(played_marks))
    sent_ms = len(peer.timeline.media_times) * CHUNK_MS
    assert 1000 <= heard_ms < sent_ms  # heard, not sent
    # the clear flushed the rest: those echoes did not count
    assert len(peer.timeline.echoed_marks) == len(peer.timeline.media_times)


async def test_speech_while_the_bot_is_silent_sends_no_clear(
    make_server: MakeServer, hello_ulaw: bytes
) -> None:
    factory = tone_factory(reply_ms=400)
    server = make_server(factory)
    peer = await open_call(server)
    await say(peer, hello_ulaw)
    await peer.wait_for_media(1, timeout_s=5)
    await peer.silence(1200)  # the reply plays out completely
    await say(peer, hello_ulaw[:8000], lead_ms=0, tail_ms=200)
    assert peer.timeline.clears == []
    await peer.close()
    await asyncio.sleep(0.1)
    assert factory.agents[0].interruptions == []  # type: ignore[attr-defined]


def assert_heard_is_what_was_played(heard_ms: float, played_chunks: int) -> None:
    """Never more than was played. One chunk less is possible: a mark the caller echoed just
    before the clear reached it arrives after the clear was sent, among the flushed marks that
    Twilio's protocol does not tell apart from played ones."""
    played_ms = played_chunks * CHUNK_MS
    assert played_ms - CHUNK_MS <= heard_ms <= played_ms, (heard_ms, played_ms)


async def test_two_barge_ins_cancel_two_turns_cleanly(
    make_server: MakeServer, hello_ulaw: bytes, interrupt_ulaw: bytes
) -> None:
    factory = tone_factory(reply_ms=10_000)
    server = make_server(factory, BRIDGE_VAD_SILENCE_MS=300)
    peer = await open_call(server)
    await say(peer, hello_ulaw, tail_ms=400)
    await peer.wait_for_media(1, timeout_s=5)
    await peer.silence(600)
    await peer.stream(interrupt_ulaw + SILENCE * 2800)  # barge in, then end the turn
    await peer.wait_for_media(len(peer.timeline.media_times) + 1, timeout_s=5)
    await peer.silence(200)
    await peer.stream(interrupt_ulaw)
    await peer.silence(300)
    await peer.close()
    await asyncio.sleep(0.2)
    agent = factory.agents[0]
    assert isinstance(agent, ToneAgent)
    turns = [turn for turn, _ in agent.interruptions]
    assert len(turns) >= 2 and turns == sorted(set(turns))  # distinct turns, in order
    turns_with_audio = {m.split(":")[0] for m in peer.timeline.echoed_marks}
    assert len(peer.timeline.clears) == sum(f"t{t}" in turns_with_audio for t in turns)
    for turn, heard in agent.interruptions:
        played = [m for m in peer.timeline.played_marks if m.startswith(f"t{turn}:")]
        assert_heard_is_what_was_played(heard, len(played))


# -- DTMF ----------------------------------------------------------------------------------


async def test_dtmf_digits_reach_the_agent_in_order_and_do_not_cancel_playback(
    make_server: MakeServer,
) -> None:
    factory = tone_factory(greeting_ms=3000)
    server = make_server(factory)
    peer = await open_call(server)
    await peer.wait_for_media(1, timeout_s=3)
    for digit in "0123456789*#AX":
        await peer.send_dtmf(digit)
    await peer.silence(500)
    assert peer.timeline.clears == []
    agent = factory.agents[0]
    assert isinstance(agent, ToneAgent)
    assert agent.digits == list("0123456789*#A")
    media_before = len(peer.timeline.media_times)
    await peer.silence(300)
    assert len(peer.timeline.media_times) > media_before  # the greeting kept playing
    await peer.close()


# -- ending calls --------------------------------------------------------------------------


async def test_stop_tears_down_within_one_second(make_server: MakeServer) -> None:
    factory = tone_factory(greeting_ms=5000)
    server = make_server(factory)
    peer = await open_call(server)
    await peer.wait_for_media(1, timeout_s=3)
    await peer.send_stop()
    stopped_at = time.monotonic()
    leaks = await asyncio.to_thread(server.wait_clean, 1.0)
    assert leaks == {"tasks": [], "connections": 0, "sessions": 0}
    assert time.monotonic() - stopped_at <= 1.0
    agent = factory.agents[0]
    assert isinstance(agent, ToneAgent) and agent.closed
    received = len(peer.timeline.received)
    await asyncio.sleep(0.2)
    assert len(peer.timeline.received) == received  # nothing after stop
    await peer.close()


async def test_socket_drop_without_stop_tears_down(make_server: MakeServer) -> None:
    factory = tone_factory(greeting_ms=5000)
    server = make_server(factory)
    peer = await open_call(server)
    await peer.wait_for_media(1, timeout_s=3)
    await peer.close()
    leaks = await asyncio.to_thread(server.wait_clean, 1.0)
    assert leaks == {"tasks": [], "connections": 0, "sessions": 0}


async def test_agent_hang_up_waits_for_the_last_mark_then_closes_1000(
    make_server: MakeServer, hello_ulaw: bytes
) -> None:
    server = make_server(Factory(lambda call: HangUpAgent(call, reply_ms=800)))
    peer = await open_call(server)
    talker = background(say(peer, hello_ulaw, tail_ms=5000))
    assert await peer.wait_closed(15) == 1000
    talker.cancel()
    assert len(peer.played) == 800 * 8  # the whole goodbye was played before the close
    assert len(peer.timeline.echoed_marks) == len(peer.timeline.media_times)
    await peer.close()


async def test_maximum_call_duration_ends_the_call_after_a_farewell(
    make_server: MakeServer,
) -> None:
    server = make_server(tone_factory(), BRIDGE_MAX_CALL_S=2)
    peer = await open_call(server)
    talker = background(peer.silence(10_000))
    assert await peer.wait_closed(8) == 1000
    talker.cancel()
    assert len(peer.played) == 360 * 8  # the whole farewell was heard before the close
    await peer.close()


async def test_agent_start_failure_closes_1000_and_other_calls_continue(
    make_server: MakeServer, hello_ulaw: bytes
) -> None:
    def build(call: CallInfo) -> ToneAgent:
        if call.params.get("fail"):
            return FailingStartAgent(call)
        return ToneAgent(call, reply_ms=500)

    server = make_server(Factory(build))
    good = await open_call(server)
    failing = await open_call(server, params={"fail": "1"})
    assert await failing.wait_closed(3) == 1000
    await say(good, hello_ulaw)
    await good.wait_quiet(0.5, timeout_s=5)
    assert len(good.played) == 500 * 8
    await good.close()
    await failing.close()


async def test_slow_agent_does_not_block_the_receive_loop(
    make_server: MakeServer, hello_ulaw: bytes
) -> None:
    factory = Factory(lambda call: SlowAgent(call, reply_ms=400))
    server = make_server(factory)
    peer = await open_call(server)
    await say(peer, hello_ulaw)
    for digit in "123":  # sent while the agent is stalled
        await peer.send_dtmf(digit)
    await asyncio.sleep(0.2)
    agent = factory.agents[0]
    assert isinstance(agent, SlowAgent)
    assert agent.digits == ["1", "2", "3"] and peer.timeline.media_times == []
    talker = background(peer.silence(3000))
    await peer.wait_for_media(1, timeout_s=4)
    talker.cancel()
    await peer.close()


# -- isolation and leaks -------------------------------------------------------------------


async def test_injected_fault_closes_1011_while_20_calls_continue_without_cross_talk(
    make_server: MakeServer,
) -> None:
    def build(call: CallInfo) -> EchoAgent | ExplodingDtmfAgent:
        if call.params.get("explode"):
            return ExplodingDtmfAgent(call)
        return EchoAgent(call.native_in)

    server = make_server(Factory(build))
    voices = [load_ulaw("hello_16k.wav", gain=0.35 + 0.03 * i) for i in range(20)]
    peers = [await open_call(server) for _ in voices]
    faulty = await open_call(server, params={"explode": "1"})

    async def converse(index: int) -> bytes:
        peer = peers[index]
        return await say_and_listen(peer, voices[index], lead_ms=200 + 20 * index)

    calls = asyncio.gather(*(converse(i) for i in range(20)))
    await asyncio.sleep(1.0)
    await faulty.send_dtmf("5")
    assert await faulty.wait_closed(3) == 1011
    sent_by = await calls
    for index, peer in enumerate(peers):
        heard = bytes(peer.played)
        assert len(heard) > 0.8 * len(voices[index])
        assert heard in sent_by[index]
        for other in range(20):
            if other != index:
                assert heard[:4000] not in sent_by[other]
        assert {f["streamSid"] for _, f in peer.timeline.received} == {peer.stream_sid}
    for peer in [*peers, faulty]:
        await peer.close()


async def test_100_sequential_calls_leave_nothing_behind(server: ServerThread) -> None:
    for _ in range(100):
        peer = await open_call(server)
        await peer.stream(b"\x00" * 800, realtime=False)
        await peer.send_stop()
        await peer.wait_closed(3)
        await peer.close()
    leaks = await asyncio.to_thread(server.wait_clean, 2.0)
    assert leaks == {"tasks": [], "connections": 0, "sessions": 0}


async def test_binary_frames_are_counted_not_fatal(server: ServerThread) -> None:
    async with connect(f"{server.ws}/stream") as ws:
        for _ in range(5):
            await ws.send(b"\x00" * 10)
        await ws.send(json.dumps({"event": "connected"}))
        await asyncio.sleep(0.2)
        assert ws.close_code is None


# -- one stream per call -------------------------------------------------------------------


async def test_a_second_stream_for_a_live_call_is_refused_and_the_call_goes_on(
    make_server: MakeServer, hello_ulaw: bytes
) -> None:
    factory = tone_factory(reply_ms=600)
    server = make_server(factory)
    first = await open_call(server, call_sid="CA" + "d" * 32)
    talking = background(first.silence(1500))
    second = await open_call(server, call_sid=first.call_sid)
    assert await second.wait_closed(3) == 4409
    assert second.close_reason == "a live stream already exists for this call"
    await second.close()
    await talking
    assert len(factory.agents) == 1  # never a second agent
    await say(first, hello_ulaw)
    await first.wait_for_media(1, timeout_s=5)
    assert not first.is_closed
    await first.close()


async def test_a_new_stream_takes_over_from_one_that_went_silent(
    make_server: MakeServer, hello_ulaw: bytes
) -> None:
    factory = tone_factory(reply_ms=600)
    server = make_server(factory)
    first = await open_call(server, call_sid="CA" + "e" * 32)
    await first.silence(200)
    await asyncio.sleep(2.3)  # a half-open stream: nothing arrives for longer than 2 s
    second = await open_call(server, call_sid=first.call_sid)
    assert await first.wait_closed(3) == 4000
    await first.close()
    await say(second, hello_ulaw)
    await second.wait_for_media(1, timeout_s=5)
    old = factory.agents[0]
    assert len(factory.agents) == 2 and isinstance(old, ToneAgent) and old.closed
    await second.close()
