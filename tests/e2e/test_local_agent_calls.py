"""The offline agent end to end: a caller and a toy ask in voices that are not the agent's
own (espeak-ng accents, a real person's recording), over real sockets; the reply is
recognised back (no network, no keys)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np
import pytest
import soxr

from bench.local_hearing import word_errors
from pipeline.agents.local.agent import LocalAgentFactory
from pipeline.agents.local.hearing import Recognizer
from pipeline.audio import ULAW_8K, AudioSpec, Converter
from pipeline.g711 import ulaw_to_pcm16
from tests.support.human_speech import JFK_WORDS, jfk_pcm16_16k
from tests.support.serverthread import MakeServer
from tests.support.stacks import listen, watch_transcripts
from tests.support.toys import open_toy
from tests.support.twilio_calls import background, open_call, say_and_listen
from tests.support.voices import espeak_speech

AFTERNOON = datetime(2026, 11, 21, 15, 10, tzinfo=ZoneInfo("UTC"))


@pytest.fixture(scope="module")
def factory() -> LocalAgentFactory:
    return LocalAgentFactory(clock=lambda: AFTERNOON)


@pytest.fixture(scope="module")
def ear() -> Recognizer:
    """Open-vocabulary recognition of what the caller heard (no prompt: no bias)."""
    recognizer = Recognizer()
    recognizer.load()
    return recognizer


def recognise(ear: Recognizer, pcm16: bytes, rate_hz: int) -> str:
    audio = np.frombuffer(pcm16, np.int16)
    if rate_hz != 16000:
        audio = soxr.resample(audio, rate_hz, 16000).astype(np.int16)
    return ear.transcribe(audio.tobytes())


def as_ulaw(pcm16_8k: bytes) -> bytes:
    return Converter(AudioSpec("pcm16", 8000), ULAW_8K).process(pcm16_8k)


async def test_caller_asks_the_time_and_hears_it(
    make_server: MakeServer, factory: LocalAgentFactory, ear: Recognizer
) -> None:
    server = make_server(factory)
    peer = await open_call(server)
    talker = background(peer.silence(12_000))
    # the greeting, sentence by sentence: on a loaded machine piper may take over a second
    # for the next one, so a short quiet would cut the greeting after its first sentence
    await peer.wait_quiet(quiet_s=3.0, timeout_s=20)
    talker.cancel()
    greeting_bytes = len(peer.played)
    assert greeting_bytes > 8000  # more than a second of greeting
    question = as_ulaw(espeak_speech("What's the time?", "en-gb-scotland+f3", 8000))
    await say_and_listen(peer, question, quiet_s=1.0)
    reply = ulaw_to_pcm16(bytes(peer.played[greeting_bytes:]))
    heard = recognise(ear, reply, 8000)
    assert "afternoon" in heard, heard
    await peer.close()


async def test_toy_asks_the_time_and_hears_it(
    make_server: MakeServer, factory: LocalAgentFactory, ear: Recognizer
) -> None:
    server = make_server(factory)
    toy = await open_toy(server, token=None, idle_mic=True)
    [greeting] = await toy.wait_responses(1, 20)
    assert greeting.ok and greeting.decoded_ms > 1000
    await toy.speak(espeak_speech("Tell me the time, please.", "en-029+m3", 16000))
    reply = (await toy.wait_responses(2, 20))[1]
    assert reply.ok
    heard = recognise(ear, bytes(reply.pcm_48k), 48000)
    assert "afternoon" in heard, heard
    assert toy.protocol_errors == []
    await toy.close()


async def test_goodbye_ends_the_call(make_server: MakeServer, factory: LocalAgentFactory) -> None:
    server = make_server(factory)
    peer = await open_call(server)
    talker = background(peer.silence(8000))
    await peer.wait_quiet(quiet_s=1.0, timeout_s=20)
    talker.cancel()
    goodbye = as_ulaw(espeak_speech("Thank you, goodbye.", "en-us", 8000))
    talker = background(say_and_listen(peer, goodbye, quiet_s=3.0, timeout_s=15))
    assert await peer.wait_closed(15) == 1000
    talker.cancel()
    await peer.close()


async def test_a_person_on_the_phone_is_heard(
    make_server: MakeServer, factory: LocalAgentFactory
) -> None:
    """A real recording over a real call: 11 s of a man speaking with pauses, so several
    turns, each answered (he asks nothing the agent knows) and barged in on."""
    server = make_server(factory)
    transcripts = watch_transcripts(server)
    peer = await open_call(server)
    await listen(peer, quiet_s=1.0, timeout_s=20)  # the greeting
    narrow = soxr.resample(np.frombuffer(jfk_pcm16_16k(), np.int16), 16000, 8000)
    await say_and_listen(peer, as_ulaw(narrow.astype(np.int16).tobytes()), quiet_s=1.5)
    heard = " ".join(transcripts.of("user"))
    errors, words = word_errors(JFK_WORDS, heard)
    assert words == 22 and errors <= 5, heard
    assert peer.closed_at is None  # nothing in it ended the call
    await peer.close()
