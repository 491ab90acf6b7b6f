"""The fake ElevenLabs, driven by the ``websockets`` client exactly as ElevenLabs' documents
describe a client (AsyncAPI ``fern/apis/api/asyncapi.yml``, guides "Generate audio in
real-time" and "Multi-Context Websocket"): no bridge code is involved."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from bench.server import free_port
from pipeline.g711 import ulaw_to_pcm16
from tests.fakes.elevenlabs import (
    API_KEY,
    OUTPUT_FORMATS,
    TONE_AMPLITUDE,
    TONE_HZ,
    TTS_MS_PER_CHAR,
    FakeElevenLabs,
    Fault,
    chars_heard,
)

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

KEY = {"xi-api-key": API_KEY}
MULTI = "multi-stream-input"
VOICE = {"stability": 0.5, "similarity_boost": 0.8, "use_speaker_boost": False}
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def fake() -> Iterator[FakeElevenLabs]:
    with FakeElevenLabs(pace=50, inactivity_timeout_s=0.3) as server:
        yield server


async def say(ws: ClientConnection, *messages: dict[str, Any], **message: Any) -> None:
    """Send ``messages`` in order, or the one ``message`` given as keywords."""
    for each in messages or (message,):
        await ws.send(json.dumps(each))


async def read(ws: ClientConnection, until: str = "close", timeout_s: float = 5.0) -> list[Any]:
    """Server messages until the socket closes (``until="close"``) or an ``isFinal`` for
    context ``until`` arrives; a close is returned as the last item, ``("close", code, reason)``."""
    out: list[Any] = []
    async with asyncio.timeout(timeout_s):
        with contextlib.suppress(ConnectionClosed):
            async for raw in ws:
                out.append(json.loads(raw))
                if out[-1].get("isFinal") and out[-1].get("contextId") == until:
                    return out
    out.append(("close", ws.close_code, ws.close_reason))
    return out


async def quiet(ws: ClientConnection, for_s: float) -> bool:
    """True when nothing arrives for ``for_s``."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(ws.recv(), for_s)
        return False
    return True


def spoken(messages: list[Any], context_id: str | None = None) -> str:
    return "".join(
        "".join(m["alignment"]["chars"])
        for m in messages
        if isinstance(m, dict) and m.get("audio") and m.get("contextId") == context_id
    )


def stream(
    fake: FakeElevenLabs, endpoint: Any = "stream-input", key: Any = KEY, **query: Any
) -> connect:
    query.setdefault("output_format", "pcm_16000")
    return connect(fake.url("voice1", endpoint, **query), additional_headers=key)


@pytest.mark.parametrize("output_format", sorted(OUTPUT_FORMATS))
async def test_stream_input_speaks_in_the_format_asked_for(
    fake: FakeElevenLabs, output_format: str
) -> None:
    encoding, rate_hz = OUTPUT_FORMATS[output_format]
    text = "Hello there, caller. How can I help? "
    query = {"model_id": "eleven_flash_v2_5", "sync_alignment": True}
    async with stream(fake, output_format=output_format, **query) as ws:
        config = {"chunk_length_schedule": [120, 160, 250, 290]}
        await say(ws, text=" ", voice_settings=VOICE, generation_config=config)
        await say(ws, {"text": "Hello there, caller. "})
        await say(ws, {"text": "How can I help? ", "try_trigger_generation": True}, {"text": ""})
        messages = await read(ws)

    assert messages[-2:] == [{"isFinal": True}, ("close", 1000, "")]
    chunks = messages[:-2]
    assert all(m["isFinal"] is False and m["normalizedAlignment"] == m["alignment"] for m in chunks)
    assert spoken(chunks) == text
    bytes_per_ms = rate_hz / 1000 * (2 if encoding == "pcm16" else 1)
    starts_ms, offset_ms = list[float](), 0.0
    for m in chunks:  # each message's alignment is its own audio, from 0 ms
        n = len(m["alignment"]["chars"])
        assert m["alignment"]["charStartTimesMs"] == [i * TTS_MS_PER_CHAR for i in range(n)]
        assert m["alignment"]["charDurationsMs"] == [TTS_MS_PER_CHAR] * n
        assert len(base64.b64decode(m["audio"])) == round(n * TTS_MS_PER_CHAR * bytes_per_ms)
        starts_ms += [offset_ms + t for t in m["alignment"]["charStartTimesMs"]]
        offset_ms += len(base64.b64decode(m["audio"])) / bytes_per_ms
    for heard_ms in (0, 10, 130, 540, 10_000):  # a heard position tells what was heard
        assert chars_heard(text, heard_ms) == text[: sum(s < heard_ms for s in starts_ms)]
    data = b"".join(base64.b64decode(m["audio"]) for m in chunks)
    if encoding != "pcm16":
        data = ulaw_to_pcm16(data) if encoding == "ulaw" else bytes(audioop.alaw2lin(data, 2))
    pcm = np.frombuffer(data, "<i2").astype(np.float64)
    assert len(pcm) == len(text) * TTS_MS_PER_CHAR * rate_hz // 1000
    expected = TONE_AMPLITUDE * np.sin(2 * np.pi * TONE_HZ * np.arange(len(pcm)) / rate_hz)
    assert np.max(np.abs(pcm - expected)) <= (1.5 if encoding == "pcm16" else 300)
    assert fake.last.text_sent() == text.strip() and fake.last.auth == "header"


async def hear(ws: ClientConnection, text: str, timeout_s: float = 2.0) -> None:
    """Read audio messages until their alignment has spelled out exactly ``text``."""
    heard = ""
    async with asyncio.timeout(timeout_s):
        while len(heard) < len(text):
            heard += "".join(json.loads(await ws.recv())["alignment"]["chars"])
    assert heard == text


async def test_text_waits_for_the_schedule_or_a_flush(fake: FakeElevenLabs) -> None:
    async with stream(fake) as ws:
        await say(ws, text=" ", generation_config={"chunk_length_schedule": [50]})
        await say(ws, text="Short, under fifty. ")
        assert await quiet(ws, 0.1)
        await say(ws, text="Now flushed. ", flush=True)
        await hear(ws, "Short, under fifty. Now flushed. ")
        long = "A sentence long enough to pass the fifty-character schedule. "
        await say(ws, text=long)
        await hear(ws, long)
        await say(ws, text="")
        assert (await read(ws))[-2:] == [{"isFinal": True}, ("close", 1000, "")]


@pytest.mark.parametrize(
    ("endpoint", "keepalive", "before_error"),
    [("stream-input", " ", []), ("multi-stream-input", "", [{"isFinal": True}])],
)
async def test_keepalives_hold_the_socket_and_silence_ends_it(
    fake: FakeElevenLabs, endpoint: Any, keepalive: str, before_error: list[Any]
) -> None:
    async with stream(fake, endpoint) as ws:
        if endpoint == "stream-input":
            await say(ws, text=" ", voice_settings=VOICE)
        for _ in range(6):  # 0.6 s, twice the timeout
            await say(ws, text=keepalive)
            silent_from_s = time.monotonic()
            assert await quiet(ws, 0.1)
        messages = await read(ws)
    assert 0.25 < time.monotonic() - silent_from_s < 1.0
    *before, error, close = messages
    assert before == before_error and error["error"] == "input_timeout_exceeded"
    assert error["message"].startswith("Have not received a new text input within the timeout")
    assert error["code"] == close[1] == 1008 and error["message"].startswith(close[2])
    assert len(fake.last.keepalives()) >= 5


async def test_wrong_output_format_and_model_are_refused(fake: FakeElevenLabs) -> None:
    async with stream(fake, output_format="mp3_44100_128") as ws:  # the API's default
        messages = await read(ws)
    assert messages[0]["error"] == "unsupported_by_fake" and messages[-1][1] == 1008
    with pytest.raises(InvalidStatus) as refused:
        await stream(fake, model_id="eleven_v3")
    assert refused.value.response.status_code == 403


async def test_contexts_interleave_and_close_socket_ends_them_all(fake: FakeElevenLabs) -> None:
    fake.pace, fake.chars_per_message = 8, 4
    one, two = "Context one is speaking now. ", "And context two at once. "
    async with stream(fake, MULTI, output_format="pcm_24000") as ws:
        for cid, text in (("one", one), ("two", two)):
            await say(ws, text=" ", context_id=cid, voice_settings=VOICE)
            await say(ws, text=text, context_id=cid, flush=True)
        await say(ws, {"context_id": "one", "close_context": True})
        await say(ws, {"text": "Never flushed. ", "context_id": "three"}, {"close_socket": True})
        *messages, close = await read(ws)
    assert close == ("close", 1000, "")  # after close_socket let flushed audio finish
    assert spoken(messages, "one") == one and spoken(messages, "two") == two
    assert spoken(messages, "three") == ""
    finals = [m["contextId"] for m in messages if m.get("isFinal")]
    assert sorted(finals) == ["one", "three", "two"]
    last = {(m["contextId"], "isFinal" in m): i for i, m in enumerate(messages)}  # last index
    assert last["one", False] < last["one", True] and last["two", False] < last["two", True]
    first_of_two = next(i for i, m in enumerate(messages) if m["contextId"] == "two")
    assert first_of_two < last["one", False]  # the two contexts' audio interleaves
    assert fake.last.opened_contexts() == ["one", "two", "three"]
    assert fake.last.closed_contexts() == ["one"] and len(fake.last.flushes("one")) == 1
    assert [m.context_id for m in fake.last.finals()] == finals  # as the fake recorded them
    assert "".join(m.chars for m in fake.last.audio_of("two")) == two


async def test_close_context_drops_unflushed_text_and_frees_the_id(fake: FakeElevenLabs) -> None:
    async with stream(fake, MULTI, output_format="pcm_24000") as ws:
        await say(ws, text=" ", context_id="turn")
        await say(ws, text="Never flushed, never spoken. ", context_id="turn")
        await say(ws, context_id="turn", close_context=True)
        assert json.loads(await ws.recv()) == {"isFinal": True, "contextId": "turn"}
        await say(ws, text="A new turn. ", context_id="turn", flush=True)
        await say(ws, context_id="turn", close_context=True)
        assert spoken(await read(ws, until="turn"), "turn") == "A new turn. "


@pytest.mark.parametrize("drains", [True, False])
async def test_close_context_mid_speech(fake: FakeElevenLabs, drains: bool) -> None:
    """The docs: audio already flushed keeps coming ("it will continue flushing"); with
    ``close_drains_flushed=False`` the fake cuts it, as some clients may assume."""
    fake.pace, fake.chars_per_message, fake.close_drains_flushed = 4, 5, drains
    text = "This answer is long enough to be interrupted halfway through. "
    async with stream(fake, MULTI, output_format="pcm_24000") as ws:
        await say(ws, text=text, context_id="answer", voice_settings=VOICE, flush=True)
        first = json.loads(await ws.recv())
        await say(ws, context_id="answer", close_context=True)  # the caller barged in
        messages = [first, *await read(ws, until="answer")]
    assert messages[-1] == {"isFinal": True, "contextId": "answer"}
    heard = spoken(messages, "answer")
    assert heard == text if drains else 0 < len(heard) < len(text) and text.startswith(heard)


async def test_a_keepalive_holds_a_context_a_silent_one_times_out(fake: FakeElevenLabs) -> None:
    async with stream(fake, MULTI, output_format="pcm_24000") as ws:
        await say(ws, text=" ", context_id="kept", voice_settings=VOICE)
        await say(ws, text=" ", context_id="idle", voice_settings=VOICE)
        started_s, finals = time.monotonic(), list[tuple[Any, float]]()
        for _ in range(8):  # 0.8 s: keep-alives every 0.1 s, timeout 0.3 s
            await say(ws, context_id="kept", text="")
            with contextlib.suppress(TimeoutError):
                message = json.loads(await asyncio.wait_for(ws.recv(), 0.1))
                finals.append((message, time.monotonic()))
        assert [m for m, _ in finals] == [{"isFinal": True, "contextId": "idle"}]
        assert 0.25 < finals[0][1] - started_s < 0.7
        await say(ws, text="Still here. ", context_id="kept", flush=True)
        await say(ws, context_id="kept", close_context=True)
        assert spoken(await read(ws, until="kept"), "kept") == "Still here. "
    assert len(fake.last.keepalives("kept")) == 8 and fake.last.keepalives("idle") == []


@pytest.mark.parametrize(
    ("messages", "error", "text"),
    [
        (
            [{"text": " ", "context_id": f"c{n}"} for n in range(6)],
            "max_active_conversations",
            "Maximum simultaneous contexts per WebSocket connection exceeded (5).",
        ),
        (  # a keep-alive opens the context bare: its init may not bring settings any more
            [
                {"context_id": "early", "text": ""},
                {"text": " ", "context_id": "early", "voice_settings": VOICE},
            ],
            "settings_changed",
            "voice_settings field must be provided in the first message",
        ),
    ],
)
async def test_policy_violations_close_with_1008(
    fake: FakeElevenLabs, messages: list[dict[str, Any]], error: str, text: str
) -> None:
    async with stream(fake, MULTI, output_format="pcm_24000") as ws:
        await say(ws, *messages)
        got = await read(ws)
    assert got[0]["error"] == error and got[0]["message"].startswith(text)
    assert got[-1][:2] == ("close", 1008)


@pytest.mark.parametrize(
    ("headers", "first", "accepted"),
    [
        (KEY, {}, True),
        ({}, {"xi-api-key": API_KEY}, True),
        ({}, {"authorization": "single-use-token"}, True),
        ({"xi-api-key": "wrong"}, {}, False),
        ({}, {"xi-api-key": "wrong"}, False),
        ({}, {}, False),
    ],
)
async def test_api_key(
    fake: FakeElevenLabs, headers: dict[str, str], first: dict[str, str], accepted: bool
) -> None:
    fake.auth_tokens.add("single-use-token")
    async with stream(fake, key=headers) as ws:
        with contextlib.suppress(ConnectionClosed):  # a wrong header key fails the socket at once
            await say(ws, {"text": " ", **first}, {"text": "Hi. ", "flush": True}, {"text": ""})
        messages = await read(ws)
    if accepted:
        assert messages[-2:] == [{"isFinal": True}, ("close", 1000, "")]
    else:
        assert messages[0]["error"] == "invalid_api_key" and messages[-1][:2] == ("close", 1008)
    recorded = json.dumps([fake.last.headers, [m.data for m in fake.last.received]])
    assert all(secret not in recorded for secret in ("wrong", API_KEY, "single-use-token"))


@pytest.mark.parametrize("status", [401, 429, 500, 503])
async def test_handshake_refused_once(fake: FakeElevenLabs, status: int) -> None:
    fake.fail("any", Fault.http(status, retry_after="2" if status == 429 else None))
    with pytest.raises(InvalidStatus) as refused:
        await stream(fake)
    response = refused.value.response
    assert response.status_code == status
    assert set(json.loads(response.body)["detail"]) == {"status", "message"}
    assert response.headers.get("retry-after") == ("2" if status == 429 else None)
    async with stream(fake):
        pass
    assert [c.status for c in fake.connections] == [status, 101]


QUOTA = {"message": "Quota exceeded.", "error": "quota_exceeded", "code": 1008}
ERROR = Fault.error_event(2, "quota_exceeded", "Quota exceeded.")


@pytest.mark.parametrize(
    ("fault", "ending"),
    [
        (Fault.drop(after_messages=2), [("close", 1006, "")]),  # no close frame: a cut
        (ERROR, [QUOTA, ("close", 1008, "Quota exceeded.")]),
    ],
)
async def test_fault_after_messages(fake: FakeElevenLabs, fault: Fault, ending: list[Any]) -> None:
    fake.chars_per_message = 4
    fake.fail("any", fault)
    async with stream(fake, output_format="ulaw_8000") as ws:
        await say(ws, text="Long enough for several messages. ", flush=True)
        messages = await read(ws)
        assert (ws.protocol.close_rcvd is None) == (fault.kind == "drop")
    assert all("audio" in m for m in messages[:2]) and messages[2:] == ending
    closed_by = "drop" if fault.kind == "drop" else "server"
    await fake.wait_for(lambda: fake.last.closed_by == closed_by, what=f"closed by {closed_by}")


async def test_stall_keeps_the_socket_open_and_silent(fake: FakeElevenLabs) -> None:
    fake.chars_per_message = 4
    fake.fail("multi-stream-input", Fault.stall(after_messages=1))
    async with stream(fake, MULTI, output_format="pcm_24000") as ws:
        await say(ws, text="Long enough for several messages. ", context_id="a", flush=True)
        assert json.loads(await ws.recv())["contextId"] == "a"
        assert await quiet(ws, 0.6)  # twice the inactivity timeout: no timeout either
        await say(ws, context_id="a", close_context=True)
    await fake.wait_for(lambda: fake.last.closed_by == "client", what="the client's close")
    assert fake.last.closed_contexts() == ["a"] and len(fake.last.sent) == 1


async def test_delay_before_the_first_audio_of_each_generation(fake: FakeElevenLabs) -> None:
    fake.first_audio_delay_s, fake.pace = 0.15, float("inf")
    async with stream(fake, MULTI, output_format="pcm_24000") as ws:
        for turn in ("one", "two"):
            asked_s = time.monotonic()
            await say(ws, text="Hello. ", context_id=turn, flush=True)
            await ws.recv()
            assert time.monotonic() - asked_s >= 0.15
            await say(ws, context_id=turn, close_context=True)
            await read(ws, until=turn)


async def test_command_line_serves_until_killed() -> None:
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        *[sys.executable, "-m", "tests.fakes.elevenlabs_server", "--port", str(port)],
        cwd=ROOT,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        query = "output_format=ulaw_8000&auto_mode=true"  # auto_mode: every text is spoken at once
        url = f"ws://127.0.0.1:{port}/v1/text-to-speech/v/stream-input?{query}"
        for _ in range(400):  # up to 20 s for the process to import and listen
            with contextlib.suppress(OSError):
                ws = await connect(url, additional_headers=KEY)
                break
            await asyncio.sleep(0.05)
        async with ws:
            await say(ws, {"text": " "}, {"text": "Hi. "})
            await hear(ws, "Hi. ")
            await say(ws, text="")
            assert await read(ws) == [{"isFinal": True}, ("close", 1000, "")]
        assert proc.returncode is None
    finally:
        proc.kill()
        await proc.wait()
