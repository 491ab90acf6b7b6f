"""Sounds over a reply, over the real server: a noise burst, a cough or an "uh-huh" does not
cut the agent off (the reply goes on from what the caller heard, and the sound is never
answered); a real interruption still stops it fast and is answered as the next turn.

Phones with the offline agent (Whisper hears the short sounds), the cascade (its speech stage
does, through the fake OpenAI server) and a tone agent (the sound alone decides); toys, whose
microphone is off while they speak, must not take a noise for a turn while they listen.
Realtime has its own tests in test_realtime_agent.py.
"""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

from pipeline.agents.local.agent import LocalAgentFactory
from pipeline.audio import ULAW_8K, AudioSpec, Converter
from tests.fakes.agents import Factory, ToneAgent
from tests.fakes.openai_server import ChatScript, FakeOpenAI
from tests.support.serverthread import MakeServer
from tests.support.stacks import OPENAI_KEY, cascade_env, listen, watch_transcripts
from tests.support.toys import open_toy
from tests.support.twilio_calls import background, open_call, say
from tests.support.voices import espeak_speech
from transports.twilio.emulator.client import FakeTwilio

CHUNK_MS = 40


def as_ulaw(pcm16_8k: bytes) -> bytes:
    converter = Converter(AudioSpec("pcm16", 8000), ULAW_8K)
    return converter.process(pcm16_8k) + converter.flush()


def said(text: str, voice: str = "en-us") -> bytes:
    return as_ulaw(espeak_speech(text, voice, 8000, lead_s=0.0))


def noise_ulaw(ms: int = 300, seed: int = 15) -> bytes:
    """White noise at about -20 dBFS: loud enough that the VAD calls it speech."""
    rng = np.random.default_rng(seed)
    return as_ulaw(rng.normal(0, 3000, 8 * ms).astype(np.int16).tobytes())


async def when_heard(peer: FakeTwilio, since_bytes: int, ms: int, timeout_s: float = 20) -> None:
    """Keep the line alive until ``ms`` of the reply (after ``since_bytes``) has played."""
    talker = background(peer.silence(int(timeout_s * 1000)))
    deadline = time.monotonic() + timeout_s
    try:
        while len(peer.played) - since_bytes < 8 * ms:
            assert time.monotonic() < deadline, "the reply did not play"
            await asyncio.sleep(0.01)
    finally:
        talker.cancel()


async def answered(peer: FakeTwilio, timeout_s: float = 20) -> None:
    """Keep the line alive until a new reply has started and finished playing."""
    talker = background(peer.silence(int(timeout_s * 1000)))
    try:
        await peer.wait_for_media(len(peer.timeline.media_times) + 1, timeout_s=timeout_s)
        await peer.wait_quiet(quiet_s=1.0, timeout_s=timeout_s)
    finally:
        talker.cancel()


def reply_marks(peer: FakeTwilio, turn: int, after_s: float = 0.0) -> list[str]:
    """Marks of ``turn`` echoed as played (after ``after_s``)."""
    return [
        name
        for at, name in zip(peer.timeline.echo_times, peer.timeline.echoed_marks, strict=True)
        if at > after_s and name.startswith(f"t{turn}:") and name in peer.timeline.played_marks
    ]


async def test_a_tone_agent_reply_goes_on_after_noise_and_stops_for_speech(
    make_server: MakeServer, hello_ulaw: bytes, interrupt_ulaw: bytes
) -> None:
    factory = Factory(lambda call: ToneAgent(call, reply_ms=6000))
    server = make_server(factory)
    peer = await open_call(server)
    await say(peer, hello_ulaw, tail_ms=700)
    await when_heard(peer, 0, 1500)
    await peer.stream(noise_ulaw(300) + b"\xff" * 8 * 1500)  # a burst, then quiet
    (stop,) = peer.timeline.clears
    assert reply_marks(peer, 1, after_s=stop), "the reply went on after the noise"
    await when_heard(peer, 0, 4000)
    await peer.stream(interrupt_ulaw)  # speech that goes on: a real interruption
    await answered(peer)
    await peer.close()
    await asyncio.sleep(0.2)
    (agent,) = factory.agents
    assert isinstance(agent, ToneAgent)
    assert len(peer.timeline.clears) == 2
    ((turn_id, heard_ms),) = agent.interruptions
    assert turn_id == 1 and 3900 <= heard_ms < 6000
    # the noise was no turn; the interruption was, and it was answered
    assert len(agent.utterances) == 2
    assert reply_marks(peer, 2)


@pytest.fixture(scope="module")
def local() -> LocalAgentFactory:
    return LocalAgentFactory()


async def test_the_offline_agent_hears_mm_hmm_as_listening_and_stop_as_stop(
    make_server: MakeServer, local: LocalAgentFactory
) -> None:
    server = make_server(local)
    transcripts = watch_transcripts(server)
    peer = await open_call(server)
    talker = background(peer.silence(15_000))
    await peer.wait_quiet(quiet_s=3.0, timeout_s=20)  # the greeting
    talker.cancel()
    greeting = len(peer.played)
    await say(peer, said("Help."), tail_ms=700)  # its longest reply: about 8 s
    await when_heard(peer, greeting, 1500)
    await peer.stream(said("Mm-hmm.") + b"\xff" * 8 * 1500)
    (stop,) = peer.timeline.clears
    help_turn = 2
    assert reply_marks(peer, help_turn, after_s=stop), "the reply went on after mm-hmm"
    await when_heard(peer, greeting, 4000)
    await peer.stream(said("Stop."))
    await answered(peer)
    await peer.close()
    assert len(peer.timeline.clears) == 2
    second_stop = peer.timeline.clears[1]
    assert not reply_marks(peer, help_turn, after_s=second_stop + 0.1)  # cut for good
    users = transcripts.of("user")
    assert users[0].lower().startswith("help") and len(users) == 2, users
    assert "stop" in users[1].lower()  # answered as its own turn; "mm-hmm" never was


async def test_the_cascade_asks_its_speech_stage_and_the_chat_never_hears_uh_huh(
    make_server: MakeServer, hello_ulaw: bytes, interrupt_ulaw: bytes
) -> None:
    fake = FakeOpenAI(api_key=OPENAI_KEY).start()
    try:
        sentences = " ".join(f"This is sentence number {n} of a long answer." for n in range(8))
        # the short sound is an "uh-huh" (the question pauses, and is transcribed early more
        # than once)
        fake.transcript_of = lambda record: (
            "Uh-huh." if record.body["audio_ms"] < 2000 else "Tell me everything."
        )
        fake.replies.append(ChatScript(sentences))
        server = make_server(**cascade_env(fake))
        peer = await open_call(server)
        await say(peer, hello_ulaw, tail_ms=700)
        await peer.wait_for_media(1, timeout_s=10)
        await when_heard(peer, 0, 1500)
        asked = len(fake.to("transcriptions"))
        await peer.stream(interrupt_ulaw[:4000] + b"\xff" * 8 * 1500)  # short: words decide
        (stop,) = peer.timeline.clears
        assert reply_marks(peer, 1, after_s=stop), "the reply went on"
        await listen(peer, quiet_s=1.0)
        await peer.close()
        sound = fake.to("transcriptions")[asked:]
        assert len(sound) == 1 and sound[0].body["audio_ms"] < 2000  # asked once, for it
        assert len(fake.to("chat")) == 1  # "Uh-huh." was never a turn
    finally:
        fake.stop()


async def test_a_toy_that_hears_a_cough_while_listening_keeps_listening(
    make_server: MakeServer,
) -> None:
    server = make_server(Factory(lambda call: ToneAgent(call, greeting_ms=500)))
    toy = await open_toy(server, token=None, idle_mic=True)
    await toy.wait_responses(1, 5)
    rng = np.random.default_rng(3)
    cough = np.convolve(rng.normal(0, 9000, 6000) * np.hanning(6000), np.ones(4) / 4, "same")
    await toy.speak(cough.astype(np.int16).tobytes(), trailing_silence_ms=1500)
    texts = [m[2].get("msg") for m in toy.messages if m[1] == "text" and isinstance(m[2], dict)]
    assert "AUDIO.COMMITTED" not in texts and len(toy.responses) == 1
    await toy.close()
