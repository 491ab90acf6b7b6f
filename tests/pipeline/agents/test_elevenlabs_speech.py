"""ElevenLabs streaming speech against the fake ElevenLabs on loopback: the format each far end
gets, one socket per call and one context per reply, the sentences each piece of audio belongs
to, barge-in, keep-alives, and every way the socket fails."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from bench.server import free_port
from pipeline.agents.base import CallInfo
from pipeline.agents.cascade.stages import Attempt, SpeechTurn
from pipeline.agents.providers.elevenlabs import (
    ElevenLabsOptions,
    ElevenLabsSpeech,
    ElevenLabsSpeechFactory,
)
from pipeline.agents.providers.elevenlabs.spans import SentenceSpans
from pipeline.agents.providers.websocket import StreamError
from pipeline.agents.retry import Retry
from pipeline.audio import PCM16_8K, PCM16_16K, PCM16_24K, ULAW_8K, AudioSpec
from tests.fakes.elevenlabs import API_KEY, FakeElevenLabs, Fault, tts_ms

PHONE = CallInfo("call-phone", "twilio", PCM16_8K, wire_in=ULAW_8K, wire_out=ULAW_8K)
TOY = CallInfo("call-toy", "toy", PCM16_24K)
SENTENCES = ["Hello there.", "How can I help you today?", "Ask me anything."]
VOICE_SETTINGS = {"stability": 0.5, "similarity_boost": 0.8}
LONG = "This answer is long enough to be interrupted well before its end. "


class Heard:
    """What a reply handed on: each piece of audio with the sentences it belongs to."""

    def __init__(self) -> None:
        self.pieces: list[tuple[bytes, int, int]] = []

    async def __call__(self, audio: bytes, first: int, last: int) -> None:
        self.pieces.append((audio, first, last))

    @property
    def audio(self) -> bytes:
        return b"".join(audio for audio, _, _ in self.pieces)

    def bytes_of(self, sentence: int) -> int:
        return sum(len(a) for a, first, last in self.pieces if first == last == sentence)


@pytest.fixture
def fake() -> Iterator[FakeElevenLabs]:
    with FakeElevenLabs(pace=50) as server:
        yield server


MakeStage = Callable[..., ElevenLabsSpeech]


@pytest.fixture
async def make_stage(fake: FakeElevenLabs) -> AsyncIterator[MakeStage]:
    made: list[ElevenLabsSpeech] = []

    def make(call: CallInfo = PHONE, **options: Any) -> ElevenLabsSpeech:
        options = {"api_key": API_KEY, "voice_id": "voice1", "base_url": fake.base_url, **options}
        stage = ElevenLabsSpeechFactory(ElevenLabsOptions(**options)).create(call)
        made.append(stage)
        return stage

    yield make
    for stage in made:
        await stage.aclose()


def attempt(turn_id: int = 1, timeout_s: float = 2.0) -> Attempt:
    return Attempt(turn_id, f"call-{turn_id}-tts", timeout_s)


async def reply(
    stage: ElevenLabsSpeech, sentences: list[str], turn_id: int = 1, voice: str = ""
) -> Heard:
    heard = Heard()
    turn = stage.speak(voice, heard, attempt(turn_id))
    for text in sentences:
        await turn.say(text)
    await turn.finish()
    return heard


def spoken_bytes(text: str, spec: AudioSpec) -> int:
    """What the fake speaks for one sentence as the stage sends it (with its space)."""
    return round(tts_ms(f"{text} ") * spec.bytes_per_ms)


async def test_a_phone_gets_ulaw_8000_as_the_provider_sent_it(
    fake: FakeElevenLabs, make_stage: MakeStage
) -> None:
    stage = make_stage(PHONE, voice_settings=VOICE_SETTINGS)
    assert (stage.output_format, stage.output_spec) == ("ulaw_8000", ULAW_8K)
    heard = await reply(stage, SENTENCES[:2])

    conn = fake.last
    assert conn.endpoint == "multi-stream-input" and conn.voice_id == "voice1"
    assert conn.query == {"model_id": "eleven_flash_v2_5", "output_format": "ulaw_8000"}
    assert conn.auth == "header" and conn.headers["xi-api-key"] == "<redacted>"
    assert len(heard.audio) == sum(spoken_bytes(s, ULAW_8K) for s in SENTENCES[:2])
    assert heard.audio == b"".join(m.audio for m in conn.audio_of("t0"))  # nothing transcoded
    first, *rest = conn.messages("t0")
    assert first.data == {"text": " ", "context_id": "t0", "voice_settings": VOICE_SETTINGS}
    assert [m.data for m in rest] == [
        {"text": "Hello there. ", "context_id": "t0", "flush": True},
        {"text": "How can I help you today? ", "context_id": "t0", "flush": True},
        {"context_id": "t0", "close_context": True},
    ]
    await fake.wait_for(lambda: [m.context_id for m in conn.finals()] == ["t0"], what="isFinal")


@pytest.mark.parametrize(
    ("call", "output_format", "spec"),
    [(TOY, "pcm_24000", PCM16_24K), (CallInfo("c", "toy", PCM16_16K), "pcm_16000", PCM16_16K)],
)
async def test_a_toy_gets_pcm_at_its_own_rate(
    fake: FakeElevenLabs, make_stage: MakeStage, call: CallInfo, output_format: str, spec: AudioSpec
) -> None:
    fake.chars_per_message = 3
    stage = make_stage(call)
    assert (stage.output_format, stage.output_spec) == (output_format, spec)
    heard = await reply(stage, SENTENCES)
    assert fake.last.query["output_format"] == output_format
    assert all(len(audio) % 2 == 0 for audio, _, _ in heard.pieces)  # whole samples only
    assert len(heard.audio) == sum(spoken_bytes(s, spec) for s in SENTENCES)


async def test_one_socket_serves_every_reply_with_a_context_each(
    fake: FakeElevenLabs, make_stage: MakeStage
) -> None:
    stage = make_stage(TOY)
    for turn_id, text in enumerate(SENTENCES, start=1):
        heard = await reply(stage, [text], turn_id)
        assert len(heard.audio) == spoken_bytes(text, PCM16_24K)
    assert len(fake.connections) == 1
    conn = fake.last
    assert conn.opened_contexts() == conn.closed_contexts() == ["t0", "t1", "t2"]
    assert [conn.text_sent(f"t{i}") for i in range(3)] == SENTENCES


async def test_each_piece_of_audio_names_the_sentence_it_speaks(
    fake: FakeElevenLabs, make_stage: MakeStage
) -> None:
    fake.chars_per_message = 7
    stage = make_stage(TOY)
    heard = await reply(stage, SENTENCES, voice="persona-voice")
    assert fake.last.voice_id == "persona-voice"  # the reply's voice, not the default
    assert all(first == last for _, first, last in heard.pieces)
    indexes = [first for _, first, _ in heard.pieces]
    assert indexes == sorted(indexes) and set(indexes) == {0, 1, 2}
    for index, text in enumerate(SENTENCES):
        assert heard.bytes_of(index) == spoken_bytes(text, PCM16_24K)


def test_spans_cut_audio_where_a_sentence_begins() -> None:
    spans = SentenceSpans(PCM16_8K)  # 16 bytes a millisecond
    assert spans.add("Hi.") == 0 and spans.add("Yo!") == 1 and spans.owed
    chars = {"chars": list("Hi. Y"), "charStartTimesMs": [0, 20, 40, 60, 80]}
    pieces = spans.cut(bytes(1601), chars)  # 100 ms and an odd byte
    assert [(len(a), f, la) for a, f, la in pieces] == [(1280, 0, 0), (320, 1, 1)]
    rest = {"chars": list("o! "), "charStartTimesMs": [0, 20, 40]}
    assert [(len(a), f, la) for a, f, la in spans.cut(bytes(959), rest)] == [(960, 1, 1)]
    assert not spans.owed
    assert spans.add("More words.") == 2 and spans.add("And more.") == 3
    assert [(len(a), f, la) for a, f, la in spans.cut(bytes(10), None)] == [(10, 2, 3)]
    assert not spans.owed  # without alignment: owed only until the first audio


async def test_cancel_drops_the_rest_and_the_socket_serves_the_next_reply(
    fake: FakeElevenLabs, make_stage: MakeStage
) -> None:
    fake.pace, fake.chars_per_message = 4, 5
    stage = make_stage(TOY)
    heard = Heard()
    turn = stage.speak("", heard, attempt(1))
    await turn.say(LONG)
    await fake.wait_for(lambda: len(heard.pieces) >= 2, what="some audio")
    await turn.cancel()
    await turn.cancel()  # idempotent
    kept = len(heard.pieces)
    conn = fake.last
    await fake.wait_for(lambda: conn.closed_contexts() == ["t0"], what="close_context")
    await fake.wait_for(lambda: [m.context_id for m in conn.finals()] == ["t0"], what="isFinal")
    assert len(heard.pieces) == kept < len(conn.audio_of("t0"))  # the rest was dropped
    await turn.finish()  # a cancelled reply has nothing left to wait for

    after = await reply(stage, ["Next one."], turn_id=2)
    assert len(after.audio) == spoken_bytes("Next one.", PCM16_24K)
    assert len(fake.connections) == 1 and conn.opened_contexts() == ["t0", "t1"]


async def test_a_wrong_key_is_permanent_and_never_logged(
    fake: FakeElevenLabs, make_stage: MakeStage, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "sk-wrong-secret"
    stage = make_stage(PHONE, api_key=secret)
    turn = stage.speak("", Heard(), attempt())
    with caplog.at_level(logging.DEBUG), pytest.raises(StreamError) as failed:
        await turn.say("Hello.")
        await turn.finish()
    assert failed.value.status == 401 and stage.classify(failed.value) is None
    with caplog.at_level(logging.DEBUG):
        stage.report_permanent(failed.value)
        stage.report_permanent(failed.value)
    await fake.wait_for(lambda: len(fake.last.errors()) == 1, what="the error message")
    assert fake.last.errors()[0].data["error"] == "invalid_api_key"
    ours = [r.getMessage() for r in caplog.records if r.name.startswith("pipeline")]
    assert sum("rejected the credentials" in line for line in ours) == 1
    assert all(secret not in line for line in ours)  # (the fake's own uvicorn logs it)
    assert secret not in repr(stage._options)


async def test_a_refused_handshake_is_retried(fake: FakeElevenLabs, make_stage: MakeStage) -> None:
    stage = make_stage(PHONE)
    fake.fail("any", Fault.http(429, retry_after="1"))
    with pytest.raises(InvalidStatus) as refused:
        await reply(stage, ["Hello."])
    assert stage.classify(refused.value) == Retry(after_s=1.0)
    heard = await reply(stage, ["Hello."], turn_id=2)  # the next attempt connects
    assert len(heard.audio) == spoken_bytes("Hello.", ULAW_8K)

    nobody = make_stage(PHONE, base_url=f"ws://127.0.0.1:{free_port()}")
    with pytest.raises(OSError) as unreachable:
        await reply(nobody, ["Hello."])
    assert nobody.classify(unreachable.value) == Retry()


async def test_a_drop_mid_stream_fails_the_reply_and_the_next_one_reconnects(
    fake: FakeElevenLabs, make_stage: MakeStage
) -> None:
    fake.chars_per_message = 4
    fake.fail("any", Fault.drop(after_messages=2))
    stage = make_stage(TOY)
    heard = Heard()
    turn = stage.speak("", heard, attempt())
    with pytest.raises(ConnectionClosed) as dropped:
        await turn.say(LONG)
        await turn.finish()
    assert stage.classify(dropped.value) == Retry()
    assert len(heard.audio) == 2 * round(tts_ms("abcd") * PCM16_24K.bytes_per_ms)

    after = await reply(stage, ["Again."], turn_id=2)
    assert len(after.audio) == spoken_bytes("Again.", PCM16_24K)
    assert [c.closed_by for c in fake.connections] == ["drop", None]


async def test_a_stall_times_out_and_the_next_reply_reconnects(
    fake: FakeElevenLabs, make_stage: MakeStage
) -> None:
    fake.fail("any", Fault.stall())
    stage = make_stage(PHONE)
    heard = Heard()
    turn = stage.speak("", heard, attempt(timeout_s=0.3))
    started_s = time.monotonic()
    with pytest.raises(TimeoutError) as stalled:
        await turn.say("Hello.")
        await turn.finish()
    assert 0.25 < time.monotonic() - started_s < 1.5 and heard.pieces == []
    assert stage.classify(stalled.value) == Retry()

    after = await reply(stage, ["Hello."], turn_id=2)
    assert len(after.audio) == spoken_bytes("Hello.", ULAW_8K) and len(fake.connections) == 2


async def test_keepalives_hold_an_idle_socket_and_a_waiting_context(
    fake: FakeElevenLabs, make_stage: MakeStage
) -> None:
    stage = make_stage(PHONE, keepalive_interval_s=0.1, inactivity_timeout_s=0.3)
    await reply(stage, ["Hello."])
    await asyncio.sleep(0.8)  # idle between replies: almost three inactivity timeouts

    heard = Heard()
    turn = stage.speak("", heard, attempt(2))
    await turn.say("One.")
    await asyncio.sleep(0.6)  # the model is slow to write the next sentence
    await turn.say("Two.")
    await turn.finish()

    conn = fake.last
    assert len(fake.connections) == 1 and conn.query["inactivity_timeout"] == "0.3"
    assert conn.errors() == [] and conn.text_sent("t1") == "One. Two."
    assert len(conn.keepalives(None)) >= 5 and len(conn.keepalives("t1")) >= 3
    assert heard.bytes_of(0) + heard.bytes_of(1) == len(heard.audio) > 0


async def test_a_reply_with_nothing_said_opens_no_context(
    fake: FakeElevenLabs, make_stage: MakeStage
) -> None:
    stage = make_stage(PHONE)
    turn: SpeechTurn = stage.speak("", Heard(), attempt())
    await turn.finish()
    await turn.cancel()
    assert fake.connections == []


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"base_url": "wss://api.elevenlabs.io/v1"}, "only the scheme, host and port"),
        ({"keepalive_interval_s": 30.0}, "under the inactivity timeout"),
        ({"model": "eleven_v3"}, "no streaming"),
        ({"api_key": ""}, "BRIDGE_ELEVENLABS_API_KEY"),
    ],
)
def test_options_are_checked_at_start_up(options: dict[str, Any], error: str) -> None:
    with pytest.raises(ValueError, match=error):
        ElevenLabsOptions(**{"api_key": "k", "voice_id": "v", **options})
