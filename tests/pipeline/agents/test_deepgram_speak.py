"""Deepgram Aura streaming speech against the fake Deepgram on loopback: the format each far
end gets, one socket per call, at most two flushes per reply and the sentences each flush's
audio belongs to, barge-in, the Cloudflare route, and every way the socket fails."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Iterator

import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed, InvalidStatus

from pipeline.agents.base import CallInfo
from pipeline.agents.cascade.stages import Attempt
from pipeline.agents.providers.deepgram.access import DeepgramAccess
from pipeline.agents.providers.deepgram.speak import (
    DeepgramSpeakFactory,
    DeepgramSpeech,
    SpeakOptions,
)
from pipeline.agents.providers.deepgram.speak_budget import FlushBudget
from pipeline.agents.providers.deepgram.speak_format import (
    deepgram_model,
    output_spec,
    workers_ai_speaker,
)
from pipeline.agents.providers.deepgram.speak_turn import FlushRefused, SpeechStalled
from pipeline.agents.providers.websocket import StreamError
from pipeline.agents.retry import Retry
from pipeline.audio import PCM16_8K, PCM16_16K, PCM16_24K, ULAW_8K, AudioSpec
from tests.fakes.deepgram import API_KEY, CF_TOKEN, Connection, FakeDeepgram, Fault, tts_ms

PHONE = CallInfo("call-phone", "twilio", PCM16_8K, wire_in=ULAW_8K, wire_out=ULAW_8K)
TOY = CallInfo("call-toy", "toy", PCM16_24K)
SENTENCES = [
    "Hello there.",
    "How are you today?",
    "The weather is fine.",
    "It may rain later.",
    "Take an umbrella.",
    "Goodbye for now.",
]


class Heard:
    """What a reply handed on: each piece of audio with the sentences it belongs to."""

    def __init__(self, fail_after: int | None = None) -> None:
        self.pieces: list[tuple[bytes, int, int]] = []
        self._fail_after = fail_after

    async def __call__(self, audio: bytes, first: int, last: int) -> None:
        if self._fail_after is not None and len(self.pieces) >= self._fail_after:
            raise RuntimeError("the call went away")
        self.pieces.append((audio, first, last))

    @property
    def audio(self) -> bytes:
        return b"".join(audio for audio, _, _ in self.pieces)

    def ms(self, spec: AudioSpec) -> float:
        return spec.duration_ms(len(self.audio))

    def spans(self) -> list[tuple[int, int]]:
        """Each distinct (first, last), in the order they came."""
        out: list[tuple[int, int]] = []
        for _, first, last in self.pieces:
            if not out or out[-1] != (first, last):
                out.append((first, last))
        return out

    def ms_of(self, span: tuple[int, int], spec: AudioSpec) -> float:
        return spec.duration_ms(sum(len(a) for a, f, la in self.pieces if (f, la) == span))


@pytest.fixture
def fake() -> Iterator[FakeDeepgram]:
    server = FakeDeepgram().start()
    yield server
    server.stop()


def direct(fake: FakeDeepgram, key: str = API_KEY) -> DeepgramAccess:
    return DeepgramAccess("deepgram", fake.ws, key)


def gateway(fake: FakeDeepgram) -> DeepgramAccess:
    return DeepgramAccess("cloudflare", fake.ws, CF_TOKEN, "acct", "gw")


@pytest.fixture
async def phone(fake: FakeDeepgram) -> AsyncIterator[DeepgramSpeech]:
    stage = DeepgramSpeakFactory(SpeakOptions(direct(fake))).create(PHONE)
    yield stage
    await stage.aclose()


def attempt(turn_id: int = 1, timeout_s: float = 2.0) -> Attempt:
    return Attempt(turn_id, f"call-{turn_id}-tts", timeout_s)


async def reply(stage: DeepgramSpeech, sentences: list[str], turn_id: int = 1) -> Heard:
    heard = Heard()
    turn = stage.speak("", heard, attempt(turn_id))
    for text in sentences:
        await turn.say(text)
    await turn.finish()
    return heard


def span_ms(sentences: list[str], first: int, last: int) -> float:
    """The fake's speech for a flush of sentences ``first..last`` of a reply: every sentence
    after the reply's first goes out with a leading space."""
    return tts_ms(" ".join(sentences[first : last + 1])) + (20 if first else 0)


def reply_ms(sentences: list[str]) -> float:
    return span_ms(sentences, 0, len(sentences) - 1)


def only(fake: FakeDeepgram) -> Connection:
    (conn,) = fake.to("aura")
    return conn


# -- formats and the socket's query ----------------------------------------------------------


async def test_a_phone_gets_mulaw_8k_straight_from_aura(
    fake: FakeDeepgram, phone: DeepgramSpeech, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, "pipeline.agents.providers")
    assert phone.provider == "deepgram" and phone.output_spec == ULAW_8K

    heard = await reply(phone, ["Hello there, how can I help?"])

    conn = only(fake)
    assert conn.query == {"model": "aura-2-thalia-en", "encoding": "mulaw", "sample_rate": "8000"}
    assert conn.auth_scheme == "Token" and conn.presented(API_KEY)
    assert heard.ms(ULAW_8K) == tts_ms("Hello there, how can I help?")
    assert heard.audio == conn.sent_audio  # every byte, in order
    assert heard.spans() == [(0, 0)]
    assert [m.json for m in conn.messages][:2] == [
        {"type": "Speak", "text": "Hello there, how can I help?"},
        {"type": "Flush"},
    ]
    assert API_KEY not in caplog.text


async def test_a_toy_gets_linear16_at_24k_in_whole_samples(fake: FakeDeepgram) -> None:
    stage = DeepgramSpeakFactory(SpeakOptions(direct(fake))).create(TOY)
    assert stage.output_spec == PCM16_24K

    heard = await reply(stage, ["Hi!", "Let's play a game."])
    await stage.aclose()

    assert only(fake).query["encoding"] == "linear16"
    assert only(fake).query["sample_rate"] == "24000"
    assert all(len(audio) % 2 == 0 for audio, _, _ in heard.pieces)
    assert heard.ms(PCM16_24K) == reply_ms(["Hi!", "Let's play a game."])


def test_the_format_follows_the_far_end_unless_linear16_is_forced() -> None:
    assert output_spec("auto", ULAW_8K, 24000) == ULAW_8K
    assert output_spec("auto", PCM16_24K, 24000) == PCM16_24K
    assert output_spec("auto", PCM16_16K, 24000) == PCM16_16K
    assert output_spec("auto", AudioSpec("pcm16", 44100), 24000) == PCM16_24K
    assert output_spec("linear16", ULAW_8K, 24000) == PCM16_24K
    assert output_spec("mulaw", PCM16_24K, 24000) == ULAW_8K
    assert deepgram_model("thalia") == "aura-2-thalia-en"
    assert deepgram_model("aura-asteria-en") == "aura-asteria-en"
    assert workers_ai_speaker("aura-2-thalia-en") == "thalia"
    assert workers_ai_speaker("luna") == "luna"
    with pytest.raises(ValueError, match="linear16_rate_hz"):
        SpeakOptions(DeepgramAccess("deepgram", "ws://x", "k"), linear16_rate_hz=22050)


@contextlib.asynccontextmanager
async def scripted_aura(answer: list[bytes | str]) -> AsyncIterator[DeepgramAccess]:
    """A bare server that answers every ``Flush`` with ``answer``: what the fake does not do."""

    async def aura(ws: ServerConnection) -> None:
        async for message in ws:
            if json.loads(message).get("type") == "Flush":
                for item in answer:
                    await ws.send(item)

    async with serve(aura, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        yield DeepgramAccess("deepgram", f"ws://127.0.0.1:{port}", "key")


async def test_linear16_split_mid_sample_reaches_on_audio_as_whole_samples() -> None:
    """Aura's binary messages need not end on a sample: an odd byte waits for the next."""
    flushed = json.dumps({"type": "Flushed", "sequence_id": 0})
    async with scripted_aura([b"\x01", b"\x02\x03", b"\x04\x05\x06", flushed]) as access:
        stage = DeepgramSpeakFactory(SpeakOptions(access)).create(TOY)
        heard = await reply(stage, ["Hi."])
        await stage.aclose()

    assert [audio for audio, _, _ in heard.pieces] == [b"\x01\x02", b"\x03\x04\x05\x06"]


async def test_an_error_message_fails_the_reply_transiently() -> None:
    error = json.dumps({"type": "Error", "err_code": "INTERNAL", "err_msg": "boom"})
    async with scripted_aura([error]) as access:
        stage = DeepgramSpeakFactory(SpeakOptions(access)).create(PHONE)
        exc = await _fails(stage, ["Hi."])
        await asyncio.wait_for(stage.aclose(), 2.0)

    assert isinstance(exc, StreamError) and "boom" in str(exc)
    assert stage.classify(exc) == Retry()


# -- one socket, few flushes ------------------------------------------------------------------


async def test_one_socket_serves_every_reply_of_the_call(
    fake: FakeDeepgram, phone: DeepgramSpeech
) -> None:
    for turn_id, sentences in enumerate([SENTENCES[:1], SENTENCES[:2], SENTENCES[2:5]], 1):
        heard = await reply(phone, sentences, turn_id)
        assert heard.ms(ULAW_8K) == reply_ms(sentences)

    conn = only(fake)
    assert not conn.closed
    assert len(conn.of_type("Flush")) == 1 + 2 + 2


async def test_a_long_reply_is_flushed_twice_and_its_first_sentence_told_apart(
    fake: FakeDeepgram, phone: DeepgramSpeech
) -> None:
    heard = await reply(phone, SENTENCES)

    assert len(only(fake).of_type("Flush")) == 2
    assert heard.spans() == [(0, 0), (1, 5)]
    assert heard.ms_of((0, 0), ULAW_8K) == tts_ms(SENTENCES[0])
    assert heard.ms_of((1, 5), ULAW_8K) == span_ms(SENTENCES, 1, 5)


async def test_the_first_sentence_is_heard_before_the_reply_is_finished(
    fake: FakeDeepgram, phone: DeepgramSpeech
) -> None:
    heard = Heard()
    turn = phone.speak("", heard, attempt())
    await turn.say(SENTENCES[0])
    await turn.say(SENTENCES[1])
    await fake.wait_for(lambda: turn.spoken_through == 0, 2.0, "the first flush answered")
    assert heard.spans() == [(0, 0)] and heard.ms(ULAW_8K) == tts_ms(SENTENCES[0])
    await turn.finish()
    assert heard.spans() == [(0, 0), (1, 1)] and turn.spoken_through == 1


async def test_without_early_flush_budget_a_reply_is_flushed_once(fake: FakeDeepgram) -> None:
    stage = DeepgramSpeakFactory(SpeakOptions(direct(fake), early_flush_below=0)).create(PHONE)
    heard = await reply(stage, SENTENCES[:3])
    await stage.aclose()

    assert len(only(fake).of_type("Flush")) == 1
    assert heard.spans() == [(0, 2)]
    assert heard.ms(ULAW_8K) == reply_ms(SENTENCES[:3])


async def test_a_socket_out_of_flushes_is_replaced_before_a_reply(fake: FakeDeepgram) -> None:
    stage = DeepgramSpeakFactory(SpeakOptions(direct(fake), flush_limit=2)).create(PHONE)
    await reply(stage, SENTENCES[:2], 1)  # early + closing flush: the budget is spent
    heard = await reply(stage, SENTENCES[:2], 2)
    await stage.aclose()

    first, _ = fake.to("aura")
    assert first.of_type("Close") and len(first.of_type("Flush")) == 2
    assert heard.ms(ULAW_8K) == reply_ms(SENTENCES[:2])


def test_the_flush_budget_keeps_the_last_flushes_for_the_ends_of_replies() -> None:
    now = [0.0]
    budget = FlushBudget(limit=4, window_s=60.0, early_below=2, clock=lambda: now[0])
    assert budget.allows_early()
    budget.spend()
    budget.spend()
    assert not budget.allows_early() and budget.has_room()
    budget.spend()
    budget.spend()
    assert not budget.has_room()
    now[0] = 61.5  # past the window and its margin
    assert budget.used() == 0 and budget.allows_early()


async def test_a_new_voice_gets_a_socket_of_its_own(fake: FakeDeepgram) -> None:
    stage = DeepgramSpeakFactory(SpeakOptions(direct(fake))).create(PHONE)
    await reply(stage, ["One."])
    turn = stage.speak("aura-2-luna-en", Heard(), attempt(2))
    await turn.say("Two.")
    await turn.finish()
    await stage.aclose()

    assert [c.query["model"] for c in fake.to("aura")] == ["aura-2-thalia-en", "aura-2-luna-en"]


async def test_prepare_opens_the_socket_the_first_reply_uses(
    fake: FakeDeepgram, phone: DeepgramSpeech
) -> None:
    await phone.prepare()
    assert len(fake.to("aura")) == 1
    heard = await reply(phone, ["Ready."])
    assert heard.ms(ULAW_8K) == tts_ms("Ready.") and len(fake.to("aura")) == 1


async def test_aclose_says_close_and_closes_the_socket(
    fake: FakeDeepgram, phone: DeepgramSpeech
) -> None:
    await reply(phone, ["Bye."])
    await phone.aclose()
    conn = only(fake)
    await fake.wait_for(lambda: conn.closed, 2.0, "the socket to close")
    assert conn.of_type("Close")


# -- barge-in ---------------------------------------------------------------------------------


async def test_cancel_clears_the_server_and_nothing_more_is_heard(
    fake: FakeDeepgram, phone: DeepgramSpeech
) -> None:
    fake.tuning.aura_chunk_delay_s = 0.02  # 100 ms chunks, 5x faster than real time
    long_text = "This answer goes on and on for quite a while, long enough to interrupt it."
    heard = Heard()
    turn = phone.speak("", heard, attempt())
    await turn.say(long_text)
    await turn.say("And a second sentence.")
    await fake.wait_for(lambda: len(heard.pieces) >= 2, 2.0, "audio")
    await turn.cancel()
    await turn.cancel()  # idempotent
    at_cancel = len(heard.pieces)
    await turn.finish()  # returns at once
    await asyncio.sleep(0.3)

    assert len(heard.pieces) == at_cancel
    assert heard.ms(ULAW_8K) < tts_ms(long_text)
    conn = only(fake)
    assert len(conn.of_type("Clear")) == 1

    after = await reply(phone, ["Yes?"], 2)  # the same socket, clean
    assert after.ms(ULAW_8K) == tts_ms("Yes?") and after.spans() == [(0, 0)]
    assert len(fake.to("aura")) == 1 and conn.events("Cleared")


async def test_a_reply_cancelled_while_finishing_is_cleared(
    fake: FakeDeepgram, phone: DeepgramSpeech
) -> None:
    # slow chunks: on a loaded machine the reply must still be speaking when it is cancelled
    fake.tuning.aura_chunk_delay_s = 0.1
    heard = Heard()
    turn = phone.speak("", heard, attempt())
    await turn.say("A sentence long enough to be still speaking when the task is cancelled.")
    task = asyncio.create_task(turn.finish())
    await fake.wait_for(lambda: len(heard.pieces) >= 1, 2.0, "audio")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    at_cancel = len(heard.pieces)
    await asyncio.sleep(0.2)
    assert len(heard.pieces) == at_cancel and only(fake).of_type("Clear")


async def test_on_audio_failing_fails_the_reply_and_leaves_the_socket_usable(
    fake: FakeDeepgram, phone: DeepgramSpeech
) -> None:
    fake.tuning.aura_chunk_delay_s = 0.01
    turn = phone.speak("", Heard(fail_after=1), attempt())
    await turn.say("A sentence of several chunks, long enough to fail in the middle.")
    with pytest.raises(RuntimeError, match="went away"):
        await turn.finish()
    conn = only(fake)
    await fake.wait_for(lambda: bool(conn.of_type("Clear")), 2.0, "the Clear")

    heard = await reply(phone, ["Still here."], 2)
    assert heard.ms(ULAW_8K) == tts_ms("Still here.") and len(fake.to("aura")) == 1


# -- through Cloudflare AI Gateway ---------------------------------------------------------


async def test_through_the_gateway_the_voice_is_the_speaker(fake: FakeDeepgram) -> None:
    factory = DeepgramSpeakFactory(SpeakOptions(gateway(fake)))
    stage = factory.create(PHONE)
    assert factory.provider == "cloudflare" and stage.provider == "cloudflare"

    heard = await reply(stage, ["Hello from the gateway."])
    await stage.aclose()

    conn = only(fake)
    assert conn.route == "gateway" and (conn.account, conn.gateway) == ("acct", "gw")
    assert conn.query["model"] == "@cf/deepgram/aura-2-en" and conn.query["speaker"] == "thalia"
    assert conn.query["encoding"] == "mulaw" and conn.query["sample_rate"] == "8000"
    assert conn.headers["cf-aig-authorization"] == "Bearer <redacted>"
    assert conn.presented(CF_TOKEN) and "authorization" not in conn.headers
    assert heard.ms(ULAW_8K) == tts_ms("Hello from the gateway.")


async def test_the_gateway_can_be_asked_for_linear16_instead(fake: FakeDeepgram) -> None:
    stage = DeepgramSpeakFactory(SpeakOptions(gateway(fake), encoding="linear16")).create(PHONE)
    assert stage.output_spec == PCM16_24K
    heard = await reply(stage, ["Resampled later."])
    await stage.aclose()
    assert only(fake).query["encoding"] == "linear16"
    assert heard.ms(PCM16_24K) == tts_ms("Resampled later.")


# -- failures -----------------------------------------------------------------------------------


async def _fails(stage: DeepgramSpeech, sentences: list[str], timeout_s: float = 2.0) -> Exception:
    turn = stage.speak("", Heard(), attempt(timeout_s=timeout_s))
    try:
        for text in sentences:
            await turn.say(text)
        await turn.finish()
    except Exception as exc:
        return exc
    raise AssertionError("the reply did not fail")


async def test_a_bad_key_is_permanent_and_reported_once(
    fake: FakeDeepgram, caplog: pytest.LogCaptureFixture
) -> None:
    stage = DeepgramSpeakFactory(SpeakOptions(direct(fake, "wrong-key"))).create(PHONE)
    exc = await _fails(stage, ["Hello."])
    assert isinstance(exc, InvalidStatus) and exc.response.status_code == 401
    assert stage.classify(exc) is None
    stage.report_permanent(exc)
    stage.report_permanent(exc)
    await stage.aclose()
    reports = [r for r in caplog.records if "rejected the credentials" in r.getMessage()]
    assert len(reports) == 1 and "BRIDGE_DEEPGRAM_API_KEY" in reports[0].getMessage()
    assert "wrong-key" not in caplog.text


@pytest.mark.parametrize(
    ("fault", "verdict"),
    [(Fault.http(429, retry_after="1"), Retry(after_s=1.0)), (Fault.http(503), Retry())],
)
async def test_a_refused_handshake_is_transient_and_the_next_reply_connects(
    fake: FakeDeepgram, phone: DeepgramSpeech, fault: Fault, verdict: Retry
) -> None:
    fake.fail("aura", fault)
    exc = await _fails(phone, ["Hello."])
    assert phone.classify(exc) == verdict

    heard = await reply(phone, ["Hello."], 2)
    assert heard.ms(ULAW_8K) == tts_ms("Hello.")


async def test_a_connection_refused_is_transient(fake: FakeDeepgram) -> None:
    stage = DeepgramSpeakFactory(
        SpeakOptions(DeepgramAccess("deepgram", "ws://127.0.0.1:9", API_KEY))
    ).create(PHONE)
    exc = await _fails(stage, ["Hello."])
    assert stage.classify(exc) == Retry()
    await stage.aclose()


async def test_a_drop_mid_reply_fails_it_and_the_next_reply_reconnects(
    fake: FakeDeepgram, phone: DeepgramSpeech
) -> None:
    fake.fail("aura", Fault.drop(after_messages=3))  # Metadata and two chunks of audio
    heard = Heard()
    turn = phone.speak("", heard, attempt())
    await turn.say("A sentence that is long enough for several chunks of audio.")
    with pytest.raises(ConnectionClosed) as caught:
        await turn.finish()
    assert phone.classify(caught.value) == Retry()
    assert heard.pieces and turn.spoken_through == -1  # heard in part: not to be repeated

    heard = await reply(phone, ["Back again."], 2)
    assert heard.ms(ULAW_8K) == tts_ms("Back again.")
    assert len(fake.to("aura")) == 2


async def test_a_stall_times_out_and_the_next_reply_gets_a_fresh_socket(
    fake: FakeDeepgram, phone: DeepgramSpeech
) -> None:
    fake.fail("aura", Fault.stall(after_messages=1))  # Metadata, then nothing
    exc = await _fails(phone, ["Anyone there?"], timeout_s=0.3)
    assert isinstance(exc, SpeechStalled) and isinstance(exc, TimeoutError)
    assert phone.classify(exc) == Retry()

    heard = await reply(phone, ["Yes."], 2)
    assert heard.ms(ULAW_8K) == tts_ms("Yes.")
    stalled, _ = fake.to("aura")
    await fake.wait_for(lambda: stalled.closed, 2.0, "the stalled socket to close")


async def test_a_refused_early_flush_leaves_the_text_for_the_closing_one(
    fake: FakeDeepgram, phone: DeepgramSpeech
) -> None:
    fake.tuning.flush_limit, fake.tuning.flush_window_s = 1, 0.3
    await reply(phone, ["One."])  # the server's only flush in its window
    heard = Heard()
    turn = phone.speak("", heard, attempt(2))
    await turn.say(SENTENCES[0])  # its early flush is refused
    await turn.say(SENTENCES[1])
    conn = only(fake)
    await fake.wait_for(lambda: bool(conn.events("Warning")), 2.0, "the warning")
    await asyncio.sleep(0.35)  # the server's window frees
    await turn.finish()

    assert conn.events("Warning")[0]["warn_code"] == "EXCESSIVE_FLUSH"
    assert heard.spans() == [(0, 1)]
    assert heard.ms(ULAW_8K) == reply_ms(SENTENCES[:2])


async def test_a_refused_closing_flush_fails_transiently_and_the_socket_is_replaced(
    fake: FakeDeepgram, phone: DeepgramSpeech
) -> None:
    fake.tuning.flush_limit = 1
    await reply(phone, ["One."])
    exc = await _fails(phone, SENTENCES[:2])  # early and closing flush both refused
    assert isinstance(exc, FlushRefused) and phone.classify(exc) == Retry()

    heard = await reply(phone, ["Fresh."], 3)
    assert heard.ms(ULAW_8K) == tts_ms("Fresh.") and len(fake.to("aura")) == 2
