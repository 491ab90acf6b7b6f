"""The emulated ESP32 toy (``transports.esp32.emulator.client``) against a tiny scripted server.

Each test starts a loopback WebSocket server that plays our server's role by script (auth,
brackets, Opus at 24 kHz / 120 ms / VOIP, COMMITTED, SESSION.END), so the emulator is proven
on its own before the real server uses it as its conformance client.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import opuslib
import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from tests.transports.esp32.messages import (
    COMMITTED,
    COMPLETE,
    CREATED,
    ERROR,
    SESSION_END,
    server_msg,
)
from transports.esp32.emulator.client import (
    MIC_BYTES_PER_MS,
    FakeToy,
    ToyState,
    auth_problems,
)

OPUS_RATE_HZ = 24000
OPUS_BITRATE = 24000
FRAME_MS = 120
FRAME_SAMPLES = OPUS_RATE_HZ * FRAME_MS // 1000
DECODED_FRAME_BYTES = 48000 * FRAME_MS // 1000 * 2
TONE_HZ = 440
TONE_AMPLITUDE = 8000
TOKEN = "test-token"
AUTH: dict[str, Any] = {
    "type": "auth",
    "volume_control": 70,
    "pitch_factor": 1.0,
    "is_ota": False,
    "is_reset": False,
}
#: most tests do not care about the 1000 ms listen hold; a short one keeps the file fast
FAST_HOLD_MS = 100
RING_S = 10240 / 2 / 48000
#: scheduling slack on a loaded 2-core CI machine
SLACK_S = 0.15
MIC_CHUNK_BYTES = 1024
#: Opus at this rate makes ~1.9 kB packets, so 5 s of audio outsizes every buffer on the way
HIGH_BITRATE = 128000
SMALL_SERVER_BUFFER_BYTES = 4096


def opus_packets(count: int, *, bitrate: int = OPUS_BITRATE, noise: bool = False) -> list[bytes]:
    """``count`` 120 ms packets of a tone (or noise), encoded like our server (fresh encoder)."""
    encoder = opuslib.Encoder(OPUS_RATE_HZ, 1, opuslib.APPLICATION_VOIP)
    encoder.bitrate = bitrate
    t = np.arange(count * FRAME_SAMPLES)
    if noise:
        signal = np.random.default_rng(0).standard_normal(t.size) * TONE_AMPLITUDE / 2
    else:
        signal = np.sin(2 * np.pi * TONE_HZ * t / OPUS_RATE_HZ) * TONE_AMPLITUDE
    frames = signal.clip(-32768, 32767).astype("<i2").reshape(count, FRAME_SAMPLES)
    return [encoder.encode(frame.tobytes(), FRAME_SAMPLES) for frame in frames]


@dataclass
class Seen:
    """What the scripted server saw of the (single) connection."""

    headers: Headers = field(default_factory=Headers)
    path: str = ""
    upstream: bytearray = field(default_factory=bytearray)
    upstream_sizes: list[int] = field(default_factory=list)
    texts: list[Any] = field(default_factory=list)
    #: when the script finished sending its downstream, seconds after its first send
    sent_all_s: float | None = None
    close_code: int | None = None
    failures: list[BaseException] = field(default_factory=list)


Script = Callable[[ServerConnection, Seen], Awaitable[None]]


@asynccontextmanager
async def scripted_server(
    script: Script, *, echo_subprotocol: bool = False
) -> AsyncIterator[tuple[str, Seen]]:
    """Serve one scripted connection on 127.0.0.1; a script failure fails the test."""
    seen = Seen()

    async def handler(ws: ServerConnection) -> None:
        seen.headers = ws.request.headers if ws.request else Headers()
        seen.path = ws.request.path if ws.request else ""
        try:
            await script(ws, seen)
        except ConnectionClosed:
            pass
        except Exception as exc:
            seen.failures.append(exc)
            raise
        finally:
            seen.close_code = ws.close_code

    subprotocols = [Subprotocol("arduino")] if echo_subprotocol else None
    async with serve(
        handler, "127.0.0.1", 0, compression=None, max_size=None, subprotocols=subprotocols
    ) as server:
        port = server.sockets[0].getsockname()[1]
        yield f"ws://127.0.0.1:{port}/ws/esp32", seen
    assert not seen.failures, seen.failures


async def collect(ws: ServerConnection, seen: Seen) -> None:
    """Record upstream until the toy closes."""
    async for message in ws:
        record(message, seen)


def record(message: str | bytes, seen: Seen) -> None:
    if isinstance(message, bytes):
        seen.upstream.extend(message)
        seen.upstream_sizes.append(len(message))
    else:
        seen.texts.append(json.loads(message))


def sends(*messages: str | bytes) -> Script:
    """A script that sends ``messages`` at once, then records upstream."""

    async def script(ws: ServerConnection, seen: Seen) -> None:
        for message in messages:
            await ws.send(message)
        await collect(ws, seen)

    return script


async def eventually(ready: Callable[[], bool], timeout_s: float = 3.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not ready():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


def speech(n_bytes: int) -> bytes:
    """Recognisable non-silent bytes of any (odd) length."""
    pattern = bytes(range(1, 256))
    return (pattern * (n_bytes // len(pattern) + 1))[:n_bytes]


# -- handshake and auth ------------------------------------------------------------------------


@pytest.mark.parametrize("echo_subprotocol", [False, True])
async def test_handshake_headers_and_auth(echo_subprotocol: bool) -> None:
    script = sends(json.dumps(AUTH), COMPLETE)
    async with (
        scripted_server(script, echo_subprotocol=echo_subprotocol) as (url, seen),
        FakeToy(url, token=TOKEN, hold_ms=FAST_HOLD_MS) as toy,
    ):
        assert toy.state == ToyState.PROCESSING
        await toy.wait_state(ToyState.LISTENING, 2)

    assert seen.path == "/ws/esp32"
    assert seen.headers["Authorization"] == f"Bearer {TOKEN}"
    assert seen.headers["X-Device-Mac"] == "24:0A:C4:12:34:56"
    assert seen.headers["X-Wifi-Rssi"] == "-55"
    assert seen.headers["Sec-WebSocket-Protocol"] == "arduino"
    assert seen.headers["Origin"] == "file://"
    assert seen.headers["User-Agent"] == "arduino-WebSocket-Client"
    assert "Sec-WebSocket-Extensions" not in seen.headers
    assert toy.subprotocol == ("arduino" if echo_subprotocol else None)
    assert toy.auth == AUTH
    assert (toy.volume_control, toy.pitch_factor) == (70, 1.0)
    assert toy.protocol_errors == []
    (bare,) = toy.responses
    assert bare.ok is True and not bare.bracketed and bare.packets == []
    assert [state for _, state in toy.state_history] == ["PROCESSING", "LISTENING", "IDLE"]
    assert toy.close_code == 1000


async def test_headers_without_token_mac_or_rssi() -> None:
    async with scripted_server(sends(json.dumps(AUTH))) as (url, seen):
        extra = {"X-Test": "1"}
        async with FakeToy(url, mac=None, rssi=None, extra_headers=extra, subprotocol=None):
            pass
    for absent in ("Authorization", "X-Device-Mac", "X-Wifi-Rssi", "Sec-WebSocket-Protocol"):
        assert absent not in seen.headers
    assert seen.headers["X-Test"] == "1"


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({}, []),
        ({"pitch_factor": 1}, []),
        ({"pitch_factor": None}, ["pitch_factor has the wrong JSON type"]),
        ({"volume_control": "70"}, ["volume_control has the wrong JSON type"]),
        ({"volume_control": True}, ["volume_control has the wrong JSON type"]),
        ({"volume_control": 70.5}, ["volume_control has the wrong JSON type"]),
        ({"is_ota": 0}, ["is_ota has the wrong JSON type"]),
        ({"is_reset": True}, ["is_reset is true"]),
        ({"volume_control": 150}, ["volume_control out of range"]),
        ({"pitch_factor": 3.0}, ["pitch_factor out of range"]),
    ],
)
def test_auth_field_types(changes: dict[str, Any], expected: list[str]) -> None:
    problems = auth_problems({**AUTH, **changes})
    assert len(problems) == len(expected), problems
    for problem, prefix in zip(problems, expected, strict=True):
        assert problem.startswith(prefix)


@pytest.mark.parametrize(
    ("messages", "expected"),
    [
        ([{**AUTH, "pitch_factor": None}], ["auth: pitch_factor has the wrong"]),
        ([{k: v for k, v in AUTH.items() if k != "pitch_factor"}], ["auth: missing pitch_f"]),
        ([AUTH, AUTH], ["second auth"]),
        ([{"type": "server", "msg": "RESPONSE.ERROR"}, AUTH], ["first message is not auth"]),
    ],
)
async def test_auth_checked_on_the_wire(
    messages: list[dict[str, Any]], expected: list[str]
) -> None:
    script = sends(*(json.dumps(m) for m in messages))
    async with scripted_server(script) as (url, _), FakeToy(url, hold_ms=FAST_HOLD_MS) as toy:
        await eventually(lambda: len(toy.messages) == len(messages))
    for prefix in expected:
        assert any(e.startswith(prefix) for e in toy.protocol_errors), toy.protocol_errors
    assert len(toy.protocol_errors) >= len(expected)


# -- downstream --------------------------------------------------------------------------------


async def test_greeting_decoded_and_hold_timing() -> None:
    packets = opus_packets(10)
    script = sends(json.dumps(AUTH), CREATED, *packets, COMPLETE)
    async with scripted_server(script) as (url, _), FakeToy(url) as toy:
        (greeting,) = await toy.wait_responses(1, timeout_s=5)
        await toy.wait_state(ToyState.LISTENING, 3)
        played_ms = toy.played_ms()

    assert toy.protocol_errors == [] and toy.dropped_binary == 0
    assert greeting.ok is True and greeting.bracketed and not greeting.dropped
    assert greeting.packets == packets
    assert len(greeting.pcm_48k) == len(packets) * DECODED_FRAME_BYTES
    assert greeting.decoded_ms == pytest.approx(len(packets) * FRAME_MS)
    assert played_ms == pytest.approx(len(packets) * FRAME_MS)
    assert np.abs(np.frombuffer(greeting.pcm_48k, "<i2")).mean() > TONE_AMPLITUDE / 4

    states = dict((state, at) for at, state in toy.state_history)
    assert greeting.ended_at is not None
    assert states["SPEAKING"] - greeting.created_at >= 0.05
    hold_s = states["LISTENING"] - greeting.ended_at
    assert 1.0 <= hold_s <= 1.0 + SLACK_S
    # paced by the ring: the last packet is read about when all but the ring has played
    assert greeting.ended_at - greeting.created_at >= (len(packets) - 1) * 0.12 - RING_S


async def test_binary_outside_a_bracket_is_dropped() -> None:
    early, inside = opus_packets(2)
    script = sends(json.dumps(AUTH), early, CREATED, inside, COMPLETE, early)
    async with scripted_server(script) as (url, _), FakeToy(url, hold_ms=FAST_HOLD_MS) as toy:
        await eventually(lambda: len(toy.messages) == 6)
    assert toy.dropped_binary == 2
    outside = [e for e in toy.protocol_errors if e.startswith("binary outside")]
    assert len(outside) == 2 and len(toy.protocol_errors) == 2
    (response,) = toy.responses
    assert response.packets == [inside]
    assert response.decoded_ms == pytest.approx(FRAME_MS)


async def test_bad_packets_are_recorded() -> None:
    (good,) = opus_packets(1)
    corrupt = b"\xff\xff\xff"
    oversize = bytes(15 * 1024)

    async def script(ws: ServerConnection, seen: Seen) -> None:
        for message in (json.dumps(AUTH), CREATED, corrupt, oversize, b""):
            await ws.send(message)
        await ws.send([good[:10], good[10:]])  # fragmented: the device's library drops these
        await ws.send(good)
        await ws.send(COMPLETE)
        await collect(ws, seen)

    async with scripted_server(script) as (url, _), FakeToy(url, hold_ms=FAST_HOLD_MS) as toy:
        (response,) = await toy.wait_responses(1)
    errors = toy.protocol_errors
    assert any("does not decode" in e for e in errors), errors
    assert any("15360 bytes" in e for e in errors), errors
    assert any("empty binary" in e for e in errors), errors
    assert any("fragmented" in e for e in errors), errors
    assert toy.dropped_binary == 2  # oversize and empty; the corrupt one failed to decode
    assert response.decoded_ms == pytest.approx(2 * FRAME_MS)


async def test_created_inside_hold_drops_the_whole_response() -> None:
    packets = opus_packets(2)

    async def script(ws: ServerConnection, seen: Seen) -> None:
        await ws.send(json.dumps(AUTH))
        await ws.send(COMPLETE)
        await asyncio.sleep(0.05)
        bracket: list[str | bytes] = [CREATED, *packets, COMPLETE]
        for message in bracket:
            await ws.send(message)
        await collect(ws, seen)

    async with scripted_server(script) as (url, _), FakeToy(url, hold_ms=300) as toy:
        _, dropped = await toy.wait_responses(2)
        await toy.wait_state(ToyState.LISTENING, 2)
    assert dropped.dropped and dropped.packets == packets and not dropped.pcm_48k
    assert toy.dropped_binary == len(packets)
    assert toy.protocol_errors == ["CREATED inside hold (the device drops this response)"]


async def test_non_json_and_unknown_text() -> None:
    script = sends(
        json.dumps(AUTH),
        "hello",
        json.dumps({"type": "foo"}),
        "[]",
        server_msg("SESSION.CREATED"),
        ERROR,
    )
    async with scripted_server(script) as (url, _), FakeToy(url, hold_ms=FAST_HOLD_MS) as toy:
        await toy.wait_responses(1)
        await toy.wait_state(ToyState.LISTENING, 2)
    errors = toy.protocol_errors
    assert errors[0].startswith("non-JSON text"), errors
    assert any(e.startswith("unknown message type") for e in errors)
    assert any(e.startswith("text is not a JSON object") for e in errors)
    assert any(e.startswith("unknown server msg") for e in errors)
    assert len(errors) == 4
    assert ("text", "hello") in [(kind, value) for _, kind, value in toy.messages]
    states = [state for _, state in toy.state_history]
    assert states[:3] == ["PROCESSING", "IDLE", "LISTENING"]
    assert toy.responses[0].ok is False


async def send_with_small_buffers(ws: ServerConnection, seen: Seen, packets: list[bytes]) -> None:
    """Send a response as fast as possible through small server-side buffers, so that the
    toy's TCP window, not the server's kernel, decides when the sends complete."""
    sock = ws.transport.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SMALL_SERVER_BUFFER_BYTES)
    ws.transport.set_write_buffer_limits(high=SMALL_SERVER_BUFFER_BYTES)
    started = time.monotonic()
    downstream: list[str | bytes] = [json.dumps(AUTH), CREATED, *packets, COMPLETE]
    for message in downstream:
        await ws.send(message)
    seen.sent_all_s = time.monotonic() - started
    await collect(ws, seen)


@pytest.mark.parametrize("realtime_playback", [True, False])
async def test_back_pressure_paces_reading(realtime_playback: bool) -> None:
    """5 s of audio sent as fast as possible is read no faster than it plays, and the
    toy's small TCP window holds the sender back (high bitrate, to outsize the buffers)."""
    packets = opus_packets(42, bitrate=HIGH_BITRATE, noise=True)

    async def script(ws: ServerConnection, seen: Seen) -> None:
        await send_with_small_buffers(ws, seen, packets)

    # the hold must outlast the ring, or the flush at LISTENING cuts its tail (as on a device)
    hold_ms = 300
    async with (
        scripted_server(script) as (url, seen),
        FakeToy(url, hold_ms=hold_ms, realtime_playback=realtime_playback) as toy,
    ):
        (response,) = await toy.wait_responses(1, timeout_s=10)
        await toy.wait_state(ToyState.LISTENING, 2)
        played_ms = toy.played_ms()

    assert toy.protocol_errors == []
    assert response.decoded_ms == pytest.approx(len(packets) * FRAME_MS)
    assert played_ms == pytest.approx(len(packets) * FRAME_MS, abs=1)
    times = [t - response.packet_times[0] for t in response.packet_times]
    assert seen.sent_all_s is not None
    if not realtime_playback:
        assert times[-1] < 1.0 and seen.sent_all_s < 1.0
        return
    for n, at in enumerate(times):
        assert at >= n * FRAME_MS / 1000 - RING_S - 0.05, (n, at)
    assert times[-1] >= 5.0 - RING_S - 0.3
    assert times[-1] <= 5.0 + 1.0
    # ~80 kB against ~25 kB of buffers: the sender is held back for seconds
    assert seen.sent_all_s >= 2.5


# -- upstream ----------------------------------------------------------------------------------


async def commit_on_end_of_speech(ws: ServerConnection, seen: Seen) -> None:
    """Greeting-less start; an ``end_of_speech`` instruction gets AUDIO.COMMITTED."""
    await ws.send(json.dumps(AUTH))
    await ws.send(COMPLETE)
    async for message in ws:
        record(message, seen)
        if seen.texts and seen.texts[-1].get("msg") == "end_of_speech":
            await ws.send(COMMITTED)


@pytest.mark.parametrize("chunk_bytes", [1, 63, 1023, 3000])
async def test_speak_delivers_exact_bytes(chunk_bytes: int) -> None:
    pcm = speech(6401)  # odd on purpose
    trailing_ms = 100
    expected = pcm + bytes(trailing_ms * MIC_BYTES_PER_MS)
    async with (
        scripted_server(commit_on_end_of_speech) as (url, seen),
        FakeToy(url, hold_ms=FAST_HOLD_MS, mic_chunk_bytes=chunk_bytes) as toy,
    ):
        sent = await toy.speak(pcm, realtime=False, trailing_silence_ms=trailing_ms)
        await toy.send_instruction("end_of_speech")
        await toy.wait_state(ToyState.PROCESSING, 2)
    assert sent == len(expected) == toy.mic_bytes_sent
    assert bytes(seen.upstream) == expected
    assert set(seen.upstream_sizes[:-1]) == {chunk_bytes}
    assert 0 < seen.upstream_sizes[-1] <= chunk_bytes
    assert toy.protocol_errors == []


async def test_speak_realtime_follows_an_absolute_schedule() -> None:
    pcm = speech(16000 - 1)  # ~0.5 s
    trailing_ms = 250
    total = len(pcm) + trailing_ms * MIC_BYTES_PER_MS
    async with (
        scripted_server(commit_on_end_of_speech) as (url, seen),
        FakeToy(url, hold_ms=FAST_HOLD_MS, mic_chunk_bytes=1023) as toy,
    ):
        await toy.wait_state(ToyState.LISTENING, 2)
        started = time.monotonic()
        sent = await toy.speak(pcm, trailing_silence_ms=trailing_ms)
        elapsed = time.monotonic() - started
        await eventually(lambda: len(seen.upstream) == total)
    expected_s = (total - 1023) / MIC_BYTES_PER_MS / 1000  # the first chunk goes at once
    assert sent == total
    assert expected_s - 0.02 <= elapsed <= expected_s + SLACK_S


@pytest.mark.parametrize("stop_message", [COMMITTED, CREATED], ids=["COMMITTED", "CREATED"])
async def test_speak_stops_when_the_device_leaves_listening(stop_message: str) -> None:
    stop_after_bytes = 16000
    stopped_at: list[int] = []

    async def script(ws: ServerConnection, seen: Seen) -> None:
        await ws.send(json.dumps(AUTH))
        await ws.send(COMPLETE)
        async for message in ws:
            record(message, seen)
            if not stopped_at and len(seen.upstream) >= stop_after_bytes:
                stopped_at.append(len(seen.upstream))
                await ws.send(stop_message)

    pcm = speech(2 * 32000)
    async with (
        scripted_server(script) as (url, seen),
        FakeToy(url, hold_ms=FAST_HOLD_MS) as toy,
    ):
        started = time.monotonic()
        sent = await toy.speak(pcm, trailing_silence_ms=0)
        elapsed = time.monotonic() - started
        await eventually(lambda: len(seen.upstream) == sent)
        await asyncio.sleep(0.1)
        state = toy.state
    assert state == (ToyState.PROCESSING if stop_message == COMMITTED else ToyState.SPEAKING)
    assert elapsed < 1.0
    assert len(seen.upstream) == sent < len(pcm)
    assert bytes(seen.upstream) == pcm[:sent]
    # in flight after the message: one chunk for COMMITTED, ~50 ms more for CREATED
    assert sent - stopped_at[0] <= 4 * MIC_CHUNK_BYTES


async def test_idle_mic_and_speak_share_one_stream() -> None:
    pcm = speech(6400)
    async with (
        scripted_server(sends(json.dumps(AUTH), COMPLETE)) as (url, seen),
        FakeToy(url, hold_ms=FAST_HOLD_MS, idle_mic=True) as toy,
    ):
        await toy.wait_state(ToyState.LISTENING, 2)
        await asyncio.sleep(0.5)
        idle_bytes = len(seen.upstream)
        await toy.speak(pcm, trailing_silence_ms=0)
        await asyncio.sleep(0.1)
        toy.set_idle_mic(False)
        await asyncio.sleep(0.05)
        stopped_at = len(seen.upstream)
        await asyncio.sleep(0.1)
        assert len(seen.upstream) == stopped_at
        toy.set_idle_mic(True)
        await eventually(lambda: len(seen.upstream) > stopped_at)
    assert 0.5 * 16000 <= idle_bytes <= 1.3 * 16000
    offset = bytes(seen.upstream).find(pcm)
    assert offset > 0 and offset % MIC_CHUNK_BYTES == 0
    assert not any(seen.upstream[:offset])
    assert [t for t in asyncio.all_tasks() if t.get_name().startswith("fake-toy")] == []


async def test_interrupt_reports_played_ms() -> None:
    packets = opus_packets(20)

    async def script(ws: ServerConnection, seen: Seen) -> None:
        opening: list[str | bytes] = [json.dumps(AUTH), CREATED, *packets]
        for message in opening:
            await ws.send(message)
        async for message in ws:
            record(message, seen)
            if isinstance(message, str):
                await ws.send(COMPLETE)

    async with scripted_server(script) as (url, seen), FakeToy(url) as toy:
        await toy.wait_state(ToyState.SPEAKING, 2)
        await asyncio.sleep(0.6)
        await toy.send_instruction("INTERRUPT", audio_end_ms=round(toy.played_ms()))
        await toy.wait_responses(1, timeout_s=5)
    (interrupt,) = seen.texts
    assert interrupt["type"] == "instruction" and interrupt["msg"] == "INTERRUPT"
    assert 600 - 50 <= interrupt["audio_end_ms"] <= 600 + SLACK_S * 1000


# -- ending -----------------------------------------------------------------------------------


async def test_session_end_sleeps_and_closes() -> None:
    async def script(ws: ServerConnection, seen: Seen) -> None:
        for message in (json.dumps(AUTH), COMPLETE, SESSION_END, COMPLETE):
            await ws.send(message)
        await ws.wait_closed()

    async with scripted_server(script) as (url, seen):
        toy = FakeToy(url, hold_ms=FAST_HOLD_MS)
        await toy.connect()
        assert await toy.wait_closed(3) == 1000
        assert toy.session_ended and toy.state == ToyState.SLEEP
        await toy.close()
    assert seen.close_code == 1000
    assert toy.protocol_errors == [f"message after SESSION.END: {COMPLETE}"]
    assert [t for t in asyncio.all_tasks() if t.get_name().startswith("fake-toy")] == []


async def test_waiters_fail_fast_when_the_connection_closes() -> None:
    async def script(ws: ServerConnection, seen: Seen) -> None:
        await ws.send(json.dumps(AUTH))
        await ws.close(1011)

    async with scripted_server(script) as (url, _), FakeToy(url) as toy:
        with pytest.raises(ConnectionError):
            await toy.wait_responses(1, timeout_s=5)
        assert toy.close_code == 1011
        assert toy.state == ToyState.IDLE
