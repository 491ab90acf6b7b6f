"""xiaozhi-esp32 devices end to end: the real server, the emulated device, real libopus."""

from __future__ import annotations

import asyncio
import json

import httpx
import numpy as np
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from pipeline.agents.echo import EchoAgent
from tests.fakes.agents import Factory, ToneAgent
from tests.support.serverthread import MakeServer, ServerThread
from tests.support.toys import SECRET, hello_16k, token
from tests.support.xiaozhi import open_device, xiaozhi_url
from transports.xiaozhi.emulator.client import FakeXiaozhi


def echo_factory() -> Factory:
    return Factory(lambda call: EchoAgent(call.native_in))


def tones(**kwargs: int) -> Factory:
    return Factory(lambda call: ToneAgent(call, **kwargs))


def _rms(pcm: np.ndarray) -> float:
    return float(np.sqrt(np.mean(pcm.astype(np.float64) ** 2))) if pcm.size else 0.0


@pytest.mark.parametrize(("version", "frame_ms"), [(1, 60), (2, 20), (3, 40), (1, None)])
async def test_echo_turn_the_device_hears_what_it_said(
    make_server: MakeServer, version: int, frame_ms: int | None
) -> None:
    server = make_server(echo_factory())
    device = await open_device(server, version=version, frame_ms=frame_ms)
    hello = device.model.server_hello
    assert hello is not None and hello["transport"] == "websocket" and hello["session_id"]
    assert hello["audio_params"] == {
        "format": "opus",
        "sample_rate": 24000,
        "channels": 1,
        "frame_duration": 60,
    }
    speech = hello_16k()
    await device.speak(speech)
    await device.wait_replies(1, 20)
    heard_ms = device.played_ms()
    said_ms = len(speech) / 32
    # the endpointer's utterance loses a little of the recording's leading/trailing quiet
    assert said_ms - 500 <= heard_ms <= said_ms + 120
    assert _rms(device.played_pcm()) > 0.3 * _rms(np.frombuffer(speech, dtype=np.int16))
    assert device.model.stale_packets == 0
    await device.close()


async def test_abort_mid_reply_stops_it_with_no_stale_audio(make_server: MakeServer) -> None:
    server = make_server(tones(reply_ms=8000))
    device = await open_device(server)
    await device.speak(hello_16k())
    await device.wait(lambda: device.model.speaking and device.played_ms() > 500)
    await device.send_text(device.model.abort())
    await device.wait_replies(1, 5)
    heard_ms = device.played_ms()
    assert heard_ms < 4000
    await device.listen()
    await asyncio.sleep(1.0)
    assert device.model.stale_packets <= 2  # frames already in flight when abort left
    assert len(device.model.replies) == 1
    await device.close()


async def test_manual_mode_listen_stop_ends_the_turn(make_server: MakeServer) -> None:
    server = make_server(echo_factory())
    device = await open_device(server, listen="manual")
    await device.speak(hello_16k(), silence_ms=0)
    await device.send_text(device.model.listen_stop())
    await device.wait_replies(1, 10)
    assert device.played_ms() > 500
    await device.close()


async def test_greeting_arrives_as_a_tts_bracket(make_server: MakeServer) -> None:
    server = make_server(tones(greeting_ms=600))
    device = await open_device(server, listen=None)
    await device.wait_replies(1, 10)
    assert device.played_ms() == pytest.approx(600, abs=80)
    await device.close()


async def test_audio_before_hello_closes_1008(server: ServerThread) -> None:
    device = await FakeXiaozhi(xiaozhi_url(server)).connect(hello=False)
    await device.ws.send(b"\x01\x02\x03")
    assert await device.wait_closed() == 1008
    await device.close()


@pytest.mark.parametrize(
    ("version", "frame", "code"),
    [(2, b"\x00\x02\x00\x00", 1007), (3, b"\x00\x00\x00\x09abc", 1007), (1, b"x" * 9000, 1009)],
)
async def test_bad_frames_close_with_clear_codes(
    server: ServerThread, version: int, frame: bytes, code: int
) -> None:
    device = await FakeXiaozhi(xiaozhi_url(server), version=version).connect()
    await device.listen()
    await device.ws.send(frame)
    assert await device.wait_closed() == code
    await device.close()


async def test_garbage_text_is_ignored_until_too_much(server: ServerThread) -> None:
    device = await open_device(server)
    for _ in range(10):
        await device.send_text("{not json")
    await device.send_text(json.dumps({"type": "no-such-type"}))
    await device.speak(b"", silence_ms=120)
    assert device.close_code is None
    for _ in range(50):
        await device.send_text("[]")
    assert await device.wait_closed() == 1008
    await device.close()


async def test_bad_protocol_version_is_refused_before_101(server: ServerThread) -> None:
    headers = {"Protocol-Version": "9", "Device-Id": "24:0a:c4:00:00:09"}
    with pytest.raises(InvalidStatus) as refused:
        async with connect(xiaozhi_url(server), additional_headers=headers):
            pass
    assert refused.value.response.status_code == 400


async def test_credentials_are_the_toys(make_server: MakeServer) -> None:
    server = make_server(echo_factory(), BRIDGE_ESP32_JWT_SECRET=SECRET)
    with pytest.raises(InvalidStatus) as refused:
        await FakeXiaozhi(xiaozhi_url(server)).connect()
    assert refused.value.response.status_code == 401
    device = await FakeXiaozhi(xiaozhi_url(server), token()).connect()
    assert device.model.session_id
    await device.close()
    # a browser cannot set headers: the query string carries them
    url = f"{xiaozhi_url(server)}?device-id=24:0a:c4:00:00:02&client-id=c&authorization={token()}"
    async with connect(url) as ws:
        await ws.send(json.dumps({"type": "hello"}))
        assert json.loads(await ws.recv())["type"] == "hello"


def _ota(server: ServerThread, mac: str, version: str = "1.6.0") -> httpx.Response:
    board = {"application": {"version": version}, "board": {"type": "bread-compact-wifi"}}
    headers = {"Device-Id": mac, "Client-Id": "c-1"}
    return httpx.post(f"{server.http}/xiaozhi/ota/", json=board, headers=headers, timeout=5)


async def test_ota_in_development_points_at_the_socket(server: ServerThread) -> None:
    answer = _ota(server, "24:0a:c4:00:00:03")
    assert answer.status_code == 200
    body = answer.json()
    assert body["websocket"]["url"].endswith("/xiaozhi/v1/")
    assert body["websocket"]["token"] == ""
    assert body["firmware"] == {"version": "1.6.0", "url": ""}
    assert "timestamp" in body["server_time"]
    assert _ota(server, "not-a-mac").status_code == 400
