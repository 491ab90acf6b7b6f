"""ESP32 toys end to end (spec esp32-elato.md §9): a real server and the emulated toy."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from pathlib import Path

import numpy as np
import opuslib
import pytest
from websockets.asyncio.client import connect

from pipeline.agents.echo import EchoAgent
from tests.fakes.agents import (
    Factory,
    FailingStartAgent,
    FailingTurnAgent,
    HangUpAgent,
    StallingAgent,
    StallMidReplyAgent,
    ToneAgent,
)
from tests.support.serverthread import MakeServer, ServerThread
from tests.support.toys import (
    SECRET,
    RecordingStreamAgent,
    SilentAgent,
    assert_gaps,
    hello_16k,
    open_toy,
    refused_status,
    token,
    tone_16k,
    toy_url,
)
from transports.esp32.emulator.client import FakeToy

FRAME_MS = 120


def echo_factory() -> Factory:
    return Factory(lambda call: EchoAgent(call.native_in))


def tone_factory(**kwargs: int) -> Factory:
    return Factory(lambda call: ToneAgent(call, **kwargs))


@pytest.fixture
def secured(make_server: MakeServer) -> ServerThread:
    return make_server(echo_factory(), BRIDGE_ESP32_JWT_SECRET=SECRET)


# -- handshake and authentication (checklist 1-7) ------------------------------------------


async def test_valid_token_gets_101_with_arduino_and_no_compression(secured: ServerThread) -> None:
    toy = await open_toy(secured)
    assert toy.subprotocol == "arduino"
    await toy.wait_responses(1, 5)
    await toy.close()
    async with connect(
        toy_url(secured),
        additional_headers={"Authorization": f"Bearer {token()}"},
        compression="deflate",
    ) as ws:
        assert ws.response is not None
        assert "Sec-WebSocket-Extensions" not in ws.response.headers


async def test_no_mac_no_rssi_and_bad_rssi_are_accepted(secured: ServerThread) -> None:
    for kwargs in (
        {"mac": None, "rssi": None},
        {"extra_headers": {"X-Wifi-Rssi": "abc"}, "rssi": None},
    ):
        toy = await open_toy(secured, **kwargs)  # type: ignore[arg-type]
        await toy.wait_responses(1, 5)
        await toy.close()


@pytest.mark.parametrize(
    "bad_token",
    [
        None,
        "garbage",
        token(secret="another-secret-0123456789-abcdefghijkl"),
        "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJ1c2VyLTEifQ.",  # alg: none
        token(algorithm="HS512"),
        token(exp=int(time.time()) - 3600),
    ],
    ids=["missing", "garbage", "wrong-secret", "alg-none", "hs512", "expired"],
)
async def test_bad_tokens_are_refused_with_401_before_101(
    make_server: MakeServer, bad_token: str | None
) -> None:
    factory = echo_factory()
    server = make_server(factory, BRIDGE_ESP32_JWT_SECRET=SECRET)
    assert await refused_status(server, token=bad_token) == 401
    assert factory.agents == []


async def test_query_string_token_revocation_and_mac_binding(
    make_server: MakeServer, tmp_path: Path
) -> None:
    devices = tmp_path / "devices.json"
    devices.write_text(
        json.dumps(
            {
                "users": {"user-1": {"mac": "24:0A:C4:12:34:56", "volume": 40}},
                "revoked": {"subs": ["user-9"]},
            }
        )
    )
    factory = echo_factory()
    server = make_server(factory, BRIDGE_ESP32_JWT_SECRET=SECRET, BRIDGE_ESP32_DEVICES_FILE=devices)
    query = FakeToy(f"{toy_url(server)}?token={token()}", token=None)
    try:
        await query.connect()
        raise AssertionError("a query-string token was accepted")
    except Exception as exc:
        assert getattr(getattr(exc, "response", None), "status_code", None) == 401
    finally:
        await query.close()
    assert await refused_status(server, token=token("user-9")) == 401
    assert await refused_status(server, token=token(), mac="AA:BB:CC:DD:EE:FF") == 401
    toy = await open_toy(server)  # the bound MAC
    await toy.wait_responses(1, 5)
    assert toy.auth is not None and toy.auth["volume_control"] == 40  # per-user setting
    await toy.close()
    assert len(factory.agents) == 1


async def test_failed_upgrades_are_rate_limited_per_ip(secured: ServerThread) -> None:
    statuses = [await refused_status(secured, token="garbage", mac=None) for _ in range(11)]
    assert statuses[:10] == [401] * 10 and statuses[10] == 429
    # a good device on another loopback address is unaffected
    async with connect(
        toy_url(secured),
        additional_headers={"Authorization": f"Bearer {token()}"},
        local_addr=("127.0.0.2", 0),
    ) as ws:
        first = json.loads(await ws.recv())
        assert first["type"] == "auth"


async def test_without_credentials_loopback_toys_are_accepted(server: ServerThread) -> None:
    toy = await open_toy(server, token=None)
    await toy.wait_responses(1, 5)
    await toy.close()


async def test_plain_http_on_the_toy_route_gets_426(server: ServerThread) -> None:
    import httpx

    async with httpx.AsyncClient() as http:
        response = await http.get(f"{server.http}/ws/esp32")
    assert response.status_code == 426


# -- the first frames and the greeting (8-12) ----------------------------------------------


async def test_auth_first_then_greeting_bracket_decodes_and_is_padded(
    make_server: MakeServer,
) -> None:
    server = make_server(tone_factory(greeting_ms=1000))
    toy = await open_toy(server, token=None)
    [greeting] = await toy.wait_responses(1, 15)
    assert toy.first_message_at is not None and toy.connected_at is not None
    assert toy.first_message_at - toy.connected_at < 0.5
    first = toy.messages[0]
    assert first[1] == "text" and isinstance(first[2], dict) and first[2]["type"] == "auth"
    assert greeting.ok and greeting.bracketed and len(greeting.packets) >= 1
    # 1000 ms of agent audio -> 9 frames of 120 ms: rounded up, tail zero-padded, not dropped
    assert greeting.decoded_ms == 9 * FRAME_MS
    decoder_24k = opuslib.Decoder(24000, 1)
    for packet in greeting.packets:
        assert len(packet) < 1500
        assert len(decoder_24k.decode(packet, 2880)) <= 2880 * 2
    assert toy.protocol_errors == [] and toy.dropped_binary == 0
    await toy.close()


async def test_without_a_greeting_a_bare_complete_arrives(server: ServerThread) -> None:
    toy = await open_toy(server, token=None)
    [first] = await toy.wait_responses(1, 15)
    assert first.ok and not first.bracketed
    await toy.close()


# -- conversation (13-19) ------------------------------------------------------------------


@pytest.mark.parametrize("chunk_bytes", [1024, 63, 3000, 1023])
async def test_spoken_turn_gets_committed_and_answered(
    server: ServerThread, chunk_bytes: int
) -> None:
    toy = await open_toy(server, token=None, idle_mic=True, mic_chunk_bytes=chunk_bytes)
    await toy.wait_responses(1, 5)
    speech = hello_16k()
    await toy.speak(speech)
    responses = await toy.wait_responses(2, 20)
    reply = responses[1]
    texts = [
        m[2]["msg"]
        for m in toy.messages
        if m[1] == "text" and isinstance(m[2], dict) and "msg" in m[2]
    ]
    assert texts[:3] == ["RESPONSE.COMPLETE", "AUDIO.COMMITTED", "RESPONSE.CREATED"]
    speech_ms = len(speech) / 32
    assert reply.ok and speech_ms * 0.8 <= reply.decoded_ms <= speech_ms + 1000
    assert toy.protocol_errors == []
    assert_gaps(toy.responses)
    await toy.close()


@pytest.mark.parametrize("rate_hz", [16000, 24000])
async def test_upstream_rate_is_honoured(make_server: MakeServer, rate_hz: int) -> None:
    factory = Factory(RecordingStreamAgent)
    server = make_server(factory, BRIDGE_ESP32_UPSTREAM_RATE_HZ=rate_hz)
    toy = await open_toy(server, token=None)
    await toy.wait_state("LISTENING", 5)
    await toy.speak(tone_16k(1500, 1000.0, rate_hz), trailing_silence_ms=0)
    await asyncio.sleep(0.3)
    await toy.close()
    agent = factory.agents[0]
    assert isinstance(agent, RecordingStreamAgent)
    samples = np.frombuffer(bytes(agent.received), dtype=np.int16).astype(np.float64)
    assert len(samples) > 16000  # at 16 kHz, the agent's rate
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    assert abs(np.argmax(spectrum) * 16000 / len(samples) - 1000) < 10  # 1 kHz, not 1.5 kHz


async def test_empty_answer_gets_response_error_and_the_toy_listens_again(
    make_server: MakeServer,
) -> None:
    server = make_server(Factory(SilentAgent))
    toy = await open_toy(server, token=None, idle_mic=True)
    await toy.wait_responses(1, 5)
    await toy.speak(hello_16k())
    reply = (await toy.wait_responses(2, 20))[1]
    assert reply.ok is False and not reply.bracketed
    await toy.wait_state("LISTENING", 3)
    await toy.close()


async def test_upstream_during_a_response_is_discarded(make_server: MakeServer) -> None:
    factory = tone_factory(greeting_ms=3000)
    server = make_server(factory)
    toy = await open_toy(server, token=None)
    await toy.wait_state("SPEAKING", 5)
    speech = hello_16k()
    for i in range(0, len(speech), 1024):  # a misbehaving device talking over the response
        await toy.send_binary(speech[i : i + 1024])
    await toy.wait_responses(1, 10)
    await asyncio.sleep(1.5)
    agent = factory.agents[0]
    assert isinstance(agent, ToneAgent) and agent.utterances == []
    await toy.close()


# -- failures and watchdogs (20-22) --------------------------------------------------------


async def test_agent_failure_mid_turn_gives_error_and_the_next_turn_works(
    make_server: MakeServer,
) -> None:
    server = make_server(Factory(lambda call: FailingTurnAgent(call)))
    toy = await open_toy(server, token=None, idle_mic=True)
    await toy.wait_responses(1, 5)
    for turn in (1, 2):
        await toy.speak(hello_16k())
        reply = (await toy.wait_responses(turn + 1, 20))[turn]
        assert reply.ok is False
    assert not toy.is_closed  # two failures: still up (the third closes)
    await toy.close()


async def test_watchdogs_answer_a_stalled_agent_with_error(make_server: MakeServer) -> None:
    server = make_server(
        Factory(lambda call: StallingAgent(call)),
        BRIDGE_ESP32_COMMIT_TIMEOUT_S=2,
        BRIDGE_ESP32_PACKET_TIMEOUT_S=2,
    )
    toy = await open_toy(server, token=None, idle_mic=True)
    await toy.wait_responses(1, 5)
    await toy.speak(hello_16k(), trailing_silence_ms=1200)
    committed_at = next(
        t
        for t, kind, m in toy.messages
        if kind == "text" and isinstance(m, dict) and m.get("msg") == "AUDIO.COMMITTED"
    )
    reply = (await toy.wait_responses(2, 10))[1]
    assert reply.ok is False and 1.8 <= reply.ended_at - committed_at <= 3.5  # type: ignore[operator]
    await toy.close()


async def test_watchdog_closes_a_response_left_open(make_server: MakeServer) -> None:
    server = make_server(
        Factory(lambda call: StallMidReplyAgent(call)), BRIDGE_ESP32_PACKET_TIMEOUT_S=2
    )
    toy = await open_toy(server, token=None, idle_mic=True)
    await toy.wait_responses(1, 5)
    await toy.speak(hello_16k())
    reply = (await toy.wait_responses(2, 15))[1]
    # 240 ms of agent audio: one full frame; the rest waits for an end of turn that never comes
    assert reply.bracketed and reply.ok is False and len(reply.packets) == 1
    assert 1.8 <= reply.ended_at - reply.packet_times[-1] <= 3.5  # type: ignore[operator]
    await toy.close()


async def test_agent_start_failure_errors_closes_1011_and_backs_off(
    make_server: MakeServer,
) -> None:
    server = make_server(Factory(lambda call: FailingStartAgent(call)))
    toy = FakeToy(toy_url(server))
    await toy.connect()
    assert await toy.wait_closed(5) == 1011
    assert toy.auth is not None
    assert [r.ok for r in toy.responses] == [False]
    await toy.close()
    assert await refused_status(server) == 503


# -- pacing, back-pressure, keepalive (23-25) ----------------------------------------------


async def test_pacing_never_runs_more_than_the_lead_ahead(make_server: MakeServer) -> None:
    server = make_server(tone_factory(greeting_ms=8000))
    toy = await open_toy(server, token=None, realtime_playback=False)
    [greeting] = await toy.wait_responses(1, 20)
    times = greeting.packet_times
    assert len(times) == 67
    for n, t in enumerate(times):
        assert t >= times[0] + n * FRAME_MS / 1000 - 1.0
    await toy.close()


async def test_back_pressure_through_a_60_second_reply(make_server: MakeServer) -> None:
    server = make_server(
        tone_factory(greeting_ms=60_000), BRIDGE_WS_PING_INTERVAL_S=5, BRIDGE_WS_PING_TIMEOUT_S=25
    )
    toy = await open_toy(server, token=None)
    [greeting] = await toy.wait_responses(1, 75)
    assert greeting.ok and len(greeting.packets) == 500  # nothing lost
    assert greeting.ended_at is not None and greeting.ended_at >= greeting.packet_times[-1]
    assert greeting.decoded_ms == 500 * FRAME_MS
    assert toy.protocol_errors == [] and not toy.is_closed
    await toy.close()


async def test_keepalive_pings_are_answered_in_a_quiet_session(make_server: MakeServer) -> None:
    server = make_server(echo_factory(), BRIDGE_WS_PING_INTERVAL_S=1, BRIDGE_WS_PING_TIMEOUT_S=3)
    toy = await open_toy(server, token=None)
    await toy.wait_responses(1, 5)
    await asyncio.sleep(6)
    assert not toy.is_closed
    await toy.close()


# -- instructions and ending (26-30) -------------------------------------------------------


async def test_end_of_speech_commits_without_waiting_for_silence(server: ServerThread) -> None:
    toy = await open_toy(server, token=None)
    await toy.wait_responses(1, 5)
    speak = asyncio.create_task(toy.speak(hello_16k(), trailing_silence_ms=3000))
    await asyncio.sleep(2.0)
    sent_at = time.monotonic()
    await toy.send_instruction("end_of_speech")
    await toy.wait_state("PROCESSING", 1)
    assert time.monotonic() - sent_at < 0.5
    await speak
    await toy.wait_responses(2, 10)
    await toy.close()


async def test_interrupt_stops_the_reply_and_truncates_what_was_heard(
    make_server: MakeServer,
) -> None:
    factory = tone_factory(greeting_ms=6000)
    server = make_server(factory)
    toy = await open_toy(server, token=None)
    await toy.wait_state("SPEAKING", 5)
    await asyncio.sleep(1.5)
    await toy.send_instruction("INTERRUPT", audio_end_ms=1000)
    sent_at = time.monotonic()
    [greeting] = await toy.wait_responses(1, 5)
    assert greeting.ok
    # Packets already sent inside the pacing lead (500 ms) are in flight when the server reads
    # the INTERRUPT; nothing beyond that may follow, and the reply stops near the interrupt.
    late = [t for t in greeting.packet_times if t > sent_at + 0.05]
    in_flight = 500 // FRAME_MS + 1
    assert len(late) <= in_flight
    assert len(greeting.packets) * FRAME_MS <= 1500 + 500 + 2 * FRAME_MS < 6000
    await asyncio.sleep(0.2)
    agent = factory.agents[0]
    assert isinstance(agent, ToneAgent)
    [(_turn, heard_ms)] = agent.interruptions
    assert heard_ms <= 1000
    # with no response open, INTERRUPT is ignored
    await toy.send_instruction("INTERRUPT", audio_end_ms=5)
    await toy.wait_state("LISTENING", 3)
    await toy.close()


async def test_end_session_instruction(server: ServerThread) -> None:
    toy = await open_toy(server, token=None)
    await toy.wait_responses(1, 5)
    await toy.send_instruction("END_SESSION")
    assert await toy.wait_closed(3.5) == 1000
    assert toy.session_ended
    await toy.close()


async def test_agent_goodbye_sends_session_end_after_playback(make_server: MakeServer) -> None:
    server = make_server(Factory(lambda call: HangUpAgent(call, reply_ms=1200)))
    toy = await open_toy(server, token=None, idle_mic=True)
    await toy.wait_responses(1, 5)
    await toy.speak(hello_16k())
    reply = (await toy.wait_responses(2, 20))[1]
    assert reply.ok and reply.decoded_ms == 10 * FRAME_MS
    await toy.wait_closed(8)
    end_at = next(
        t
        for t, kind, m in toy.messages
        if kind == "text" and isinstance(m, dict) and m.get("msg") == "SESSION.END"
    )
    playback_end = reply.packet_times[0] + reply.decoded_ms / 1000
    assert 0.25 <= end_at - playback_end <= 1.0
    assert toy.protocol_errors == []
    await toy.close()


async def test_idle_toy_hears_a_farewell_then_sleeps(make_server: MakeServer) -> None:
    factory = tone_factory()
    server = make_server(factory, BRIDGE_ESP32_IDLE_TIMEOUT_S=2)
    toy = await open_toy(server, token=None, idle_mic=True)
    started = time.monotonic()
    assert await toy.wait_closed(8) == 1000
    assert toy.session_ended and 2.0 <= time.monotonic() - started <= 6.0
    farewell = toy.responses[-1]
    assert farewell.ok and farewell.bracketed and farewell.decoded_ms == 3 * FRAME_MS
    assert toy.protocol_errors == []
    await toy.close()


# -- hostile input, reconnects, isolation (31-36) ------------------------------------------


async def test_garbage_is_ignored_until_too_much(server: ServerThread) -> None:
    toy = await open_toy(server, token=None)
    await toy.wait_responses(1, 5)
    for text in ('{"type":"foo"}', "hello", "[]", '{"type":"instruction"}'):
        await toy.send_text(text)
    await toy.send_binary(b"")
    await asyncio.sleep(0.3)
    assert not toy.is_closed
    for _ in range(98):
        await toy.send_text("nope")
    assert await toy.wait_closed(3) == 1008
    await toy.close()


async def test_oversized_message_and_flood_close_the_toy(server: ServerThread) -> None:
    big = await open_toy(server, token=None)
    await big.wait_responses(1, 5)
    await big.send_binary(b"\x00" * (65 * 1024))
    assert await big.wait_closed(3) == 1009
    await big.close()
    flood = await open_toy(server, token=None, mac="24:0A:C4:00:00:01")
    await flood.wait_state("LISTENING", 5)
    chunk = b"\x00" * 4096
    start = time.monotonic()
    while not flood.is_closed and time.monotonic() - start < 6:
        await flood.send_binary(chunk)  # 8x real time
        await asyncio.sleep(4096 / 32000 / 8)
    assert await flood.wait_closed(3) == 1008
    await flood.close()


async def test_reconnect_after_a_drop_is_a_fresh_session(make_server: MakeServer) -> None:
    server = make_server(tone_factory(greeting_ms=3000))
    first = await open_toy(server, token=None)
    await first.wait_state("SPEAKING", 5)
    await first.close()  # abrupt: mid-greeting
    second = await open_toy(server, token=None)
    [greeting] = await second.wait_responses(1, 10)
    assert second.auth is not None and greeting.decoded_ms == 25 * FRAME_MS
    assert second.protocol_errors == []
    await second.close()


async def test_a_second_connection_supersedes_the_first(server: ServerThread) -> None:
    first = await open_toy(server, token=None)
    await first.wait_responses(1, 5)
    second = await open_toy(server, token=None)
    assert await first.wait_closed(3) == 4000
    await second.wait_responses(1, 5)
    assert not second.is_closed
    await first.close()
    await second.close()


async def test_twenty_toys_in_parallel_with_three_misbehaving(server: ServerThread) -> None:
    good = [
        await open_toy(server, token=None, mac=f"24:0A:C4:00:01:{i:02X}", idle_mic=True)
        for i in range(17)
    ]
    garbage = await open_toy(server, token=None, mac="24:0A:C4:00:02:01")
    flood = await open_toy(server, token=None, mac="24:0A:C4:00:02:02")
    dropper = await open_toy(server, token=None, mac="24:0A:C4:00:02:03")
    speech = hello_16k()

    async def converse(toy: FakeToy) -> None:
        await toy.wait_responses(1, 10)
        await toy.speak(speech)
        reply = (await toy.wait_responses(2, 30))[1]
        assert reply.ok and reply.decoded_ms >= 0.8 * len(speech) / 32
        assert toy.protocol_errors == []

    async def misbehave() -> None:
        for _ in range(150):
            await garbage.send_text("garbage")
        await flood.wait_state("LISTENING", 5)
        for _ in range(200):
            await flood.send_binary(b"\x00" * 8192)
        await dropper.close()

    await asyncio.gather(misbehave(), *(converse(toy) for toy in good))
    assert garbage.close_code == 1008 and flood.close_code == 1008
    for toy in [*good, garbage, flood]:
        await toy.close()


async def test_100_sequential_sessions_leave_nothing_behind(server: ServerThread) -> None:
    for _ in range(100):
        toy = await open_toy(server, token=None)
        await toy.wait_responses(1, 5)
        await toy.close()
    leaks = await asyncio.to_thread(server.wait_clean, 2.0)
    assert leaks == {"tasks": [], "connections": 0, "sessions": 0}


async def test_logs_never_contain_the_token(
    secured: ServerThread, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secret_token = token("user-logs")
    toy = await open_toy(secured, token=secret_token, idle_mic=True)
    await toy.wait_responses(1, 5)
    await toy.close()
    assert await refused_status(secured, token=secret_token + "x") == 401
    server_lines = [
        r.getMessage() for r in caplog.records if not r.name.startswith("websockets.client")
    ]
    assert any("authorization: Bearer [redacted]" in line for line in server_lines)
    assert not any(secret_token in line or SECRET in line for line in server_lines)
