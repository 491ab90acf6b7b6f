"""A stage with a backup, in the real call core on a virtual clock: the call moves to the
backup within the turn's deadline, the caller hears the answer (no apology), and the switch
is counted by stage and provider."""

from __future__ import annotations

import pytest

from pipeline.agents.base import CallInfo
from pipeline.agents.cascade.agent import CascadeAgent
from pipeline.agents.cascade.config import CascadeConfig
from pipeline.agents.cascade.failover import (
    Failovers,
    chat_pair,
    speech_pair,
    transcription_pair,
)
from pipeline.agents.cascade.stages import CascadeStages, Chat, SpeechToText, TextToSpeech
from pipeline.agents.persona import Persona
from pipeline.audio import PCM16_16K, PCM16_24K
from tests.fakes.stages import (
    MS_PER_CHAR,
    Down,
    FailingChat,
    FailingSpeech,
    Refused,
    ScriptedChat,
    ScriptedRecognizer,
    ToneSpeech,
)
from tests.support.core import Core, wait_until
from tests.support.virtual_time import run_virtual

INFO = CallInfo("call-1", "fake", PCM16_16K)
ANSWER = ["Here you are."]
ANSWER_MS = len(ANSWER[0]) * MS_PER_CHAR


def agent(stt: SpeechToText, chat: Chat, tts: TextToSpeech) -> CascadeAgent:
    config = CascadeConfig(turn_deadline_s=3.0, request_timeout_s=1.0)
    return CascadeAgent(INFO, Persona(), CascadeStages(stt, chat, tts), config)


async def one_turn(core: Core, rec: ScriptedRecognizer) -> None:
    await rec.listening.wait()
    assert rec.events is not None
    rec.events.turn_ended("hello")
    await wait_until(lambda: "end" in core.port.names())


def heard_ms(core: Core) -> float:
    return sum(sent.duration_ms for sent in core.port.audio_of(1))


@pytest.mark.parametrize("error", [Down, Refused], ids=["transient", "permanent"])
def test_a_failing_chat_moves_the_call_to_the_backup_server(error: type[Exception]) -> None:
    async def main() -> None:
        failovers = Failovers()
        primary = FailingChat(error)
        backup = ScriptedChat(lambda m: ANSWER, provider="backup")
        rec = ScriptedRecognizer()
        chat = chat_pair(primary, backup, failovers, "call-1")
        core = await Core(agent(rec, chat, ToneSpeech())).start()
        await one_turn(core, rec)
        assert heard_ms(core) == pytest.approx(ANSWER_MS, abs=1)  # the answer, no apology
        assert core.observer.named("agent_error") == []
        # a permanent error switches at once; a transient one on its second time
        assert primary.attempts == (1 if error is Refused else 2)
        assert failovers.counts == {("chat", "failing", "backup"): 1}
        rec.events.turn_ended("again")  # type: ignore[union-attr]
        await wait_until(lambda: len(backup.calls) == 2)
        assert primary.attempts == (1 if error is Refused else 2)  # the call stays moved
        await core.hang_up()

    run_virtual(main)


def test_failing_speech_moves_to_a_backup_voice_converted_to_the_calls_format() -> None:
    async def main() -> None:
        failovers = Failovers()
        primary = FailingSpeech(Down)
        backup = ToneSpeech(spec=PCM16_24K)  # another provider, another format
        rec = ScriptedRecognizer()
        tts = speech_pair(primary, backup, failovers, "call-1")
        assert tts.output_spec == PCM16_16K  # the call keeps the primary's format
        core = await Core(agent(rec, ScriptedChat(lambda m: ANSWER), tts)).start()
        await one_turn(core, rec)
        assert backup.spoken == ANSWER
        assert heard_ms(core) == pytest.approx(ANSWER_MS, abs=5)
        assert core.observer.named("agent_error") == []
        assert failovers.counts == {("speech", "failing", "scripted"): 1}
        await core.hang_up()

    run_virtual(main)


def test_without_a_backup_a_failing_stage_still_ends_in_the_apology() -> None:
    async def main() -> None:
        rec = ScriptedRecognizer()
        core = await Core(agent(rec, FailingChat(Down), ToneSpeech())).start()
        await one_turn(core, rec)
        (error,) = core.observer.named("agent_error")
        assert error.args == ("DeadlineExceeded",)
        await core.hang_up()

    run_virtual(main)


def test_a_lost_recogniser_moves_transcription_to_the_backup() -> None:
    async def main() -> None:
        failovers = Failovers()
        rec = ScriptedRecognizer(batch_text="should not be asked")
        backup = ScriptedRecognizer(batch_text="are you there")
        backup.provider = "backup"
        stt = transcription_pair(rec, backup, failovers, "call-1")
        chat = ScriptedChat(lambda m: ANSWER)
        core = await Core(agent(stt, chat, ToneSpeech())).start()
        await rec.listening.wait()
        assert rec.events is not None
        rec.events.lost(Down("stream gone"))
        assert failovers.counts == {("transcription", "scripted", "backup"): 1}
        await core.speak(trailing_silence_ms=1500)  # the endpointer ends this turn
        await wait_until(lambda: "end" in core.port.names())
        assert rec.transcribed == [] and backup.transcribed
        assert chat.calls[0].messages[-1]["content"] == "are you there"
        await core.hang_up()

    run_virtual(main)
