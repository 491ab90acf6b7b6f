"""The cascaded OpenAI agent end to end: a real bridge, real callers and toys, the real
``openai`` client, and a fake OpenAI server on loopback (tests/fakes/openai_server.py)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline.agents.providers.openai.tts import TTS_SPEC
from pipeline.apology import apology_audio
from pipeline.observers import ObservedCall, SessionObserver
from tests.fakes.openai_server import ChatScript, FakeOpenAI, Fault, tts_ms
from tests.support.serverthread import MakeServer
from tests.support.stacks import heard_ms, listen, watch_transcripts
from tests.support.toys import hello_16k, open_toy
from tests.support.twilio_calls import SILENCE, background, open_call, say, say_and_listen

KEY = "sk-test-0123456789"
ULAW_BYTES_PER_MS = 8
CHUNK_MS = 40
#: resampling and the last partial chunk make heard durations differ slightly from the text's
TOLERANCE_MS = 60
APOLOGY_MS = len(apology_audio(TTS_SPEC)) / TTS_SPEC.bytes_per_ms


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    server = FakeOpenAI(api_key=KEY).start()
    yield server
    server.stop()


@pytest.fixture
def short_ulaw(hello_ulaw: bytes) -> bytes:
    """The first phrase of the speech fixture (0.6 s): enough for a turn, quick to say, and
    without a pause that would make the turn be transcribed early more than once."""
    return hello_ulaw[: ULAW_BYTES_PER_MS * 600]


def openai_env(fake: FakeOpenAI, **overrides: Any) -> dict[str, Any]:
    env: dict[str, Any] = {
        "BRIDGE_AGENT": "openai",
        "BRIDGE_OPENAI_BASE_URL": fake.base_url,
        "BRIDGE_OPENAI_API_KEY": KEY,
        "BRIDGE_FIRST_MESSAGE": "",
        "BRIDGE_OPENAI_TURN_DEADLINE_S": 2,
        "BRIDGE_OPENAI_REQUEST_TIMEOUT_S": 0.6,
    }
    env.update(overrides)
    return env


def spoken(fake: FakeOpenAI) -> list[str]:
    return [r.body["input"] for r in fake.to("speech")]


# -- phones and toys reach the agent -------------------------------------------------------


async def test_phone_caller_hears_greeting_and_a_streamed_reply(
    make_server: MakeServer, fake: FakeOpenAI, hello_ulaw: bytes
) -> None:
    fake.transcripts.append("What is the weather like?")
    fake.replies.append(ChatScript("It is sunny today. Take a hat!"))
    server = make_server(
        **openai_env(
            fake,
            BRIDGE_FIRST_MESSAGE="Hello caller.",
            BRIDGE_OPENAI_VOICE="verse",
            BRIDGE_SYSTEM_PROMPT="You are a test.",
        )
    )
    transcripts = watch_transcripts(server)
    peer = await open_call(server)
    await listen(peer)
    assert heard_ms(peer) == pytest.approx(tts_ms("Hello caller."), abs=TOLERANCE_MS)
    greeting_bytes = len(peer.played)
    await say_and_listen(peer, hello_ulaw)
    expected_ms = tts_ms("It is sunny today.") + tts_ms("Take a hat!")
    assert heard_ms(peer, greeting_bytes) == pytest.approx(expected_ms, abs=TOLERANCE_MS)
    await peer.close()

    # transcribed early at each pause: three inside the question, voided as the caller spoke
    # on, and the last one, which became the turn
    *void, stt = fake.to("transcriptions")
    assert len(void) == 3
    assert all(v.body["audio_ms"] < stt.body["audio_ms"] for v in void)
    assert stt.body["model"] == "gpt-4o-mini-transcribe" and stt.body["response_format"] == "json"
    assert stt.body["file_type"] == "audio/wav" and stt.body["rate_hz"] == 8000  # as carried
    utterance_ms = len(hello_ulaw) / ULAW_BYTES_PER_MS
    assert 0.8 * utterance_ms <= stt.body["audio_ms"] <= utterance_ms + 1000  # the whole turn
    [chat] = fake.to("chat")
    assert chat.body["model"] == "gpt-4o-mini" and chat.body["stream"] is True
    assert chat.body["messages"] == [
        {"role": "system", "content": "You are a test."},
        {"role": "assistant", "content": "Hello caller."},
        {"role": "user", "content": "What is the weather like?"},
    ]
    assert [t["function"]["name"] for t in chat.body["tools"]] == ["end_call"]
    assert spoken(fake) == ["Hello caller.", "It is sunny today.", "Take a hat!"]
    for tts in fake.to("speech"):
        assert tts.body["model"] == "gpt-4o-mini-tts" and tts.body["voice"] == "verse"
        assert tts.body["response_format"] == "pcm"
    assert all(r.headers["authorization"] == f"Bearer {KEY}" for r in fake.requests)
    # each request names its call, turn and stage, for OpenAI's logs and ours
    ids = sorted({r.headers["x-client-request-id"] for r in fake.requests})
    sid = peer.call_sid
    assert ids == [f"{sid}-{turn}" for turn in ("1-tts0", "2-chat", "2-stt", "2-tts0", "2-tts1")]
    assert [(role, text) for _, role, text in transcripts.lines] == [
        ("assistant", "Hello caller."),
        ("user", "What is the weather like?"),
        ("assistant", "It is sunny today. Take a hat!"),
    ]


async def test_toy_hears_greeting_and_reply(make_server: MakeServer, fake: FakeOpenAI) -> None:
    fake.transcripts.append("Tell me a joke.")
    fake.replies.append(ChatScript("Why did the robot sing? It had good bits."))
    server = make_server(**openai_env(fake, BRIDGE_FIRST_MESSAGE="Hi friend!"))
    toy = await open_toy(server, token=None, idle_mic=True)
    [greeting] = await toy.wait_responses(1, 15)
    assert greeting.ok
    # Opus frames are 120 ms: the last one is padded
    assert tts_ms("Hi friend!") - 10 <= greeting.decoded_ms <= tts_ms("Hi friend!") + 240
    await toy.speak(hello_16k())
    reply = (await toy.wait_responses(2, 15))[1]
    assert reply.ok
    expected_ms = tts_ms("Why did the robot sing?") + tts_ms("It had good bits.")
    assert expected_ms - 10 <= reply.decoded_ms <= expected_ms + 240
    assert toy.protocol_errors == []
    await toy.close()
    stt = fake.to("transcriptions")[-1]  # the turn (the toy's question has pauses)
    assert stt.body["rate_hz"] == 16000
    assert fake.to("chat")[0].body["messages"][-1] == {"role": "user", "content": "Tell me a joke."}


async def test_speech_starts_while_the_chat_is_still_streaming(
    make_server: MakeServer, fake: FakeOpenAI, short_ulaw: bytes
) -> None:
    long_tail = " ".join(["and then some more words"] * 6) + "."
    fake.replies.append(ChatScript("First a short one. " + long_tail, chunk_delay_s=0.05))
    server = make_server(**openai_env(fake))
    peer = await open_call(server)
    await say(peer, short_ulaw)
    await fake.wait_for(lambda: bool(fake.to("speech")), what="the first speech request")
    [chat] = fake.to("chat")
    first_tts = fake.to("speech")[0]
    assert first_tts.body["input"] == "First a short one."
    await fake.wait_for(lambda: chat.finished_at is not None, what="the chat stream to end")
    assert chat.finished_at is not None
    assert first_tts.started_at < chat.finished_at - 0.5  # well before the stream ended
    # the first sentence went quiet long ago: wait for the second rather than for quiet
    talker = background(peer.silence(15_000))
    both_ms = tts_ms("First a short one.") + tts_ms(long_tail) - TOLERANCE_MS
    await fake.wait_for(lambda: heard_ms(peer) >= both_ms, 15, "both sentences to be heard")
    talker.cancel()
    await peer.close()
    assert spoken(fake) == ["First a short one.", long_tail]


class Latencies(SessionObserver):
    def __init__(self) -> None:
        self.ms: list[float] = []

    def on_turn_latency(self, session: ObservedCall, turn_id: int, latency_ms: float) -> None:
        self.ms.append(latency_ms)


@pytest.mark.parametrize("early_ms", [200, 0])
async def test_the_turn_is_transcribed_in_the_callers_pause(
    make_server: MakeServer, fake: FakeOpenAI, short_ulaw: bytes, early_ms: int
) -> None:
    """200 ms into the caller's silence the turn is sent off to be transcribed, so the rest
    of the 500 ms window hides a slow transcription; turned off, the caller waits for it."""
    stt_delay_ms = 250
    fake.first_byte_delay_s["transcriptions"] = stt_delay_ms / 1000
    server = make_server(**openai_env(fake, BRIDGE_EARLY_TRANSCRIPTION_MS=early_ms))
    latencies = Latencies()
    server.app.state.bridge.observers.add(latencies)
    peer = await open_call(server)
    await say_and_listen(peer, short_ulaw)
    await peer.close()
    assert len(fake.to("transcriptions")) == 1  # the early one became the turn's
    [latency_ms] = latencies.ms  # from the end of the turn to the first reply audio
    if early_ms:
        assert latency_ms < stt_delay_ms
    else:
        assert latency_ms > stt_delay_ms


async def test_speaking_on_after_a_pause_voids_the_early_transcription(
    make_server: MakeServer, fake: FakeOpenAI, short_ulaw: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    fake.transcript_of = lambda request: f"{request.body['audio_ms']:.0f} ms of speech"
    server = make_server(**openai_env(fake))
    peer = await open_call(server)
    with caplog.at_level(logging.DEBUG, logger="pipeline.agents.cascade"):
        # a pause of about 370 ms: long enough to be transcribed early, too short to end it
        await say_and_listen(peer, short_ulaw + SILENCE * 8 * 250 + short_ulaw)
    await peer.close()
    assert sum("the caller spoke on" in r.getMessage() for r in caplog.records) == 1
    void, whole = fake.to("transcriptions")
    assert void.body["audio_ms"] < whole.body["audio_ms"]
    assert void.finished_at is not None
    assert whole.started_at > void.finished_at  # asked again in the pause that ended the turn
    [chat] = fake.to("chat")
    assert chat.body["messages"][-1]["content"] == f"{whole.body['audio_ms']:.0f} ms of speech"


async def test_a_turn_cut_at_its_longest_is_transcribed_whole_not_early(
    make_server: MakeServer, fake: FakeOpenAI, hello_ulaw: bytes
) -> None:
    """A turn that ends without the pause it was offered in (here at the 1.3 s maximum, while
    the caller talks on) gets a transcription of all of it."""
    fake.transcript_of = lambda request: f"{request.body['audio_ms']:.0f} ms of speech"
    # 1.3 s: the turn (with its 0.6 s of audio from before the speech began) passes a
    # short pause in the speech, is offered early there, and is cut while the caller talks on
    server = make_server(**openai_env(fake, BRIDGE_MAX_TURN_MS=1300))
    peer = await open_call(server)
    await say_and_listen(peer, hello_ulaw[: ULAW_BYTES_PER_MS * 1700])
    await peer.close()
    early, whole = fake.to("transcriptions")[:2]
    assert early.body["audio_ms"] < whole.body["audio_ms"] == 1300
    first_chat = fake.to("chat")[0]
    assert first_chat.body["messages"][-1]["content"] == "1300 ms of speech"


async def test_second_turn_remembers_the_first_exchange(
    make_server: MakeServer, fake: FakeOpenAI, short_ulaw: bytes
) -> None:
    fake.transcripts.extend(["My name is Ada.", "What is my name?"])
    fake.replies.extend([ChatScript("Nice to meet you, Ada."), ChatScript("You are Ada.")])
    server = make_server(**openai_env(fake, BRIDGE_SYSTEM_PROMPT="Be brief."))
    peer = await open_call(server)
    await say_and_listen(peer, short_ulaw)
    await say_and_listen(peer, short_ulaw)
    await peer.close()
    assert fake.to("chat")[1].body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "My name is Ada."},
        {"role": "assistant", "content": "Nice to meet you, Ada."},
        {"role": "user", "content": "What is my name?"},
    ]


async def test_connections_stay_open_through_a_pause_between_turns(
    make_server: MakeServer, fake: FakeOpenAI, short_ulaw: bytes
) -> None:
    """The library closes connections idle for 5 s, less than a caller's turn often takes:
    each turn would open new ones, a TLS handshake each against the real API."""
    server = make_server(**openai_env(fake))
    peer = await open_call(server)
    await say_and_listen(peer, short_ulaw)
    first_turn = {r.client_port for r in fake.requests}
    await peer.silence(6_000)
    await say_and_listen(peer, short_ulaw)
    await peer.close()
    second_turn = {r.client_port for r in fake.requests} - first_turn
    assert len(fake.to("transcriptions")) == 2 and second_turn == set()


async def test_barge_in_keeps_only_what_the_caller_heard(
    make_server: MakeServer, fake: FakeOpenAI, short_ulaw: bytes, interrupt_ulaw: bytes
) -> None:
    sentences = [f"This is sentence number {n} of a long answer." for n in range(1, 9)]
    reply_text = " ".join(sentences)
    fake.transcripts.extend(["Tell me everything.", "Stop."])
    fake.replies.extend([ChatScript(reply_text), ChatScript("Okay.")])
    server = make_server(**openai_env(fake))
    peer = await open_call(server)
    await say(peer, short_ulaw, tail_ms=700)
    await peer.wait_for_media(1, timeout_s=10)
    await peer.silence(2500)  # the caller hears about two and a half sentences
    await peer.stream(interrupt_ulaw[:4000] + SILENCE * 8 * 900)  # barges in, then pauses
    await fake.wait_for(lambda: len(fake.to("chat")) == 2, what="the second chat request")
    await listen(peer)
    await peer.close()

    heard = len([m for m in peer.timeline.played_marks if m.startswith("t1:")]) * CHUNK_MS
    history = fake.to("chat")[1].body["messages"]
    assert [m["role"] for m in history] == ["system", "user", "assistant", "user"]
    remembered = history[2]["content"]
    # cut inside a sentence ("…"), or exactly at a sentence's end when the caller barged in
    # while the next sentence's speech had not started yet (a slow machine)
    assert remembered.endswith("…") or remembered.endswith(".")
    words = remembered.removesuffix("…").split()
    assert words == reply_text.split()[: len(words)]  # a prefix, at a word boundary
    assert sentences[0] in remembered and sentences[-1] not in remembered
    heard_chars = heard / tts_ms("x")
    assert abs(len(remembered) - heard_chars) < 12  # proportional to what was heard
    assert history[3] == {"role": "user", "content": "Stop."}


async def test_end_call_tool_says_goodbye_then_closes_1000(
    make_server: MakeServer, fake: FakeOpenAI, short_ulaw: bytes
) -> None:
    fake.transcripts.append("Bye now.")
    fake.replies.append(ChatScript("Goodbye, have a lovely day.", end_call=True))
    server = make_server(**openai_env(fake))
    peer = await open_call(server)
    talker = background(say(peer, short_ulaw, tail_ms=8000))
    assert await peer.wait_closed(15) == 1000
    talker.cancel()
    assert heard_ms(peer) == pytest.approx(tts_ms("Goodbye, have a lovely day."), abs=TOLERANCE_MS)
    await peer.close()


async def test_farewell_is_spoken_when_the_call_is_too_long(
    make_server: MakeServer, fake: FakeOpenAI
) -> None:
    server = make_server(
        **openai_env(fake, BRIDGE_MAX_CALL_S=1, BRIDGE_FAREWELL_MESSAGE="Time is up, bye.")
    )
    peer = await open_call(server)
    talker = background(peer.silence(10_000))
    assert await peer.wait_closed(10) == 1000
    talker.cancel()
    assert spoken(fake) == ["Time is up, bye."]
    assert heard_ms(peer) == pytest.approx(tts_ms("Time is up, bye."), abs=TOLERANCE_MS)
    await peer.close()


# -- failures ------------------------------------------------------------------------------


async def test_transient_errors_are_retried_into_a_normal_reply(
    make_server: MakeServer, fake: FakeOpenAI, short_ulaw: bytes
) -> None:
    fake.fail("transcriptions", Fault.http(500))
    fake.fail("chat", Fault.http(429, retry_after="0.4"))
    fake.fail("speech", Fault.http(503))
    fake.replies.append(ChatScript("All good."))
    server = make_server(**openai_env(fake))
    peer = await open_call(server)
    await say_and_listen(peer, short_ulaw)
    await peer.close()
    assert heard_ms(peer) == pytest.approx(tts_ms("All good."), abs=TOLERANCE_MS)
    assert [len(fake.to(e)) for e in ("transcriptions", "chat", "speech")] == [2, 2, 2]
    first, second = fake.to("chat")
    assert second.started_at - first.started_at >= 0.4  # Retry-After was honoured


async def test_an_error_event_before_the_first_sentence_is_retried(
    make_server: MakeServer, fake: FakeOpenAI, short_ulaw: bytes
) -> None:
    fake.fail("chat", Fault.error_event(after_chunks=2))  # after "All", before "good."
    fake.replies.extend([ChatScript("All good."), ChatScript("All good.")])
    server = make_server(**openai_env(fake))
    peer = await open_call(server)
    await say_and_listen(peer, short_ulaw)
    await peer.close()
    assert heard_ms(peer) == pytest.approx(tts_ms("All good."), abs=TOLERANCE_MS)
    assert len(fake.to("chat")) == 2
    assert spoken(fake) == ["All good."]


@pytest.mark.parametrize("kind", ["500", "hang", "drop"])
@pytest.mark.parametrize("stage", ["transcriptions", "chat", "speech"])
async def test_a_stage_that_keeps_failing_gives_the_apology_and_the_call_goes_on(
    make_server: MakeServer, fake: FakeOpenAI, short_ulaw: bytes, stage: Any, kind: str
) -> None:
    fault = {"500": Fault.http(500), "hang": Fault.hang(), "drop": Fault.drop()}[kind]
    fake.fail(stage, fault, times=None)
    server = make_server(**openai_env(fake))
    peer = await open_call(server)
    await say(peer, short_ulaw)
    ended_at = time.monotonic()
    await peer.wait_for_media(1, timeout_s=10)
    assert time.monotonic() - ended_at < 2 + 1.5  # the deadline, not the client's retries
    await listen(peer)
    assert heard_ms(peer) == pytest.approx(APOLOGY_MS, abs=TOLERANCE_MS)
    assert len(fake.to(stage)) >= 2  # it was retried
    fake.heal()
    fake.replies.append(ChatScript("Back again."))
    before = len(peer.played)
    await say_and_listen(peer, short_ulaw)
    assert heard_ms(peer, before) == pytest.approx(tts_ms("Back again."), abs=TOLERANCE_MS)
    assert peer.close_code is None
    await peer.close()


async def test_speech_failing_mid_sentence_is_not_replayed(
    make_server: MakeServer, fake: FakeOpenAI, short_ulaw: bytes
) -> None:
    fake.replies.append(ChatScript("A sentence long enough to be cut in the middle."))
    fake.fail("speech", Fault.drop(after_chunks=3), times=None)  # 300 ms, then the socket dies
    server = make_server(**openai_env(fake))
    peer = await open_call(server)
    await say_and_listen(peer, short_ulaw)
    await peer.close()
    assert len(fake.to("speech")) == 1  # not retried: its start was already heard
    assert heard_ms(peer) == pytest.approx(300 + APOLOGY_MS, abs=TOLERANCE_MS)


async def test_toy_gets_response_error_and_the_next_turn_works(
    make_server: MakeServer, fake: FakeOpenAI
) -> None:
    fake.fail("chat", Fault.http(500), times=None)
    server = make_server(**openai_env(fake))
    toy = await open_toy(server, token=None, idle_mic=True)
    await toy.wait_responses(1, 10)  # no greeting: a bare COMPLETE opens the first slot
    await toy.speak(hello_16k())
    failed = (await toy.wait_responses(2, 15))[1]
    assert failed.ok is False and failed.decoded_ms == 0
    fake.heal()
    fake.replies.append(ChatScript("Now it works."))
    await toy.speak(hello_16k())
    reply = (await toy.wait_responses(3, 15))[2]
    assert reply.ok and reply.decoded_ms >= tts_ms("Now it works.") - 10
    await toy.close()


async def test_a_bad_key_fails_fast_and_is_logged_once(
    make_server: MakeServer, fake: FakeOpenAI, short_ulaw: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    server = make_server(**openai_env(fake, BRIDGE_OPENAI_API_KEY="sk-wrong"))
    peer = await open_call(server)
    with caplog.at_level(logging.ERROR, logger="pipeline.agents.providers.openai"):
        for _ in range(2):
            before = len(peer.played)
            await say(peer, short_ulaw)
            ended_at = time.monotonic()
            await peer.wait_for_media(len(peer.timeline.media_times) + 1, timeout_s=10)
            assert time.monotonic() - ended_at < 1.0  # no retries
            await listen(peer)
            assert heard_ms(peer, before) == pytest.approx(APOLOGY_MS, abs=TOLERANCE_MS)
    await peer.close()
    assert len(fake.to("transcriptions")) == 2  # one request per turn
    rejected = [r for r in caplog.records if "rejected the API key" in r.getMessage()]
    assert len(rejected) == 1 and "HTTP 401" in rejected[0].getMessage()


# -- personas and per-stage servers --------------------------------------------------------


async def test_a_number_route_gives_the_call_its_persona(
    make_server: MakeServer, fake: FakeOpenAI, short_ulaw: bytes, tmp_path: Path
) -> None:
    personas = tmp_path / "personas.toml"
    personas.write_text(
        '[personas.pirate]\nsystem_prompt = "You are a pirate."\n'
        'first_message = "Ahoy there!"\nvoice = "ash"\n\n'
        '[numbers]\n"+15551230001" = "pirate"\n',
        encoding="utf-8",
    )
    fake.replies.append(ChatScript("Arr, that it be."))
    server = make_server(
        **openai_env(
            fake,
            BRIDGE_PERSONAS_FILE=str(personas),
            BRIDGE_FIRST_MESSAGE="Hello.",
            BRIDGE_SYSTEM_PROMPT="You are plain.",
        )
    )
    pirate = await open_call(server, params={"to": "+15551230001", "from": "+15550000000"})
    await listen(pirate)
    await say_and_listen(pirate, short_ulaw)
    await pirate.close()
    plain = await open_call(server, params={"to": "+15559999999"})
    await listen(plain)
    await plain.close()
    greeting, reply, plain_greeting = fake.to("speech")
    assert (greeting.body["input"], greeting.body["voice"]) == ("Ahoy there!", "ash")
    assert reply.body["voice"] == "ash"
    assert (plain_greeting.body["input"], plain_greeting.body["voice"]) == ("Hello.", "alloy")
    [chat] = fake.to("chat")
    assert chat.body["messages"][:2] == [
        {"role": "system", "content": "You are a pirate."},
        {"role": "assistant", "content": "Ahoy there!"},
    ]


async def test_each_stage_can_use_its_own_server_and_key(
    make_server: MakeServer, fake: FakeOpenAI, short_ulaw: bytes
) -> None:
    whisper = FakeOpenAI(api_key="stt-key").start()
    try:
        whisper.transcripts.append("Routed to the speech server.")
        server = make_server(
            **openai_env(
                fake,
                BRIDGE_OPENAI_STT_BASE_URL=whisper.base_url,
                BRIDGE_OPENAI_STT_API_KEY="stt-key",
                BRIDGE_OPENAI_STT_MODEL="whisper-1",
            )
        )
        peer = await open_call(server)
        await say_and_listen(peer, short_ulaw)
        await peer.close()
    finally:
        whisper.stop()
    assert {r.endpoint for r in whisper.requests} == {"transcriptions"}
    assert {r.endpoint for r in fake.requests} == {"chat", "speech"}
    [stt] = whisper.to("transcriptions")
    assert stt.body["model"] == "whisper-1" and stt.headers["authorization"] == "Bearer stt-key"
    assert fake.to("chat")[0].body["messages"][-1]["content"] == "Routed to the speech server."
