"""Turn-taking by a streaming recogniser, in the real call core on a virtual clock.

The cascade hears every frame; while its recogniser is up, the recogniser's end of turn
commits the turn, its eager end of turn starts the chat speculatively, and a resumed turn
cancels that. The endpointer's onset still barges in, and it takes the turns back when the
recogniser is lost.
"""

from __future__ import annotations

import asyncio

import pytest

from pipeline.agents.base import CallInfo
from pipeline.agents.cascade.agent import CascadeAgent
from pipeline.agents.cascade.config import CascadeConfig
from pipeline.agents.cascade.stages import CascadeStages, Message
from pipeline.agents.persona import Persona
from pipeline.audio import PCM16_16K
from tests.fakes.stages import ScriptedChat, ScriptedRecognizer, ToneSpeech
from tests.support.core import Core, silence, speech, wait_until
from tests.support.virtual_time import run_virtual

INFO = CallInfo("call-1", "fake", PCM16_16K)


def echo_answer(messages: list[Message]) -> list[str]:
    return [f"You said {messages[-1]['content']}", "Anything else?"]


def cascade(
    recognizer: ScriptedRecognizer, chat: ScriptedChat, tts: ToneSpeech | None = None
) -> CascadeAgent:
    stages = CascadeStages(recognizer, chat, tts or ToneSpeech())
    return CascadeAgent(INFO, Persona(system_prompt="sys"), stages, CascadeConfig())


async def started(agent: CascadeAgent, recognizer: ScriptedRecognizer) -> Core:
    core = await Core(agent).start()
    await recognizer.listening.wait()
    return core


def test_eager_end_of_turn_starts_the_chat_and_end_of_turn_speaks_it() -> None:
    async def main() -> None:
        rec = ScriptedRecognizer()
        chat = ScriptedChat(echo_answer, first_token_s=0.1)
        core = await started(cascade(rec, chat), rec)
        await core.say(speech(PCM16_16K))
        assert rec.frames > 0  # every frame reached the recogniser
        assert rec.events is not None
        eager_s = core.now_s
        rec.events.turn_ending("hello")
        await asyncio.sleep(0.1)
        assert len(chat.calls) == 1 and chat.calls[0].started_s == eager_s
        assert core.port.names() == []  # nothing is spoken before the turn has ended
        rec.events.turn_ended("hello")
        ended_s = core.now_s
        await wait_until(lambda: "end" in core.port.names())
        assert len(chat.calls) == 1  # the eager answer stood
        assert chat.calls[0].messages[-1] == {"role": "user", "content": "hello"}
        (latency,) = core.observer.named("latency")
        # the chat's 100 ms were spent during the recogniser's wait: only speech's 100 ms
        assert latency.args[1] == pytest.approx(100, abs=1)
        assert core.port.audio_of(1) and ended_s == eager_s + 0.1
        await core.hang_up()

    run_virtual(main)


def test_a_resumed_turn_cancels_the_eager_answer() -> None:
    async def main() -> None:
        rec = ScriptedRecognizer()
        chat = ScriptedChat(echo_answer, first_token_s=0.3)
        core = await started(cascade(rec, chat), rec)
        assert rec.events is not None
        rec.events.turn_ending("book a table")
        await asyncio.sleep(0.05)
        rec.events.turn_resumed()
        await asyncio.sleep(0.01)
        assert chat.calls[0].cancelled
        rec.events.turn_ending("book a table for two")
        rec.events.turn_ended("book a table for two")
        await wait_until(lambda: "end" in core.port.names())
        assert [c.cancelled for c in chat.calls] == [True, False]
        assert chat.calls[1].messages[-1]["content"] == "book a table for two"
        await core.hang_up()

    run_virtual(main)


def test_an_end_of_turn_with_other_words_drops_the_eager_answer() -> None:
    async def main() -> None:
        rec = ScriptedRecognizer()
        chat = ScriptedChat(echo_answer, first_token_s=0.1)
        core = await started(cascade(rec, chat), rec)
        assert rec.events is not None
        rec.events.turn_ending("two")
        rec.events.turn_ended("two tickets")
        await wait_until(lambda: "end" in core.port.names())
        assert [c.messages[-1]["content"] for c in chat.calls] == ["two", "two tickets"]
        assert chat.calls[0].cancelled and chat.calls[1].finished
        await core.hang_up()

    run_virtual(main)


def test_the_endpointer_does_not_commit_turns_while_the_recogniser_is_up() -> None:
    async def main() -> None:
        rec = ScriptedRecognizer(batch_text="hello")
        chat = ScriptedChat(echo_answer)
        core = await started(cascade(rec, chat), rec)
        await core.speak(trailing_silence_ms=1500)  # the endpointer's window passes
        assert core.observer.named("user_turn") == [] and chat.calls == []
        await core.hang_up()

    run_virtual(main)


def test_the_endpointers_onset_barges_in_and_the_memory_keeps_what_was_heard() -> None:
    async def main() -> None:
        rec = ScriptedRecognizer()
        long_answer = ["One two three four five six seven eight nine ten eleven twelve."] * 3
        chat = ScriptedChat(lambda m: long_answer)
        agent = cascade(rec, chat)
        core = await started(agent, rec)
        assert rec.events is not None
        rec.events.turn_ended("tell me")
        await wait_until(lambda: core.port.played_ms(1) >= 300)
        await core.say(speech(PCM16_16K))
        (barge,) = core.observer.named("barge_in")
        heard_ms = barge.args[1]
        assert barge.args[0] == 1 and isinstance(heard_ms, float) and 300 <= heard_ms < 2500
        rec.events.turn_ended("stop")
        await wait_until(lambda: len(chat.calls) == 2)
        heard = chat.calls[1].messages[-2]
        assert heard["role"] == "assistant" and heard["content"].endswith("…")
        await core.hang_up()

    run_virtual(main)


def test_when_the_recogniser_is_lost_the_endpointer_takes_the_turns_back() -> None:
    async def main() -> None:
        rec = ScriptedRecognizer(batch_text="are you there")
        chat = ScriptedChat(echo_answer)
        core = await started(cascade(rec, chat), rec)
        assert rec.events is not None
        rec.events.lost(ConnectionResetError("gone"))
        await core.speak(trailing_silence_ms=1500)
        await wait_until(lambda: "end" in core.port.names())
        assert len(core.observer.named("user_turn")) == 1
        assert rec.transcribed and all(rec.transcribed)  # early ones during pauses, too
        assert chat.calls[0].messages[-1]["content"] == "are you there"
        rec.events.connected()  # back: its turns again, not the endpointer's
        await core.say(speech(PCM16_16K) + silence(PCM16_16K, 1500))
        assert len(core.observer.named("user_turn")) == 1
        await core.hang_up()

    run_virtual(main)


def test_a_toys_explicit_end_of_speech_is_the_recognisers_to_decide() -> None:
    async def main() -> None:
        rec = ScriptedRecognizer()
        chat = ScriptedChat(echo_answer)
        core = await started(cascade(rec, chat), rec)
        await core.say(speech(PCM16_16K))
        assert core.session.end_of_speech() is False
        assert core.observer.named("user_turn") == []
        await core.hang_up()

    run_virtual(main)


def test_a_stream_silent_through_a_whole_turn_is_stalled_and_the_turn_is_not_lost() -> None:
    async def main() -> None:
        rec = ScriptedRecognizer(batch_text="is anyone there")
        chat = ScriptedChat(echo_answer)
        core = await started(cascade(rec, chat), rec)
        assert rec.events is not None
        await core.speak(trailing_silence_ms=1500)  # the stream tells nothing of it
        assert rec.stalls == 1 and chat.calls == []
        rec.events.lost(TimeoutError("stalled again"))  # the stage gave up on it
        await wait_until(lambda: "end" in core.port.names())
        assert len(rec.transcribed) == 1  # the endpointer's audio of that turn
        assert chat.calls[0].messages[-1]["content"] == "is anyone there"
        await core.hang_up()

    run_virtual(main)


def test_a_stream_that_told_something_during_the_turn_is_not_stalled() -> None:
    async def main() -> None:
        rec = ScriptedRecognizer()
        core = await started(cascade(rec, ScriptedChat(echo_answer)), rec)
        assert rec.events is not None
        wire = PCM16_16K
        audio = speech(wire)
        await core.say(audio[: len(audio) // 2])
        rec.events.speech_started()
        await core.say(audio[len(audio) // 2 :] + silence(wire, 1500))
        assert rec.stalls == 0
        rec.events.lost(TimeoutError("later"))  # nothing was kept to answer
        await asyncio.sleep(1)
        assert core.observer.named("user_turn") == []
        await core.hang_up()

    run_virtual(main)
