"""The cascade's stage combinations end to end: a real bridge on loopback, real phone and toy
clients, and the real provider code (Deepgram, Cloudflare AI Gateway, ElevenLabs, the
``openai`` client) talking to the fakes over real sockets (tests/fakes/)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.deepgram import API_KEY as DEEPGRAM_KEY
from tests.fakes.deepgram import CF_TOKEN, FakeDeepgram
from tests.fakes.deepgram import tts_ms as aura_ms
from tests.fakes.elevenlabs import FakeElevenLabs
from tests.fakes.elevenlabs import tts_ms as eleven_ms
from tests.fakes.openai_server import ChatScript, FakeOpenAI
from tests.support.records import wait_for_call
from tests.support.serverthread import MakeServer
from tests.support.stacks import (
    CF_ACCOUNT,
    CF_GATEWAY,
    ELEVENLABS_VOICE,
    OPENAI_KEY,
    TOLERANCE_MS,
    ULAW_BYTES_PER_MS,
    cascade_env,
    cloudflare_env,
    deepgram_env,
    elevenlabs_env,
    heard_ms,
    listen,
    watch_transcripts,
)
from tests.support.toys import hello_16k, open_toy
from tests.support.twilio_calls import SILENCE, open_call, say, say_and_listen

#: PCM16 at 16 kHz: bytes per ms of the toy's microphone
TOY_BYTES_PER_MS = 32


@pytest.fixture
def openai() -> Iterator[FakeOpenAI]:
    server = FakeOpenAI(api_key=OPENAI_KEY).start()
    yield server
    server.stop()


@pytest.fixture
def deepgram() -> Iterator[FakeDeepgram]:
    server = FakeDeepgram().start()
    yield server
    server.stop()


@pytest.fixture
def elevenlabs() -> Iterator[FakeElevenLabs]:
    server = FakeElevenLabs(pace=4).start()
    yield server
    server.stop()


@pytest.fixture
def short_ulaw(hello_ulaw: bytes) -> bytes:
    """The first phrase of the speech fixture (0.6 s): one stretch of speech, no pause in it
    long enough for a recogniser to end the turn early."""
    return hello_ulaw[: ULAW_BYTES_PER_MS * 600]


async def test_phone_on_flux_and_aura_answers_on_the_eager_end_of_turn(
    make_server: MakeServer,
    openai: FakeOpenAI,
    deepgram: FakeDeepgram,
    short_ulaw: bytes,
    caplog: pytest.LogCaptureFixture,
) -> None:
    deepgram.tuning.flux_eot_ms = 400  # the end of turn comes well after the eager one
    deepgram.transcripts.append("What is the weather like?")
    openai.replies.append(ChatScript("It is sunny today. Take a hat!"))
    server = make_server(
        **cascade_env(
            openai,
            BRIDGE_STT="deepgram",
            BRIDGE_DEEPGRAM_STT_MODEL="flux",
            BRIDGE_TTS="deepgram",
            **deepgram_env(deepgram),
        )
    )
    transcripts = watch_transcripts(server)
    peer = await open_call(server)
    with caplog.at_level(logging.DEBUG, logger="pipeline.agents.cascade"):
        await say_and_listen(peer, short_ulaw)
    await peer.close()

    # the caller's μ-law went to Flux as it came off the line, and Flux found the turn
    [flux] = deepgram.to("flux")
    assert (flux.route, flux.auth_scheme) == ("deepgram", "Token") and flux.presented(DEEPGRAM_KEY)
    assert flux.query["model"] == "flux-general-en"
    assert (flux.query["encoding"], flux.query["sample_rate"]) == ("mulaw", "8000")
    assert short_ulaw in flux.audio  # byte for byte: nothing decoded or resampled
    [eager] = flux.events("EagerEndOfTurn")
    [end] = flux.events("EndOfTurn")
    assert eager["transcript"] == end["transcript"] == "What is the weather like?"

    # the chat started on the eager end of turn, and that answer was the one spoken
    [chat] = openai.to("chat")
    assert chat.headers["x-client-request-id"] == f"{peer.call_sid}-eager1-chat"
    assert chat.body["messages"][-1] == {"role": "user", "content": "What is the weather like?"}
    [end_sent] = [
        m for m in flux.sent if m.event is not None and m.event.get("event") == "EndOfTurn"
    ]
    assert chat.started_at < end_sent.at_s  # asked before the turn had ended
    assert sum("the eager answer stands" in r.getMessage() for r in caplog.records) == 1
    assert openai.to("transcriptions") == [] and openai.to("speech") == []

    # Aura spoke μ-law at 8 kHz in the configured default voice, and the caller heard it all
    [aura] = deepgram.to("aura")
    assert aura.query == {"model": "aura-2-thalia-en", "encoding": "mulaw", "sample_rate": "8000"}
    spoken = [m.json["text"] for m in aura.of_type("Speak")]
    assert "".join(spoken) == "It is sunny today. Take a hat!"
    expected_ms = sum(aura_ms(text) for text in spoken)
    assert heard_ms(peer) == pytest.approx(expected_ms, abs=TOLERANCE_MS)
    assert aura.sent_audio[:800] in peer.played  # passed through as Aura made it
    assert [(role, text) for _, role, text in transcripts.lines] == [
        ("user", "What is the weather like?"),
        ("assistant", "It is sunny today. Take a hat!"),
    ]


async def test_phone_on_nova_and_elevenlabs_ends_turns_on_speech_final_and_cuts_on_barge_in(
    make_server: MakeServer,
    openai: FakeOpenAI,
    deepgram: FakeDeepgram,
    elevenlabs: FakeElevenLabs,
    short_ulaw: bytes,
    interrupt_ulaw: bytes,
    tmp_path: Path,
) -> None:
    sentences = [f"This is sentence number {n} of a long answer." for n in range(1, 9)]
    reply_text = " ".join(sentences)
    deepgram.transcripts.extend(["Tell me everything.", "Stop."])
    # written slowly: the reply is still being spoken, sentence by sentence, at the barge-in
    openai.replies.extend([ChatScript(reply_text, chunk_delay_s=0.05), ChatScript("Okay.")])
    server = make_server(
        **cascade_env(
            openai,
            BRIDGE_STT="deepgram",
            BRIDGE_TTS="elevenlabs",
            **deepgram_env(deepgram),
            **elevenlabs_env(elevenlabs),
        )
    )
    transcripts = watch_transcripts(server)
    peer = await open_call(server)
    await say(peer, short_ulaw, tail_ms=700)
    await peer.wait_for_media(1, timeout_s=10)
    await peer.silence(1500)  # the caller hears about a sentence and a half
    await peer.stream(interrupt_ulaw[:4000])  # barges in
    assert len(peer.timeline.clears) == 1
    before = len(peer.played)
    await peer.stream(SILENCE * ULAW_BYTES_PER_MS * 900)  # then pauses: the turn ends
    await openai.wait_for(lambda: len(openai.to("chat")) == 2, what="the second chat request")
    await listen(peer)
    await peer.close()

    # Nova-3 heard the line's μ-law; the turn ended on speech_final, before UtteranceEnd
    [nova] = deepgram.to("nova")
    assert (nova.query["encoding"], nova.query["sample_rate"]) == ("mulaw", "8000")
    assert nova.query["interim_results"] == "true" and nova.query["vad_events"] == "true"
    assert short_ulaw in nova.audio
    first_chat, second_chat = openai.to("chat")
    speech_final = next(
        m for m in nova.sent if m.event is not None and m.event.get("speech_final") is True
    )
    utterance_end = next(
        m for m in nova.sent if m.event is not None and m.event.get("type") == "UtteranceEnd"
    )
    assert speech_final.at_s <= first_chat.started_at < utterance_end.at_s

    # one ElevenLabs socket for the call, μ-law 8 kHz in the configured voice; the barge-in
    # closed the first reply's context while its sentences were still coming
    [xi] = elevenlabs.connections
    assert xi.multi and xi.voice_id == ELEVENLABS_VOICE and xi.auth == "header"
    assert xi.query["output_format"] == "ulaw_8000"
    assert xi.closed_contexts() == ["t0", "t1"]
    cut_text = xi.text_sent("t0")
    assert sentences[0] in cut_text and sentences[-1] not in cut_text  # the rest never sent

    # what the caller heard of the first reply is what the call remembers, cut with "…"
    [first_reply, second_reply] = transcripts.of("assistant")
    assert first_reply.endswith("…")
    words = first_reply.removesuffix("…").split()
    assert words and words == reply_text.split()[: len(words)]
    assert second_chat.body["messages"][-2:] == [
        {"role": "assistant", "content": first_reply},
        {"role": "user", "content": "Stop."},
    ]
    assert transcripts.of("user") == ["Tell me everything.", "Stop."]
    assert second_reply == "Okay."
    assert heard_ms(peer, before) == pytest.approx(eleven_ms("Okay."), abs=TOLERANCE_MS)
    records = f"sqlite:///{tmp_path / 'calls.db'}"  # the make_server fixture's store
    turns = (await asyncio.to_thread(wait_for_call, records, peer.call_sid)).turns
    cut, answered = turns
    assert (cut.user_text, cut.assistant_text, cut.interrupted) == (
        "Tell me everything.",
        first_reply,
        True,
    )
    assert (answered.user_text, answered.assistant_text) == ("Stop.", "Okay.")


async def test_toy_on_cloudflare_for_every_stage(
    make_server: MakeServer, openai: FakeOpenAI, deepgram: FakeDeepgram
) -> None:
    """Flux and Aura through AI Gateway, and the chat on an OpenAI-compatible server (the
    fake OpenAI standing in for Workers AI's ``/ai/v1``); nothing else is configured."""
    deepgram.transcripts.append("Tell me a joke.")
    openai.replies.append(ChatScript("Why did the robot sing? It had good bits."))
    server = make_server(
        BRIDGE_AGENT="openai",
        BRIDGE_STT="cloudflare",
        BRIDGE_DEEPGRAM_STT_MODEL="flux",
        BRIDGE_TTS="cloudflare",
        BRIDGE_OPENAI_CHAT_BASE_URL=openai.base_url,
        BRIDGE_OPENAI_CHAT_API_KEY=OPENAI_KEY,
        BRIDGE_FIRST_MESSAGE="Hi friend!",
        BRIDGE_OPENAI_TURN_DEADLINE_S=2,
        BRIDGE_OPENAI_REQUEST_TIMEOUT_S=0.6,
        **cloudflare_env(deepgram),
    )
    toy = await open_toy(server, token=None, idle_mic=True)
    [greeting] = await toy.wait_responses(1, 15)
    utterance = hello_16k()[: TOY_BYTES_PER_MS * 600]
    await toy.speak(utterance)
    reply = (await toy.wait_responses(2, 15))[1]
    assert toy.protocol_errors == []
    await toy.close()

    [flux] = deepgram.to("flux")
    [aura] = deepgram.to("aura")
    for conn in (flux, aura):
        assert conn.route == "gateway" and (conn.account, conn.gateway) == (CF_ACCOUNT, CF_GATEWAY)
        assert conn.headers["cf-aig-authorization"] == "Bearer <redacted>"
        assert conn.presented(CF_TOKEN) and "authorization" not in conn.headers
    assert flux.query["model"] == "@cf/deepgram/flux"
    # Workers AI's Flux takes linear16 only: the toy's PCM16 16 kHz goes as it is
    assert (flux.query["encoding"], flux.query["sample_rate"]) == ("linear16", "16000")
    assert utterance[: TOY_BYTES_PER_MS * 300] in flux.audio
    assert aura.query["model"] == "@cf/deepgram/aura-2-en" and aura.query["speaker"] == "thalia"
    assert aura.query["encoding"] == "linear16"

    [chat] = openai.to("chat")
    assert chat.headers["authorization"] == f"Bearer {OPENAI_KEY}"
    assert chat.body["messages"][-1] == {"role": "user", "content": "Tell me a joke."}
    assert {r.endpoint for r in openai.requests} == {"chat"}

    # the toy decoded Opus of the length Aura spoke (120 ms frames: the last one is padded)
    flushes = [m.json["text"] for m in aura.of_type("Speak")]
    assert flushes[0] == "Hi friend!"
    assert "".join(flushes[1:]).strip() == "Why did the robot sing? It had good bits."
    assert greeting.ok and reply.ok
    greeting_ms = aura_ms("Hi friend!")
    assert greeting_ms - 10 <= greeting.decoded_ms <= greeting_ms + 240
    reply_ms = sum(aura_ms(text) for text in flushes[1:])
    assert reply_ms - 10 <= reply.decoded_ms <= reply_ms + 240
