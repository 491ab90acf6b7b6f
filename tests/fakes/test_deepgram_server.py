"""The fake Deepgram, driven by a plain ``websockets`` client as Deepgram's and Cloudflare's
documents describe one (no bridge code): its answers and their audio-time timing, its limits,
faults and AI Gateway paths. Audio goes faster than real time."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import numpy as np
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, ConnectionClosedError, InvalidStatus
from websockets.sync.client import connect as sync_connect
from websockets.typing import Subprotocol

from pipeline.g711 import ulaw_to_pcm16
from tests.fakes.deepgram import API_KEY, CF_TOKEN, FakeDeepgram, Fault, Tuning, tts_ms
from tests.fakes.deepgram.client import (
    DIRECT_HEADERS,
    GATEWAY_HEADERS,
    events_until,
    hello_ulaw,
    quiet,
    send_audio,
    send_json,
    speak,
    tone,
    transcript,
    turns,
)
from tests.fakes.realtime_server import pcm_rate_from_tone

DG, CF = DIRECT_HEADERS, GATEWAY_HEADERS
NOVA_MULAW = (
    "/v1/listen?model=nova-3&encoding=mulaw&sample_rate=8000&channels=1&interim_results=true"
    "&endpointing=500&utterance_end_ms=1000&vad_events=true&smart_format=true"
)
FLUX = "/v2/listen?model=flux-general-en&encoding=linear16&sample_rate=16000"
EAGER = "&eot_threshold=0.7&eager_eot_threshold=0.5"
SPEAK = "/v1/speak?model=aura-2-thalia-en"
AURA_MULAW = SPEAK + "&encoding=mulaw&sample_rate=8000"


@pytest.fixture
def fake() -> Iterator[FakeDeepgram]:
    server = FakeDeepgram(tuning=Tuning(flux_eager_ms=100, flux_eot_ms=200)).start()
    yield server
    server.stop()


@pytest.fixture
async def nova(fake: FakeDeepgram) -> AsyncIterator[ClientConnection]:
    async with connect(fake.ws + NOVA_MULAW, additional_headers=DG) as ws:
        yield ws


# -- Nova-3 ---------------------------------------------------------------------------------


async def test_nova_phone_audio_gets_interim_and_final_results_then_utterance_end(
    fake: FakeDeepgram, nova: ClientConnection
) -> None:
    fake.transcripts.append("Hello, how are you today?")
    audio = hello_ulaw() + b"\xff" * 8 * 1500  # then 1.5 s of μ-law silence
    await send_audio(nova, audio, 160)
    events = await events_until(nova, "UtteranceEnd")

    assert events[0]["type"] == "SpeechStarted" and 0 < events[0]["timestamp"] < 0.2
    results = [e for e in events if e["type"] == "Results"]
    interims, finals = results[:-1], results[-1:]
    assert interims and all(not e["is_final"] for e in interims)
    assert all("Hello, how are you today?".startswith(transcript(e)) for e in interims)
    (final,) = finals
    assert final["is_final"] and final["speech_final"] and not final["from_finalize"]
    assert transcript(final) == "Hello, how are you today?"
    words = final["channel"]["alternatives"][0]["words"]
    assert [w["punctuated_word"] for w in words] == ["Hello,", "how", "are", "you", "today?"]
    assert words[0]["word"] == "hello" and all(w["start"] < w["end"] for w in words)
    # speech_final after 500 ms of silence, UtteranceEnd at the last word's end
    assert final["start"] + final["duration"] == pytest.approx(words[-1]["end"] + 0.5, abs=0.03)
    assert events[-1]["last_word_end"] == words[-1]["end"] < len(audio) / 8000
    conn = fake.to("nova")[0]
    await fake.wait_for(lambda: len(conn.audio) == len(audio), what="the rest of the audio")
    assert conn.audio == audio  # phone audio went up untouched
    assert conn.query["encoding"] == "mulaw" and conn.query["sample_rate"] == "8000"
    assert conn.headers["authorization"] == "Token <redacted>" and conn.presented(API_KEY)
    assert conn.audio_ms == pytest.approx(len(audio) / 8)


async def test_nova_keepalive_keeps_an_idle_socket_open_and_silence_closes_it(
    fake: FakeDeepgram,
) -> None:
    fake.tuning.idle_timeout_s = 0.4
    async with (
        connect(fake.ws + NOVA_MULAW, additional_headers=DG) as kept,
        connect(fake.ws + NOVA_MULAW, additional_headers=DG) as idle,
    ):
        started = time.monotonic()
        while time.monotonic() - started < 1.0:
            await send_json(kept, "KeepAlive")
            await asyncio.sleep(0.1)
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(idle.recv(), 1)
        assert idle.close_code == 1011 and (idle.close_reason or "").startswith("NET-0001")
        assert kept.close_code is None  # open past twice the timeout
        with pytest.raises(ConnectionClosed):  # then quiet, it is closed too
            await asyncio.wait_for(kept.recv(), 2)
        assert time.monotonic() - started >= 1.3
    with_keepalive, without = fake.to("nova")
    assert len(with_keepalive.of_type("KeepAlive")) >= 9 and not without.messages
    assert (without.closed_by, without.close_code) == ("server", 1011)


async def test_nova_finalize_flushes_and_close_stream_ends_with_metadata(
    fake: FakeDeepgram, nova: ClientConnection
) -> None:
    fake.transcripts.append("Cancel my order.")
    speech = hello_ulaw()[:8000]  # the first second, no pause long enough to end it
    await send_audio(nova, speech, 160)
    await send_json(nova, "Finalize")
    final = (await events_until(nova, "Results", final=True))[-1]
    assert final["from_finalize"] and not final["speech_final"]
    assert transcript(final) == "Cancel my order."
    await send_json(nova, "Finalize")  # nothing new to finalize
    await send_json(nova, "CloseStream")
    (metadata,) = await events_until(nova, "Metadata")
    assert metadata["duration"] == pytest.approx(1.0, abs=0.02) and metadata["channels"] == 1
    with pytest.raises(ConnectionClosed):
        await nova.recv()
    assert nova.close_code == 1000


# -- Flux -----------------------------------------------------------------------------------


async def test_flux_start_eager_and_end_of_turn_come_at_their_audio_times(
    fake: FakeDeepgram,
) -> None:
    fake.transcripts.extend(["I need help.", "Thanks."])
    async with connect(fake.ws + FLUX + EAGER, additional_headers=DG) as ws:
        assert json.loads(await ws.recv())["type"] == "Connected"
        await send_audio(ws, quiet(100) + tone(800) + quiet(500) + tone(300) + quiet(400))
        first = await events_until(ws, "EndOfTurn")
        second = await events_until(ws, "EndOfTurn")
    assert turns(first) == [
        ("StartOfTurn", 0, "", 0.12),
        ("EagerEndOfTurn", 0, "I need help.", 1.0),  # 100 ms after the last voiced frame
        ("EndOfTurn", 0, "I need help.", 1.1),  # 200 ms after it
    ]
    assert [t[:3] for t in turns(second)] == [
        ("StartOfTurn", 1, ""),
        ("EagerEndOfTurn", 1, "Thanks."),
        ("EndOfTurn", 1, "Thanks."),
    ]
    updates = [e["audio_window_end"] for e in first if e["event"] == "Update"]
    assert np.diff([0.12, *updates]) == pytest.approx(0.25, abs=0.021)
    all_events = fake.to("flux")[0].events()
    assert [e["sequence_id"] for e in all_events] == list(range(len(all_events)))
    eager, end = (e for e in first if e["event"] in ("EagerEndOfTurn", "EndOfTurn"))
    assert eager["end_of_turn_confidence"] >= 0.5 and end["end_of_turn_confidence"] >= 0.7
    assert first[0]["audio_window_start"] == 0.1 and end["words"][-1]["end"] == 0.9


async def test_flux_speech_after_an_eager_end_resumes_the_turn(fake: FakeDeepgram) -> None:
    fake.transcripts.extend(["I need to", "cancel my plan."])
    async with connect(fake.ws + FLUX + EAGER, additional_headers=DG) as ws:
        await send_audio(ws, tone(600) + quiet(160) + tone(400) + quiet(300))
        events = await events_until(ws, "EndOfTurn")
    assert turns(events) == [
        ("StartOfTurn", 0, "", 0.02),
        ("EagerEndOfTurn", 0, "I need to", 0.7),
        ("TurnResumed", 0, "I need to", 0.78),
        ("EagerEndOfTurn", 0, "I need to cancel my plan.", 1.26),
        ("EndOfTurn", 0, "I need to cancel my plan.", 1.36),
    ]


# -- Aura -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("encoding", "rate_hz"), [("mulaw", 8000), ("linear16", 24000)])
async def test_aura_speaks_a_tone_as_long_as_the_text_in_the_requested_format(
    fake: FakeDeepgram, encoding: str, rate_hz: int
) -> None:
    url = f"{fake.ws}{SPEAK}&encoding={encoding}&sample_rate={rate_hz}"
    async with connect(url, additional_headers=DG) as ws:
        metadata = json.loads(await ws.recv())
        audio, events = await speak(ws, "Hello there, how can I help?")
    assert metadata["type"] == "Metadata" and metadata["model_name"] == "aura-2-thalia-en"
    assert events == [{"type": "Flushed", "sequence_id": 0}]
    pcm = ulaw_to_pcm16(audio) if encoding == "mulaw" else audio
    assert len(pcm) / 2 / rate_hz * 1000 == pytest.approx(tts_ms("Hello there, how can I help?"))
    assert pcm_rate_from_tone(pcm, 440.0, (8000, 16000, 24000, 48000)) == rate_hz


async def test_aura_clear_drops_pending_text_and_unsent_audio(fake: FakeDeepgram) -> None:
    fake.tuning.aura_chunk_delay_s = 0.02
    url = f"{fake.ws}{SPEAK}&encoding=linear16&sample_rate=16000"
    async with connect(url, additional_headers=DG) as ws:
        await ws.recv()  # Metadata
        await send_json(ws, "Speak", text="x" * 300)  # 6 s of speech
        await send_json(ws, "Flush")
        assert isinstance(await ws.recv(), bytes)
        await send_json(ws, "Speak", text="never flushed")
        await send_json(ws, "Clear")
        heard = b""
        while not isinstance(message := await asyncio.wait_for(ws.recv(), 5), str):
            heard += message
        assert json.loads(message) == {"type": "Cleared", "sequence_id": 0}
        audio, events = await speak(ws, "Next.")
    assert len(heard) < 16000 * 2 * 6 // 2  # most of the 6 s never came
    assert len(audio) == 16 * 2 * tts_ms("Next.")  # "never flushed" was dropped too
    assert events == [{"type": "Flushed", "sequence_id": 1}]


async def test_aura_refuses_the_21st_flush_within_a_minute_with_a_warning(
    fake: FakeDeepgram,
) -> None:
    fake.tuning.flush_window_s = 1.0  # Deepgram's is 60 s; a short one shows it reopens
    async with connect(fake.ws + AURA_MULAW, additional_headers=DG) as ws:
        await ws.recv()  # Metadata
        for i in range(20):
            assert (await speak(ws, "Hi."))[1] == [{"type": "Flushed", "sequence_id": i}]
        await send_json(ws, "Flush")
        warning = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert warning["type"] == "Warning" and warning["code"] == "EXCESSIVE_FLUSH"
        assert warning["warn_code"] == "EXCESSIVE_FLUSH" and warning["description"]
        await asyncio.sleep(1.0)
        audio, events = await speak(ws, "Hi.")
    assert audio and events == [{"type": "Flushed", "sequence_id": 20}]
    assert len(fake.to("aura")[0].of_type("Flush")) == 22


# -- faults and credentials -----------------------------------------------------------------


@pytest.mark.parametrize("status", [401, 429, 500, 503])
async def test_an_injected_status_refuses_the_upgrade(fake: FakeDeepgram, status: int) -> None:
    fake.fail("flux", Fault.http(status, retry_after="2" if status == 429 else None))
    with pytest.raises(InvalidStatus) as refused:
        await connect(fake.ws + FLUX, additional_headers=DG)
    response = refused.value.response
    assert response.status_code == status and json.loads(response.body)["err_code"]
    assert (response.headers.get("retry-after") == "2") == (status == 429)
    async with connect(fake.ws + FLUX, additional_headers=DG) as ws:  # only once
        assert json.loads(await ws.recv())["type"] == "Connected"
    assert [c.status for c in fake.to("flux")] == [status, 101]


GATEWAY_FLUX = "/v1/acct/gw/workers-ai?model=@cf/deepgram/flux&sample_rate=16000"


@pytest.mark.parametrize(
    ("path", "headers", "status"),
    [
        (FLUX, {}, 401),
        (FLUX, {"Authorization": "Token wrong"}, 401),
        (FLUX, {"Authorization": f"Bearer {API_KEY}"}, 401),  # Bearer: temporary tokens only
        (GATEWAY_FLUX + "&encoding=linear16", DG, 401),  # the gateway wants its own token
        (GATEWAY_FLUX + "&encoding=linear16", {"cf-aig-authorization": "x"}, 401),
        (GATEWAY_FLUX + "&encoding=mulaw", CF, 400),  # Cloudflare's Flux: linear16 only
        ("/v1/acct/gw/workers-ai?model=@cf/openai/whisper", CF, 404),
    ],
    ids=["none", "wrong", "Bearer", "key at gateway", "wrong token", "mulaw", "model"],
)
async def test_bad_credentials_and_requests_are_refused(
    fake: FakeDeepgram, path: str, headers: dict[str, str], status: int
) -> None:
    with pytest.raises(InvalidStatus) as refused:
        await connect(fake.ws + path, additional_headers=headers)
    assert refused.value.response.status_code == status


async def test_a_browser_may_pass_the_key_as_subprotocols(fake: FakeDeepgram) -> None:
    protocols = [Subprotocol("token"), Subprotocol(API_KEY)]  # Deepgram's browser form
    async with connect(fake.ws + FLUX, subprotocols=protocols) as ws:
        assert ws.subprotocol == "token"
        assert json.loads(await ws.recv())["type"] == "Connected"
    conn = fake.to("flux")[0]
    assert conn.auth_scheme == "subprotocol" and API_KEY not in str(conn.headers)


async def test_drop_cuts_the_connection_after_n_messages(fake: FakeDeepgram) -> None:
    fake.fail("flux", Fault.drop(after_messages=2))
    async with connect(fake.ws + FLUX, additional_headers=DG) as ws:
        await ws.send(tone(200))  # one message: no upload still under way at the drop
        received = []
        with pytest.raises(ConnectionClosedError):
            while True:
                received.append(json.loads(await asyncio.wait_for(ws.recv(), 5)))
    assert [e.get("event", e["type"]) for e in received] == ["Connected", "StartOfTurn"]
    assert ws.close_code == 1006 and fake.to("flux")[0].closed_by == "drop"


async def test_stall_answers_nothing_but_keeps_the_socket_open(fake: FakeDeepgram) -> None:
    fake.fail("aura", Fault.stall(after_messages=1))
    async with connect(fake.ws + AURA_MULAW, additional_headers=DG) as ws:
        assert json.loads(await ws.recv())["type"] == "Metadata"
        await send_json(ws, "Speak", text="Hello.")
        await send_json(ws, "Flush")
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(ws.recv(), 0.5)
        await asyncio.wait_for(await ws.ping(), 2)  # still open
        await fake.wait_for(lambda: len(fake.to("aura")[0].messages) == 2, what="both messages")


async def test_close_fault_sends_flux_error_then_closes_1011(fake: FakeDeepgram) -> None:
    fake.fail("flux", Fault.close(after_messages=1))
    async with connect(fake.ws + FLUX, additional_headers=DG) as ws:
        assert json.loads(await ws.recv())["type"] == "Connected"
        error = json.loads(await ws.recv())
        with pytest.raises(ConnectionClosed):
            await ws.recv()
    assert error["type"] == "Error" and error["code"] and error["description"]
    assert ws.close_code == 1011


async def test_first_audio_and_first_result_wait_the_injected_delay(fake: FakeDeepgram) -> None:
    fake.first_result_delay_s.update({"aura": 0.3, "flux": 0.3})
    async with connect(fake.ws + AURA_MULAW, additional_headers=DG) as ws:
        await ws.recv()
        for _ in range(2):  # before each flush's first audio, not only the first
            started = time.monotonic()
            await speak(ws, "Hello.")
            assert time.monotonic() - started >= 0.3
    async with connect(fake.ws + FLUX, additional_headers=DG) as ws:
        await ws.recv()
        started = time.monotonic()
        await send_audio(ws, tone(200))
        await events_until(ws, "StartOfTurn")
        assert time.monotonic() - started >= 0.3


# -- Cloudflare AI Gateway ------------------------------------------------------------------


async def test_nova_and_aura_through_the_gateway_take_the_cf_token(fake: FakeDeepgram) -> None:
    fake.transcripts.append("Hi.")
    nova = "/v1/acct1/gw1/workers-ai?model=@cf/deepgram/nova-3&encoding=mulaw&sample_rate=8000"
    async with connect(fake.ws + nova + "&interim_results=true", additional_headers=CF) as ws:
        await send_audio(ws, hello_ulaw()[:4000] + b"\xff" * 800, 160)
        assert transcript((await events_until(ws, "Results"))[-1]) == "Hi."
    conn = fake.to("nova")[0]
    assert conn.route == "gateway" and (conn.account, conn.gateway) == ("acct1", "gw1")
    assert conn.headers["cf-aig-authorization"] == "Bearer <redacted>"
    assert conn.auth_scheme == "Bearer" and conn.presented(CF_TOKEN)
    aura = f"{fake.gateway_url()}?model=@cf/deepgram/aura-2-en&speaker=thalia&encoding=linear16"
    protocols = [Subprotocol(f"cf-aig-authorization.{CF_TOKEN}")]  # as a browser passes it
    async with connect(aura + "&sample_rate=24000", subprotocols=protocols) as ws:
        assert json.loads(await ws.recv())["model_name"] == "thalia"
        audio, _ = await speak(ws, "Hi.")
    assert len(audio) == 48 * tts_ms("Hi.")
    assert fake.to("aura")[0].auth_scheme == "subprotocol"


async def test_flux_through_the_gateway(fake: FakeDeepgram) -> None:
    async with connect(fake.ws + GATEWAY_FLUX + "&encoding=linear16", additional_headers=CF) as ws:
        await send_audio(ws, tone(400) + quiet(300))
        events = await events_until(ws, "EndOfTurn")
    # no eager_eot_threshold: no eager events
    assert [t[0] for t in turns(events)] == ["StartOfTurn", "EndOfTurn"]


def test_runs_in_its_own_process_until_killed() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    root = Path(__file__).resolve().parents[2]
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.deepgram_server", "--port", str(port)],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None and "fake Deepgram" in process.stdout.readline()
        for _ in range(100):  # until uvicorn listens
            try:
                with sync_connect(f"ws://127.0.0.1:{port}{FLUX}", additional_headers=DG) as ws:
                    assert json.loads(ws.recv(timeout=5))["type"] == "Connected"
                    break
            except OSError:
                time.sleep(0.05)
        else:
            raise AssertionError("the fake did not come up")
    finally:
        process.terminate()
        process.wait(10)
