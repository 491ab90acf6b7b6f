"""The OpenAI Realtime agent end to end: real server, emulated Twilio / toy, fake Realtime API.

Every test runs the real uvicorn server with ``BRIDGE_AGENT=openai-realtime`` wired through
settings, and a real WebSocket server on loopback that speaks the Realtime GA events.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from pipeline.agents.realtime.agent import RealtimeAgent
from pipeline.apology import apology_audio
from pipeline.audio import ULAW_8K
from tests.fakes.agents import tone_pcm
from tests.fakes.realtime_server import API_KEY, FakeRealtime, Reply, pcm_rate_from_tone
from tests.support.realtime import (
    PhoneLine,
    reply_ulaw,
    speech_ulaw,
    start_bridge,
    wait_for,
)
from tests.support.serverthread import MakeServer
from tests.support.toys import open_toy
from tests.support.twilio_calls import open_call
from transports.twilio.emulator.client import FakeTwilio

APOLOGY = apology_audio(ULAW_8K)


@pytest.fixture
async def fake() -> AsyncIterator[FakeRealtime]:
    async with FakeRealtime() as server:
        yield server


def only_agent(factory: object) -> RealtimeAgent:
    agents = factory.agents  # type: ignore[attr-defined]
    assert len(agents) == 1
    agent = agents[0]
    assert isinstance(agent, RealtimeAgent)
    return agent


# -- phone calls: μ-law straight through ------------------------------------------------------


async def test_phone_audio_passes_through_byte_for_byte(
    make_server: MakeServer, fake: FakeRealtime, hello_ulaw: bytes
) -> None:
    reply = Reply(audio_ms=1000, transcript="Hi there, caller.")
    fake.default_reply = reply
    server, _, transcripts = start_bridge(make_server, fake)
    peer = await open_call(server)
    line = PhoneLine(peer)
    line.say(hello_ulaw)
    await wait_for(lambda: len(peer.played) >= len(reply_ulaw(reply)), what="the reply")
    await wait_for(lambda: not line.speaking, what="the caller to finish")
    await line.stop()
    session = fake.sessions[0]
    await fake.wait_until(lambda: len(session.audio) >= len(line.sent), what="all caller audio")
    await peer.close()

    # What the model heard is exactly what the caller sent: no decode, no resample.
    assert bytes(session.audio) == bytes(line.sent)
    update = session.of_type("session.update")[0]["session"]
    assert update["type"] == "realtime"
    assert update["audio"]["input"]["format"] == {"type": "audio/pcmu"}
    assert update["audio"]["output"]["format"] == {"type": "audio/pcmu"}
    assert update["audio"]["input"]["turn_detection"]["type"] == "server_vad"
    assert update["audio"]["output"]["voice"] == "alloy"
    assert session.path == "/v1/realtime?model=gpt-realtime"
    assert session.headers["Authorization"] == f"Bearer {API_KEY}"
    # ...and what the caller heard is exactly what the model said.
    assert bytes(peer.played).startswith(reply_ulaw(reply))
    assert ("assistant", "Hi there, caller.") in transcripts.lines
    assert ("user", "hello there") in transcripts.lines


async def test_first_message_is_spoken_by_the_model(
    make_server: MakeServer, fake: FakeRealtime
) -> None:
    greeting = Reply(audio_ms=800, freq_hz=300.0, transcript="Ahoy!")
    fake.replies.append(greeting)
    server, _, _ = start_bridge(make_server, fake, BRIDGE_FIRST_MESSAGE="Ahoy, matey!")
    peer = await open_call(server)
    line = PhoneLine(peer)
    await wait_for(lambda: len(peer.played) >= len(reply_ulaw(greeting)), what="the greeting")
    await line.stop()
    await peer.close()
    create = fake.events("response.create")[0]["response"]
    assert "Ahoy, matey!" in create["instructions"]
    assert bytes(peer.played) == reply_ulaw(greeting)


async def reply_under_way(
    make_server: MakeServer, fake: FakeRealtime, reply_ms: int
) -> tuple[FakeTwilio, PhoneLine]:
    """A caller asked; the model's reply, generated in real time, has played for 1.5 s."""
    fake.pace = 1.0
    fake.default_reply = Reply(audio_ms=reply_ms)
    server, _, _ = start_bridge(make_server, fake)
    peer = await open_call(server)
    line = PhoneLine(peer)
    line.say(speech_ulaw(800))
    await wait_for(lambda: len(peer.played) >= 8 * 1500, what="1.5 s of the reply")
    return peer, line


async def test_barge_in_cancels_and_truncates_at_what_was_heard(
    make_server: MakeServer, fake: FakeRealtime
) -> None:
    # a long reply still being generated when the caller cuts in
    peer, line = await reply_under_way(make_server, fake, reply_ms=8000)
    line.say(speech_ulaw(1500, 900.0))  # speech that goes on: a real interruption
    await wait_for(lambda: bool(peer.timeline.clears), what="the clear")
    heard_ms = len(peer.played) / 8
    await fake.wait_until(lambda: bool(fake.events("conversation.item.truncate")), what="truncate")
    await fake.wait_until(lambda: bool(fake.events("response.cancel")), what="cancel")
    # the interrupting turn is answered: the bridge asks for it once the server commits it
    await fake.wait_until(lambda: len(fake.events("response.create")) == 2, what="the answer")
    await line.stop()
    await peer.close()

    session = fake.sessions[0]
    truncate = fake.events("conversation.item.truncate")[0]
    assert abs(truncate["audio_end_ms"] - heard_ms) < 250, (truncate, heard_ms)
    assert truncate["content_index"] == 0
    assert truncate["item_id"] == next(iter(session.items_ms))
    first_response = session.sent_of_type("response.created")[0]["response"]["id"]
    assert fake.events("response.cancel")[0]["response_id"] == first_response
    assert not session.sent_of_type("error")  # both were valid when they arrived
    assert heard_ms < 4000  # the rest of the 8 s reply was never played
    assert session.deleted == []


async def test_a_short_sound_over_the_reply_is_forgotten_and_the_reply_goes_on(
    make_server: MakeServer, fake: FakeRealtime
) -> None:
    peer, line = await reply_under_way(make_server, fake, reply_ms=4000)
    line.say(speech_ulaw(400, 900.0))  # an "uh-huh": short, and our VAD hears it
    await wait_for(lambda: bool(peer.timeline.clears), what="the stop")
    session = fake.sessions[0]
    await fake.wait_until(lambda: bool(session.deleted), what="the sound's item deleted")
    await wait_for(lambda: len(peer.played) >= 8 * 4000, what="the whole reply", timeout_s=10)
    await line.stop()
    await peer.close()

    assert fake.events("response.cancel") == [] and fake.events("conversation.item.truncate") == []
    assert len(fake.events("response.create")) == 1  # the question's; the sound is not answered
    committed = session.sent_of_type("input_audio_buffer.committed")
    (first_item, second_item) = [e["item_id"] for e in committed]
    assert session.deleted == [second_item] and session.user_items == [first_item]
    # the caller heard every bit of the reply: what the stop cut was sent again
    assert len(peer.played) >= len(reply_ulaw(fake.default_reply))


async def test_end_call_hangs_up_after_the_goodbye(
    make_server: MakeServer, fake: FakeRealtime
) -> None:
    goodbye = Reply(audio_ms=900, transcript="Goodbye!", end_call=True)
    fake.default_reply = goodbye
    server, _, _ = start_bridge(make_server, fake)
    peer = await open_call(server)
    line = PhoneLine(peer)
    line.say(speech_ulaw(600))
    code = await peer.wait_closed(timeout_s=20)
    await line.stop()
    await peer.close()
    assert code == 1000
    assert bytes(peer.played) == reply_ulaw(goodbye)  # every word of the goodbye was heard
    assert peer.timeline.played_marks  # closed only after the final mark came back


# -- toys: 24 kHz PCM up, Opus down -----------------------------------------------------------


async def test_toy_sends_24khz_pcm_and_hears_opus(
    make_server: MakeServer, fake: FakeRealtime
) -> None:
    reply = Reply(audio_ms=1200)
    fake.default_reply = reply
    server, _, _ = start_bridge(
        make_server, fake, BRIDGE_OPENAI_REALTIME_TURN_DETECTION="semantic_vad"
    )
    toy = await open_toy(server, token=None)
    sent = await toy.speak(tone_pcm(1000, 1000.0, 16000), trailing_silence_ms=1200)
    responses = await toy.wait_responses(2, 15)  # the greeting-less COMPLETE, then the reply
    await toy.close()
    session = fake.sessions[0]
    update = session.of_type("session.update")[0]["session"]
    assert update["audio"]["input"]["format"] == {"type": "audio/pcm", "rate": 24000}
    assert update["audio"]["output"]["format"] == {"type": "audio/pcm", "rate": 24000}
    assert update["audio"]["input"]["turn_detection"]["type"] == "semantic_vad"
    # The toy's 16 kHz mic arrives resampled once to 24 kHz: a 1 kHz tone at 24 kHz...
    assert pcm_rate_from_tone(bytes(session.audio), 1000.0, (16000, 24000)) == 24000
    # ...and as long as what the toy sent (bytes per ms: 32 at 16 kHz, 48 at 24 kHz).
    assert abs(len(session.audio) / 48 - sent / 32) < 100
    spoken = responses[-1]
    assert spoken.ok is True and spoken.bracketed
    assert abs(spoken.decoded_ms - reply.audio_ms) < 250


# -- failures ----------------------------------------------------------------------------------


async def test_handshake_500_is_retried(make_server: MakeServer, fake: FakeRealtime) -> None:
    greeting = Reply(audio_ms=600)
    fake.replies.append(greeting)
    fake.reject_statuses.extend([500, 429])
    server, _, _ = start_bridge(make_server, fake, BRIDGE_FIRST_MESSAGE="Hello!")
    peer = await open_call(server)
    line = PhoneLine(peer)
    await wait_for(lambda: len(peer.played) >= len(reply_ulaw(greeting)), what="the greeting")
    await line.stop()
    await peer.close()
    assert [status for status, _ in fake.handshakes] == [500, 429, 101]
    assert bytes(peer.played) == reply_ulaw(greeting)


async def test_a_rejected_key_apologises_and_ends_the_call(
    make_server: MakeServer, fake: FakeRealtime, caplog: pytest.LogCaptureFixture
) -> None:
    server, _, _ = start_bridge(make_server, fake, BRIDGE_OPENAI_API_KEY="sk-wrong")
    peer = await open_call(server)
    line = PhoneLine(peer)
    code = await peer.wait_closed(timeout_s=15)
    await line.stop()
    await peer.close()
    assert code == 1000
    assert bytes(peer.played) == APOLOGY
    assert [status for status, _ in fake.handshakes] == [401]  # never retried
    assert any("BRIDGE_OPENAI_API_KEY" in r.getMessage() for r in caplog.records)


async def test_dropped_socket_mid_reply_apologises_then_recovers(
    make_server: MakeServer, fake: FakeRealtime
) -> None:
    first, second = Reply(audio_ms=2000, freq_hz=440.0), Reply(audio_ms=700, freq_hz=600.0)
    fake.replies.extend([first, second])
    fake.drop_after_deltas = 3  # 300 ms of the first reply, then the socket dies
    server, factory, _ = start_bridge(make_server, fake)
    peer = await open_call(server)
    line = PhoneLine(peer)
    line.say(speech_ulaw(600))
    partial = reply_ulaw(first)[: 3 * 800]
    await wait_for(lambda: len(peer.played) >= len(partial) + len(APOLOGY), what="the apology")
    await fake.wait_until(lambda: len(fake.sessions) == 2, what="the reconnection")
    line.say(speech_ulaw(600))
    expected = partial + APOLOGY + reply_ulaw(second)
    await wait_for(lambda: len(peer.played) >= len(expected), what="the next reply")
    await line.stop()
    await peer.close()
    assert bytes(peer.played) == expected
    resumed = fake.sessions[1]
    assert resumed.of_type("session.update")
    replayed = resumed.of_type("conversation.item.create")
    assert replayed and replayed[0]["item"]["role"] == "user"
    assert only_agent(factory).connections == 2


async def test_dropped_socket_gives_the_toy_response_error_then_recovers(
    make_server: MakeServer, fake: FakeRealtime
) -> None:
    fake.replies.extend([Reply(audio_ms=2000), Reply(audio_ms=800)])
    fake.drop_after_deltas = 3
    server, _, _ = start_bridge(make_server, fake)
    toy = await open_toy(server, token=None)
    await toy.speak(tone_pcm(800, 1000.0, 16000), trailing_silence_ms=1200)
    responses = await toy.wait_responses(2, 15)
    assert responses[-1].ok is False  # RESPONSE.ERROR: the device listens again
    await fake.wait_until(lambda: len(fake.sessions) == 2, what="the reconnection")
    await toy.speak(tone_pcm(800, 1000.0, 16000), trailing_silence_ms=1200)
    responses = await toy.wait_responses(3, 15)
    await toy.close()
    assert responses[-1].ok is True
    assert responses[-1].decoded_ms > 600


async def test_stalled_upstream_never_blocks_the_call_and_drops_oldest_audio(
    make_server: MakeServer, fake: FakeRealtime
) -> None:
    greeting = Reply(audio_ms=4000, freq_hz=300.0)
    answer = Reply(audio_ms=600, freq_hz=600.0)
    fake.replies.extend([greeting, answer])
    server, factory, _ = start_bridge(make_server, fake, BRIDGE_FIRST_MESSAGE="Hello!")
    peer = await open_call(server)
    line = PhoneLine(peer)
    await fake.wait_until(lambda: bool(fake.events("response.create")), what="the greeting")
    first = fake.sessions[0]
    await fake.wait_until(lambda: bool(first.sent_of_type("response.done")), what="greeting")
    await wait_for(lambda: len(peer.played) > 0, what="the greeting to start")
    # The upstream goes away and its handshake hangs for 2.5 s while the greeting plays.
    fake.handshake_delay_s = 2.5
    fake.drop_connections()
    await fake.wait_until(lambda: len(fake.sessions) == 2, timeout_s=15, what="the reconnection")
    agent = only_agent(factory)
    # The greeting (4 s, twice the unacknowledged-audio cap) played to the end: mark echoes
    # kept being read while the agent had nowhere to send the caller's audio.
    await wait_for(lambda: len(peer.played) >= len(reply_ulaw(greeting)), what="the greeting")
    assert bytes(peer.played) == reply_ulaw(greeting)
    assert agent.dropped_ms >= 300
    line.say(speech_ulaw(600))
    expected = reply_ulaw(greeting) + reply_ulaw(answer)
    await wait_for(lambda: len(peer.played) >= len(expected), what="the answer")
    await line.stop()
    await peer.close()
    assert bytes(peer.played) == expected
    # What reached the new connection first is the newest 2 s the caller sent.
    resumed = bytes(fake.sessions[1].audio)
    assert resumed[: 8 * 2000] in bytes(line.sent)


def test_realtime_url_is_derived_from_the_base_url() -> None:
    from pipeline.agents.realtime.config import RealtimeConfig, realtime_url

    assert realtime_url("https://api.openai.com/v1") == "wss://api.openai.com/v1/realtime"
    assert realtime_url("http://127.0.0.1:9000/v1/") == "ws://127.0.0.1:9000/v1/realtime"
    config = RealtimeConfig(url="wss://example.test/v1/realtime?x=1", api_key="k", model="m")
    assert config.endpoint() == "wss://example.test/v1/realtime?x=1&model=m"


async def test_idle_call_ends_with_the_models_farewell(
    make_server: MakeServer, fake: FakeRealtime
) -> None:
    farewell = Reply(audio_ms=700, freq_hz=500.0, transcript="Bye for now!")
    fake.replies.append(farewell)
    server, _, transcripts = start_bridge(make_server, fake, BRIDGE_CALL_IDLE_TIMEOUT_S=1.5)
    peer = await open_call(server)
    line = PhoneLine(peer)
    code = await peer.wait_closed(timeout_s=20)
    await line.stop()
    await peer.close()
    assert code == 1000
    create = fake.events("response.create")[0]["response"]
    assert "goodbye" in create["instructions"]
    assert bytes(peer.played) == reply_ulaw(farewell)
    assert ("assistant", "Bye for now!") in transcripts.lines
