"""The Deepgram recognition stage (Nova-3, Flux; direct and through Cloudflare AI Gateway)
against the fake Deepgram on loopback: real sockets, real audio (a loud tone is speech,
zeros are silence), streamed faster than real time (the fake times by the audio)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from typing import Any, Literal

import numpy as np
import pytest
from websockets.exceptions import InvalidStatus

from pipeline.agents.base import CallInfo
from pipeline.agents.cascade.stages import Attempt
from pipeline.agents.providers.deepgram.access import DeepgramAccess
from pipeline.agents.providers.deepgram.listen import DeepgramListen, DeepgramListenFactory
from pipeline.agents.providers.deepgram.listen_hold import AudioHold
from pipeline.agents.providers.deepgram.listen_options import ListenOptions, listen_spec
from pipeline.agents.providers.deepgram.listen_turns import FluxReader, NovaReader
from pipeline.agents.retry import Retry, RetryPolicy
from pipeline.audio import PCM16_8K, PCM16_16K, ULAW_8K, AudioSpec
from pipeline.g711 import pcm16_to_ulaw
from tests.fakes.deepgram import API_KEY, CF_TOKEN, FakeDeepgram, Fault, Tuning
from tests.support.core import wait_until

PHONE = CallInfo("call-1", "twilio", PCM16_8K, wire_in=ULAW_8K, wire_out=ULAW_8K)
TOY = CallInfo("toy-1", "elato", PCM16_16K)
FAST = RetryPolicy(base_delay_s=0.01, max_delay_s=0.05, jitter=0.0)


# -- audio ----------------------------------------------------------------------------------


def speech(ms: int, spec: AudioSpec) -> bytes:
    """A loud tone: every 20 ms frame is voiced for the fake."""
    t = np.arange(spec.rate_hz * ms // 1000) / spec.rate_hz
    pcm = (6000 * np.sin(2 * np.pi * 300 * t)).astype(np.int16).tobytes()
    return pcm16_to_ulaw(pcm) if spec.encoding == "ulaw" else pcm


def silence(ms: int, spec: AudioSpec) -> bytes:
    return (b"\xff" if spec.encoding == "ulaw" else b"\x00\x00") * (spec.rate_hz * ms // 1000)


def feed(stage: DeepgramListen, audio: bytes) -> None:
    """In 20 ms frames, as a call would (all at once: faster than real time)."""
    step = stage.input_spec.bytes_for_ms(20)
    for at in range(0, len(audio), step):
        stage.feed(audio[at : at + step])


# -- the cascade's side ---------------------------------------------------------------------


class Heard:
    """A :class:`TurnEvents` that records what it is told."""

    def __init__(self) -> None:
        self.told: list[tuple[str, ...]] = []
        self.errors: list[Exception] = []

    def connected(self) -> None:
        self.told.append(("connected",))

    def speech_started(self) -> None:
        self.told.append(("speech_started",))

    def turn_ending(self, text: str) -> None:
        self.told.append(("turn_ending", text))

    def turn_resumed(self) -> None:
        self.told.append(("turn_resumed",))

    def turn_ended(self, text: str) -> None:
        self.told.append(("turn_ended", text))

    def lost(self, exc: Exception) -> None:
        self.told.append(("lost",))
        self.errors.append(exc)

    def count(self, kind: str) -> int:
        return sum(1 for event in self.told if event[0] == kind)

    async def until(self, kind: str, count: int = 1, timeout_s: float = 5.0) -> None:
        deadline = time.monotonic() + timeout_s
        while self.count(kind) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"no {kind} x{count} in {self.told}")
            await asyncio.sleep(0.005)


# -- fixtures -------------------------------------------------------------------------------


@pytest.fixture
def fake() -> Iterator[FakeDeepgram]:
    server = FakeDeepgram(tuning=Tuning(flux_eager_ms=100, flux_eot_ms=200)).start()
    yield server
    server.stop()


def options(
    fake: FakeDeepgram,
    model: Literal["nova-3", "flux"] = "nova-3",
    via: Literal["deepgram", "cloudflare"] = "deepgram",
    secret: str = "",
    **extra: Any,
) -> ListenOptions:
    if via == "deepgram":
        access = DeepgramAccess("deepgram", fake.ws, secret or API_KEY)
    else:
        access = DeepgramAccess("cloudflare", fake.ws, secret or CF_TOKEN, "acct", "gw")
    settings: dict[str, Any] = {"reconnect_policy": FAST, "slow_retry_s": 0.2, **extra}
    return ListenOptions(access, model, **settings)


class Running:
    """A stage whose stream runs, and its end: ``aclose`` then ``listen`` returns."""

    def __init__(self, stage: DeepgramListen) -> None:
        self.stage = stage
        self.heard = Heard()
        self.task = asyncio.create_task(stage.listen(self.heard))

    async def close(self) -> None:
        await self.stage.aclose()
        await asyncio.wait_for(self.task, 3)


def start(opts: ListenOptions, call: CallInfo = PHONE) -> Running:
    return Running(DeepgramListenFactory(opts).create(call))


# -- Nova-3 ---------------------------------------------------------------------------------


async def test_nova_takes_phone_audio_as_it_is_and_speech_final_ends_the_turn(
    fake: FakeDeepgram,
) -> None:
    fake.transcripts.append("Book a table for two.")
    run = start(options(fake, keyterms=("Bistro", "table for two")))
    assert run.stage.input_spec == ULAW_8K
    audio = silence(200, ULAW_8K) + speech(800, ULAW_8K) + silence(1500, ULAW_8K)
    feed(run.stage, audio)
    await run.heard.until("turn_ended")
    conn = fake.to("nova")[0]
    await fake.wait_for(lambda: bool(conn.events("UtteranceEnd")), what="UtteranceEnd")
    await fake.wait_for(lambda: len(conn.audio) == len(audio), what="all the audio")
    await asyncio.sleep(0.05)  # UtteranceEnd reached the stage: no second turn from it
    await run.close()

    assert run.heard.told == [
        ("connected",),
        ("speech_started",),
        ("turn_ended", "Book a table for two."),
    ]
    assert conn.audio == audio  # μ-law went up untouched
    assert conn.route == "deepgram" and conn.presented(API_KEY)
    assert conn.headers["authorization"] == "Token <redacted>"
    query = conn.query
    assert (query["model"], query["encoding"], query["sample_rate"]) == ("nova-3", "mulaw", "8000")
    assert query["interim_results"] == query["vad_events"] == "true"
    assert (query["endpointing"], query["utterance_end_ms"]) == ("300", "1000")
    assert "keyterm=Bistro&keyterm=table+for+two" in conn.query_string
    final = [e for e in conn.events("Results") if e["is_final"]]
    assert len(final) == 1 and final[0]["speech_final"]
    assert conn.of_type("CloseStream") and conn.closed_by == "server"


async def test_nova_utterance_end_ends_a_turn_of_several_finals(fake: FakeDeepgram) -> None:
    fake.tuning.nova_final_without_endpointing_ms = 300
    fake.transcripts.extend(["I want", "to order."])
    run = start(options(fake, endpointing_ms=None), TOY)
    assert run.stage.input_spec == PCM16_16K
    spec = PCM16_16K
    feed(run.stage, speech(600, spec) + silence(400, spec) + speech(600, spec))
    feed(run.stage, silence(1200, spec))
    await run.heard.until("turn_ended")
    await run.close()

    assert run.heard.told == [
        ("connected",),
        ("speech_started",),  # once: the second stretch is the same turn
        ("turn_ended", "I want to order."),
    ]
    conn = fake.to("nova")[0]
    assert (conn.query["encoding"], conn.query["sample_rate"]) == ("linear16", "16000")
    assert conn.query["endpointing"] == "false"
    kinds = [e["type"] for e in conn.events() if e["type"] != "SpeechStarted"]
    finals = [e for e in conn.events("Results") if e["is_final"]]
    assert len(finals) == 2 and not any(e["speech_final"] for e in finals)
    assert kinds[-2:] == ["UtteranceEnd", "Metadata"]  # Metadata: CloseStream's answer


async def test_nova_keeps_an_idle_socket_alive(fake: FakeDeepgram) -> None:
    fake.tuning.idle_timeout_s = 0.3  # Deepgram's is 10 s
    run = start(options(fake, keepalive_s=0.05))
    await asyncio.sleep(0.8)
    await run.close()
    (conn,) = fake.to("nova")  # never closed for idleness
    assert len(conn.of_type("KeepAlive")) >= 5 and not conn.audio
    assert run.heard.told == [("connected",)]


# -- Flux -----------------------------------------------------------------------------------


async def test_flux_direct_takes_phone_mulaw_and_tells_eager_resumed_and_end(
    fake: FakeDeepgram,
) -> None:
    fake.transcripts.extend(["I need to", "cancel my plan."])
    run = start(options(fake, "flux"))
    assert run.stage.input_spec == ULAW_8K
    spec = ULAW_8K
    audio = speech(600, spec) + silence(160, spec) + speech(400, spec) + silence(300, spec)
    feed(run.stage, audio)
    await run.heard.until("turn_ended")
    await run.close()

    assert run.heard.told == [
        ("connected",),
        ("speech_started",),
        ("turn_ending", "I need to"),
        ("turn_resumed",),
        ("turn_ending", "I need to cancel my plan."),
        ("turn_ended", "I need to cancel my plan."),
    ]
    conn = fake.to("flux")[0]
    assert conn.audio == audio
    assert (conn.query["model"], conn.query["encoding"]) == ("flux-general-en", "mulaw")
    assert conn.query["eot_threshold"] == "0.7" and conn.query["eager_eot_threshold"] == "0.5"
    assert conn.query["eot_timeout_ms"] == "5000"


@pytest.mark.parametrize(("call", "spec"), [(PHONE, PCM16_8K), (TOY, PCM16_16K)])
async def test_flux_through_cloudflare_takes_linear16_at_the_wire_rate(
    fake: FakeDeepgram, call: CallInfo, spec: AudioSpec
) -> None:
    fake.transcripts.append("Hello Cloudflare.")
    run = start(options(fake, "flux", "cloudflare"), call)
    assert run.stage.input_spec == spec
    feed(run.stage, silence(100, spec) + speech(500, spec) + silence(400, spec))
    await run.heard.until("turn_ended")
    await run.close()

    assert run.heard.told == [
        ("connected",),
        ("speech_started",),
        ("turn_ending", "Hello Cloudflare."),
        ("turn_ended", "Hello Cloudflare."),
    ]
    conn = fake.to("flux")[0]
    assert conn.route == "gateway" and (conn.account, conn.gateway) == ("acct", "gw")
    assert conn.headers["cf-aig-authorization"] == "Bearer <redacted>"
    assert conn.presented(CF_TOKEN)
    assert conn.query["model"] == "@cf/deepgram/flux"
    assert (conn.query["encoding"], conn.query["sample_rate"]) == ("linear16", str(spec.rate_hz))


async def test_flux_idle_socket_hears_silence_as_its_keepalive(fake: FakeDeepgram) -> None:
    run = start(options(fake, "flux", keepalive_s=0.05, keepalive_silence_ms=20))
    await asyncio.sleep(0.5)
    await run.close()
    (conn,) = fake.to("flux")
    assert conn.audio and set(conn.audio) == {0xFF}  # μ-law silence
    assert conn.audio_ms >= 100


# -- reconnecting ---------------------------------------------------------------------------


async def test_nova_drop_mid_turn_sends_the_turn_again_from_the_last_final(
    fake: FakeDeepgram,
) -> None:
    fake.tuning.nova_interim_ms = 60_000  # no interim results: the messages are countable
    # SpeechStarted, final (turn 1), SpeechStarted (turn 2), then Deepgram's NET error
    # close (the fake's "drop" of a Nova socket that has all its audio waits for more)
    fake.fail("nova", Fault.close(after_messages=3, code=1011))
    fake.transcripts.extend(["First turn.", "cut off", "Second turn."])
    run = start(options(fake))
    spec = ULAW_8K
    first = silence(200, spec) + speech(800, spec) + silence(400, spec)
    audio = first + speech(600, spec) + silence(500, spec)
    feed(run.stage, audio)
    await run.heard.until("turn_ended", 2)
    await run.close()

    assert run.heard.told == [
        ("connected",),
        ("speech_started",),
        ("turn_ended", "First turn."),
        ("speech_started",),
        ("connected",),
        ("turn_ended", "Second turn."),  # heard anew from the audio sent again
    ]
    dropped, again = fake.to("nova")
    assert (dropped.closed_by, dropped.close_code) == ("server", 1011)
    replayed_from = spec.bytes_for_ms(200 + 800 + 300)  # the first final's end
    assert again.audio == audio[replayed_from:]


async def test_flux_drop_mid_turn_sends_the_turn_again_from_its_start(
    fake: FakeDeepgram,
) -> None:
    fake.fail("flux", Fault.drop(after_messages=2))  # Connected, StartOfTurn, then cut
    fake.transcripts.extend(["lost words", "Cancel my order."])
    run = start(options(fake, "flux"))
    spec = ULAW_8K
    # the fake has read all it was sent when it cuts the socket (else the kernel's reset
    # could discard StartOfTurn before the stage reads it)
    audio = silence(300, spec) + speech(40, spec)
    feed(run.stage, audio)
    await run.heard.until("connected", 2)
    rest = speech(760, spec) + silence(400, spec)
    feed(run.stage, rest)
    audio += rest
    await run.heard.until("turn_ended")
    await run.close()

    assert run.heard.told == [
        ("connected",),
        ("speech_started",),
        ("connected",),  # the second StartOfTurn is the same turn: no second barge-in
        ("turn_ending", "Cancel my order."),
        ("turn_ended", "Cancel my order."),
    ]
    dropped, again = fake.to("flux")
    assert dropped.closed_by == "drop"
    assert again.audio == audio[spec.bytes_for_ms(300) :]  # from the turn's start


async def test_a_stalled_stream_is_opened_again_and_hears_the_turn_it_missed(
    fake: FakeDeepgram,
) -> None:
    fake.fail("flux", Fault.stall(after_messages=1))  # Connected, then nothing
    run = start(options(fake, "flux"))
    spec = ULAW_8K
    audio = speech(800, spec) + silence(600, spec)
    feed(run.stage, audio)
    await run.heard.until("connected")
    await asyncio.sleep(0.2)
    assert run.heard.count("speech_started") == 0  # stalled: nothing came back
    run.stage.stalled()  # the cascade's endpointer heard a whole turn
    await run.heard.until("turn_ended")
    await run.close()
    assert run.heard.count("turn_ended") == 1 and run.heard.count("lost") == 0
    _stalled, again = fake.to("flux")
    assert again.audio.endswith(audio[spec.bytes_for_ms(100) :])  # the turn went again


async def test_a_stream_that_stalls_twice_in_a_row_is_lost(fake: FakeDeepgram) -> None:
    fake.fail("flux", Fault.stall(after_messages=1), times=2)
    run = start(options(fake, "flux"))
    feed(run.stage, speech(800, ULAW_8K) + silence(600, ULAW_8K))
    await run.heard.until("connected")
    run.stage.stalled()
    await run.heard.until("connected", 2)
    run.stage.stalled()
    await run.heard.until("lost")
    await run.close()
    assert isinstance(run.heard.errors[0], TimeoutError)


async def test_flux_error_message_is_transient_and_the_stream_comes_back(
    fake: FakeDeepgram,
) -> None:
    fake.fail("flux", Fault.close(after_messages=1))  # Connected, Error, close 1011
    run = start(options(fake, "flux"))
    await run.heard.until("connected", 2)
    await run.close()
    failed, again = fake.to("flux")
    assert [e["type"] for e in failed.events()] == ["Connected", "Error"]
    assert again.status == 101 and run.heard.told == [("connected",), ("connected",)]


async def test_429_is_retried_after_the_time_asked(fake: FakeDeepgram) -> None:
    fake.fail("nova", Fault.http(429, retry_after="0.2"))
    run = start(options(fake))
    await run.heard.until("connected")
    await run.close()
    refused, accepted = fake.to("nova")
    assert (refused.status, accepted.status) == (429, 101)
    assert accepted.opened_at - refused.opened_at >= 0.2
    assert run.heard.told == [("connected",)]


async def test_refused_past_the_attempts_is_lost_then_recovered_slowly(
    fake: FakeDeepgram,
) -> None:
    fake.fail("nova", Fault.http(503), times=3)
    fake.transcripts.extend(["Back again."])
    run = start(options(fake, reconnect_attempts=2))
    feed(run.stage, speech(500, ULAW_8K))  # heard by the endpointer while lost: not sent
    await run.heard.until("connected")
    audio = speech(500, ULAW_8K) + silence(500, ULAW_8K)
    feed(run.stage, audio)
    await run.heard.until("turn_ended")
    await run.close()

    assert run.heard.told == [
        ("lost",),
        ("connected",),
        ("speech_started",),
        ("turn_ended", "Back again."),
    ]
    assert [c.status for c in fake.to("nova")] == [503, 503, 503, 101]
    assert fake.to("nova")[-1].audio == audio
    assert run.stage.classify(run.heard.errors[0]) == Retry()


async def test_bad_key_is_lost_reported_once_and_ends_listen(
    fake: FakeDeepgram, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, "pipeline.agents.providers")
    factory = DeepgramListenFactory(options(fake, secret="not-the-key"))
    for _ in range(2):
        stage = factory.create(PHONE)
        heard = Heard()
        with pytest.raises(InvalidStatus) as refused:
            await asyncio.wait_for(stage.listen(heard), 3)
        assert refused.value.response.status_code == 401
        assert heard.told == [("lost",)] and stage.classify(heard.errors[0]) is None
        await stage.aclose()
    assert len(fake.to("nova")) == 2  # no retry of a permanent refusal
    (record,) = caplog.records
    assert "BRIDGE_DEEPGRAM_API_KEY" in record.getMessage()
    assert "not-the-key" not in caplog.text


# -- one-shot transcription -----------------------------------------------------------------


async def test_nova_transcribes_one_utterance_on_a_socket_of_its_own(fake: FakeDeepgram) -> None:
    fake.transcripts.append("Just this.")
    stage = DeepgramListenFactory(options(fake)).create(PHONE)
    utterance = speech(700, ULAW_8K)  # no trailing silence: Finalize ends it
    text = await stage.transcribe(utterance, Attempt(3, "call-1-3-stt", 5.0))
    assert text == "Just this."
    (conn,) = fake.to("nova")
    assert conn.audio == utterance
    # the stage sends CloseStream once it has the words: the fake, in its own thread, may
    # record it a moment after transcribe() returns
    await wait_until(lambda: conn.closed_at is not None, timeout_s=5.0)
    assert [m.type for m in conn.messages if m.type] == ["Finalize", "CloseStream"]


async def test_flux_transcribes_one_utterance_and_forces_its_end(fake: FakeDeepgram) -> None:
    fake.transcripts.extend(["First part.", "Second part."])
    stage = DeepgramListenFactory(options(fake, "flux", "cloudflare")).create(TOY)
    spec = PCM16_16K
    utterance = speech(500, spec) + silence(400, spec) + speech(400, spec)
    text = await stage.transcribe(utterance, Attempt(4, "toy-1-4-stt", 5.0))
    assert text == "First part. Second part."
    (conn,) = fake.to("flux")
    ends = conn.events("TurnInfo")
    assert [e["trigger"] for e in ends if e["event"] == "EndOfTurn"] == ["model", "manual"]
    assert conn.of_type("ForceEndTurn")


async def test_one_shot_honours_the_attempts_timeout(fake: FakeDeepgram) -> None:
    fake.fail("nova", Fault.stall())
    stage = DeepgramListenFactory(options(fake)).create(PHONE)
    started = time.monotonic()
    with pytest.raises(TimeoutError) as stalled:
        await stage.transcribe(speech(300, ULAW_8K), Attempt(5, "call-1-5-stt", 0.3))
    assert time.monotonic() - started < 2.0
    assert stage.classify(stalled.value) == Retry()


# -- pure parts -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "via", "wire", "spec"),
    [
        ("nova-3", "deepgram", ULAW_8K, ULAW_8K),
        ("nova-3", "cloudflare", ULAW_8K, ULAW_8K),
        ("flux", "deepgram", ULAW_8K, ULAW_8K),
        ("flux", "cloudflare", ULAW_8K, PCM16_8K),
        ("flux", "cloudflare", PCM16_16K, PCM16_16K),
        ("nova-3", "deepgram", PCM16_16K, PCM16_16K),
        ("flux", "deepgram", AudioSpec("pcm16", 22050), PCM16_16K),
    ],
)
def test_each_call_sends_its_wire_format_when_the_model_takes_it(
    model: Literal["nova-3", "flux"],
    via: Literal["deepgram", "cloudflare"],
    wire: AudioSpec,
    spec: AudioSpec,
) -> None:
    access = DeepgramAccess(via, "ws://127.0.0.1:1", "secret", "a", "g")
    assert listen_spec(ListenOptions(access, model), wire) == spec


def test_flux_reader_tells_a_replayed_turn_once() -> None:
    hold = AudioHold(ULAW_8K, 30.0)
    hold.append(silence(2000, ULAW_8K))
    reader = FluxReader(hold)
    heard = Heard()
    reader.events = heard

    def info(event: str, text: str = "", start_s: float = 0.5, end_s: float = 1.0) -> None:
        reader.read(
            {
                "type": "TurnInfo",
                "event": event,
                "transcript": text,
                "audio_window_start": start_s,
                "audio_window_end": end_s,
            }
        )

    info("StartOfTurn")
    info("EagerEndOfTurn", "Yes")
    assert reader.in_turn and reader.keep_from(0) == ULAW_8K.bytes_for_ms(500)
    hold.rewind(reader.keep_from(0))  # a new socket hears the turn from its start
    info("StartOfTurn", start_s=0.0)
    info("EagerEndOfTurn", "Yes")  # the same words: not told again
    info("EagerEndOfTurn", "Yes please")  # new words: the old reply is dropped first
    info("EndOfTurn", "Yes please", end_s=1.5)
    assert heard.told == [
        ("speech_started",),
        ("turn_ending", "Yes"),
        ("turn_resumed",),
        ("turn_ending", "Yes please"),
        ("turn_ended", "Yes please"),
    ]
    assert not reader.in_turn and reader.acked == ULAW_8K.bytes_for_ms(500 + 1500)


def test_nova_reader_ends_a_turn_once() -> None:
    reader = NovaReader(AudioHold(ULAW_8K, 30.0))
    heard = Heard()
    reader.events = heard

    def final(text: str, speech_final: bool) -> dict[str, Any]:
        alternative = {"transcript": text}
        return {
            "type": "Results",
            "is_final": True,
            "speech_final": speech_final,
            "start": 0.0,
            "duration": 1.0,
            "channel": {"alternatives": [alternative]},
        }

    reader.read({"type": "SpeechStarted"})
    reader.read(final("Hi.", speech_final=True))
    reader.read({"type": "UtteranceEnd", "last_word_end": 0.8})
    reader.read(final("", speech_final=False))  # silence: no turn
    reader.read({"type": "UtteranceEnd", "last_word_end": 0.8})
    assert heard.told == [("speech_started",), ("turn_ended", "Hi.")]
    assert reader.acked == ULAW_8K.bytes_for_ms(1000)
