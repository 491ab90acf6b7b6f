"""Failover to each stage's backup, end to end: a real bridge on loopback, a real phone
caller, and the stages' real clients against fakes that fail (tests/fakes/). The caller
hears the answer, not the apology, and ``/metrics`` counts the switch."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import pytest

from pipeline.agents.providers.openai.tts import TTS_SPEC
from pipeline.apology import apology_audio
from tests.fakes.deepgram import FakeDeepgram
from tests.fakes.deepgram import Fault as DeepgramFault
from tests.fakes.deepgram import tts_ms as aura_ms
from tests.fakes.elevenlabs import FakeElevenLabs
from tests.fakes.elevenlabs import tts_ms as eleven_ms
from tests.fakes.openai_server import ChatScript, FakeOpenAI, Fault
from tests.fakes.openai_server import tts_ms as openai_ms
from tests.support.ops import scrape
from tests.support.serverthread import MakeServer, ServerThread
from tests.support.stacks import (
    ELEVENLABS_VOICE,
    OPENAI_KEY,
    TOLERANCE_MS,
    ULAW_BYTES_PER_MS,
    cascade_env,
    deepgram_env,
    elevenlabs_env,
    heard_ms,
    refused_url,
    watch_transcripts,
)
from tests.support.twilio_calls import open_call, say_and_listen

FAILOVERS = "bridge_stage_failovers_total"
APOLOGY_MS = len(apology_audio(TTS_SPEC)) / TTS_SPEC.bytes_per_ms


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
def short_ulaw(hello_ulaw: bytes) -> bytes:
    """The first phrase of the speech fixture (0.6 s): one stretch of speech."""
    return hello_ulaw[: ULAW_BYTES_PER_MS * 600]


async def failovers(server: ServerThread) -> dict[tuple[str, str, str], float]:
    """``bridge_stage_failovers_total`` scraped over HTTP: {(stage, provider, backup): n}."""
    found: dict[tuple[str, str, str], float] = {}
    for (name, labels), value in (await scrape(server.http)).items():
        if name == FAILOVERS:
            by = dict(labels)
            found[(by["stage"], by["provider"], by["backup"])] = value
    return found


async def test_deepgram_refusing_the_key_moves_transcription_to_the_backup(
    make_server: MakeServer, openai: FakeOpenAI, deepgram: FakeDeepgram, short_ulaw: bytes
) -> None:
    deepgram.fail("nova", DeepgramFault.http(401), times=None)
    openai.transcripts.extend(["Can you hear me?", "And now?"])
    openai.replies.extend([ChatScript("Yes, loud and clear."), ChatScript("Still here.")])
    server = make_server(
        **cascade_env(
            openai,
            BRIDGE_STT="deepgram",
            BRIDGE_STT_FALLBACK="openai",
            BRIDGE_TTS="deepgram",
            **deepgram_env(deepgram),
        )
    )
    transcripts = watch_transcripts(server)
    peer = await open_call(server)
    await say_and_listen(peer, short_ulaw)
    first_ms = heard_ms(peer)
    before = len(peer.played)
    await say_and_listen(peer, short_ulaw)  # the call stays on the backup
    await peer.close()

    assert [c.status for c in deepgram.to("nova")] == [401]  # refused once: not retried
    stt = openai.to("transcriptions")
    assert stt and stt[-1].body["rate_hz"] == 8000  # the line's audio, converted for it
    assert transcripts.of("user") == ["Can you hear me?", "And now?"]
    assert first_ms == pytest.approx(aura_ms("Yes, loud and clear."), abs=TOLERANCE_MS)
    assert heard_ms(peer, before) == pytest.approx(aura_ms("Still here."), abs=TOLERANCE_MS)
    assert await failovers(server) == {("transcription", "deepgram", "openai"): 1}


@pytest.mark.parametrize("fault", ["stall", "drop"])
async def test_aura_failing_mid_call_moves_speech_to_the_backup(
    make_server: MakeServer,
    openai: FakeOpenAI,
    deepgram: FakeDeepgram,
    short_ulaw: bytes,
    fault: str,
) -> None:
    """The first reply is Aura's; then its socket stalls (the next reply's flush is never
    answered: a timeout switches at once) or drops and every new socket is refused (the
    second failure in a row switches). The next reply comes from the backup, converted to
    the μ-law the call was set up with."""
    first, second = "Fine, thanks.", "Here is the second answer."
    # Metadata, the first reply's audio messages and its Flushed: then the fault
    first_reply_messages = 1 + math.ceil(aura_ms(first) / deepgram.tuning.aura_chunk_ms) + 1
    if fault == "stall":
        deepgram.fail("aura", DeepgramFault.stall(after_messages=first_reply_messages))
    else:
        deepgram.fail("aura", DeepgramFault.drop(after_messages=first_reply_messages))
        deepgram.fail("aura", DeepgramFault.http(503), times=5)
    openai.replies.extend([ChatScript(first), ChatScript(second)])
    elevenlabs = FakeElevenLabs(pace=4).start()
    try:
        backup: dict[str, Any] = (
            {"BRIDGE_TTS_FALLBACK": "openai", "BRIDGE_OPENAI_VOICE": "verse"}
            if fault == "stall"
            else {"BRIDGE_TTS_FALLBACK": "elevenlabs", **elevenlabs_env(elevenlabs)}
        )
        server = make_server(
            **cascade_env(openai, BRIDGE_TTS="deepgram", **deepgram_env(deepgram), **backup)
        )
        peer = await open_call(server)
        await say_and_listen(peer, short_ulaw)
        first_ms = heard_ms(peer)
        before = len(peer.played)
        await say_and_listen(peer, short_ulaw)
        await peer.close()
    finally:
        elevenlabs.stop()

    assert first_ms == pytest.approx(aura_ms(first), abs=TOLERANCE_MS)
    spoken = [m.json.get("text") for c in deepgram.to("aura") for m in c.of_type("Speak")]
    assert spoken[0] == first
    if fault == "stall":
        assert spoken == [first, second]  # the stalled socket had the second reply too
        [tts] = openai.to("speech")
        # the backup speaks in its own configured voice (Aura's is nothing to it)
        assert tts.body["input"] == second and tts.body["voice"] == "verse"
        expected_ms = openai_ms(second)
    else:
        assert spoken == [first]
        [xi] = elevenlabs.connections
        assert xi.voice_id == ELEVENLABS_VOICE and xi.query["output_format"] == "ulaw_8000"
        assert xi.text_sent("t0") == second
        expected_ms = eleven_ms(second)
    # the backup's reply, whole, and no apology
    assert heard_ms(peer, before) == pytest.approx(expected_ms, abs=TOLERANCE_MS)
    assert abs(heard_ms(peer, before) - APOLOGY_MS) > TOLERANCE_MS
    backup_name = "openai" if fault == "stall" else "elevenlabs"
    assert await failovers(server) == {("speech", "deepgram", backup_name): 1}


@pytest.mark.parametrize("down", ["refused", "503"])
async def test_a_chat_server_that_is_down_moves_the_chat_to_the_backup_server(
    make_server: MakeServer,
    openai: FakeOpenAI,
    deepgram: FakeDeepgram,
    short_ulaw: bytes,
    down: str,
) -> None:
    """On Flux and Aura (the chat starts on the eager end of turn): a server that refuses
    connections, or answers 503 to everything, fails twice in a row and the turn's next
    attempt goes to the backup server, within the turn's deadline."""
    if down == "refused":
        primary_url = refused_url()
    else:
        primary_url = openai.base_url
        openai.fail("chat", Fault.http(503), times=None)
    backup = FakeOpenAI(api_key="backup-key").start()
    backup.replies.append(ChatScript("The backup answers."))
    deepgram.transcripts.append("Is anyone there?")
    try:
        server = make_server(
            **cascade_env(
                openai,
                BRIDGE_STT="deepgram",
                BRIDGE_DEEPGRAM_STT_MODEL="flux",
                BRIDGE_TTS="deepgram",
                BRIDGE_OPENAI_CHAT_BASE_URL=primary_url,
                BRIDGE_CHAT_FALLBACK_BASE_URL=backup.base_url,
                BRIDGE_CHAT_FALLBACK_API_KEY="backup-key",
                BRIDGE_CHAT_FALLBACK_MODEL="backup-model",
                **deepgram_env(deepgram),
            )
        )
        transcripts = watch_transcripts(server)
        peer = await open_call(server)
        await say_and_listen(peer, short_ulaw)
        await peer.close()
    finally:
        backup.stop()

    [chat] = backup.to("chat")
    assert chat.body["model"] == "backup-model"
    assert chat.headers["authorization"] == "Bearer backup-key"
    assert chat.body["messages"][-1] == {"role": "user", "content": "Is anyone there?"}
    assert len(openai.to("chat")) == (0 if down == "refused" else 2)
    assert transcripts.of("assistant") == ["The backup answers."]
    assert heard_ms(peer) == pytest.approx(aura_ms("The backup answers."), abs=TOLERANCE_MS)
    assert await failovers(server) == {("chat", "openai", "chat-fallback"): 1}
