"""Sounds over a reply, on a real session (virtual time, a recording port): a cough or an
"uh-huh" holds the reply and it goes on from what was heard; speech that goes on, or words,
cut it as a barge-in always did."""

from __future__ import annotations

import asyncio
import dataclasses

import numpy as np

from pipeline.agents.base import CallInfo
from pipeline.audio import PCM16_16K
from pipeline.interruptions import InterruptionConfig
from pipeline.session_config import SessionConfig
from tests.fakes.agents import ToneAgent
from tests.support.core import Core, silence, speech, wait_until
from tests.support.virtual_time import run_virtual

INFO = CallInfo("call-1", "fake", PCM16_16K)
REPLY_MS = 4000
WIRE = PCM16_16K


class HearingToneAgent(ToneAgent):
    """A tone agent with a recogniser that hears ``words`` in any short sound."""

    hears_words = True

    def __init__(self, words: str | None) -> None:
        super().__init__(INFO, reply_ms=REPLY_MS)
        self.words = words
        self.heard: list[bytes] = []
        self.began: list[int] = []
        self.dismissed: list[int] = []

    async def words_in(self, utterance: bytes) -> str | None:
        self.heard.append(utterance)
        await asyncio.sleep(0.05)  # a recogniser takes a while
        return self.words

    def interruption_began(self, turn_id: int) -> None:
        self.began.append(turn_id)

    def interruption_dismissed(self, turn_id: int) -> None:
        self.dismissed.append(turn_id)


def noise_burst(ms: int = 300) -> bytes:
    rng = np.random.default_rng(7)
    return rng.normal(0, 3000, WIRE.rate_hz * ms // 1000).astype(np.int16).tobytes()


def short_word() -> bytes:
    """ "Hello" alone: 500 ms of voice, the first word of the recording."""
    return speech(WIRE)[: WIRE.bytes_for_ms(500)]


async def reply_under_way(core: Core) -> None:
    """The caller asks; the reply has played for about a second."""
    await core.speak()
    await wait_until(lambda: bool(core.port.audio_of(1)))
    await asyncio.sleep(1.0)


def played_ms(core: Core, turn_id: int) -> float:
    """What the far end played of the turn, in all (the fake port truncates what a stop cut)."""
    return sum(s.duration_ms for s in core.port.audio_of(turn_id))


def test_a_noise_burst_holds_the_reply_and_it_goes_on_from_what_was_heard() -> None:
    async def main() -> None:
        agent = ToneAgent(INFO, reply_ms=REPLY_MS)
        core = await Core(agent).start()
        await reply_under_way(core)
        await core.say(noise_burst() + silence(WIRE, 1500))
        await wait_until(lambda: "end" in core.port.names())
        (stop,) = [c for c in core.port.calls if c.name == "interrupt"]
        heard_ms = stop.detail
        assert isinstance(heard_ms, float) and 800 < heard_ms < 2000
        after = [s for s in core.port.audio_of(1) if s.sent_at_s > stop.at_s]
        assert after, "the reply went on"
        resumed_at = after[0].sent_at_s - stop.at_s
        assert resumed_at < 0.6  # 300 ms of noise, 300 ms of quiet, less the onset's 200 ms
        # every millisecond of the reply was heard, the one chunk it stopped in twice
        assert REPLY_MS <= played_ms(core, 1) <= REPLY_MS + core.port.chunk_ms
        assert agent.interruptions == [] and agent.cancelled_turns == []
        assert len(agent.utterances) == 1  # the noise never became a turn
        assert core.session.stats.false_interruptions == 1
        assert core.session.stats.barge_ins == 0
        ((turn_id, paused_ms),) = [h.args for h in core.observer.named("false_interruption")]
        assert turn_id == 1 and isinstance(paused_ms, float) and 300 < paused_ms < 600
        await core.hang_up()

    run_virtual(main)


def test_a_backchannel_with_words_resumes_and_real_words_cut() -> None:
    async def main() -> None:
        for words, cut in (("Mm-hmm.", False), ("Stop.", True)):
            agent = HearingToneAgent(words)
            core = await Core(agent).start()
            await reply_under_way(core)
            await core.say(short_word() + silence(WIRE, 1500))
            assert agent.began == [1] and len(agent.heard) == 1
            assert (agent.interruptions != []) is cut
            assert agent.dismissed == ([] if cut else [1])
            if cut:  # the caller's "Stop." is a turn of its own, answered
                await wait_until(lambda a=agent: len(a.utterances) == 2)  # type: ignore[misc]
                assert core.session.stats.barge_ins == 1
            else:
                await wait_until(lambda c=core: "end" in c.port.names())  # type: ignore[misc]
                assert REPLY_MS <= played_ms(core, 1) <= REPLY_MS + core.port.chunk_ms
                assert len(agent.utterances) == 1
            await core.hang_up()

    run_virtual(main)


def test_speech_that_goes_on_is_an_interruption_and_its_turn_is_answered() -> None:
    async def main() -> None:
        agent = HearingToneAgent("Mm-hmm.")  # never asked: the speech goes on
        core = await Core(agent).start()
        await reply_under_way(core)
        await core.speak()
        assert agent.heard == [] and agent.dismissed == []
        ((turn_id, heard_ms),) = agent.interruptions
        assert turn_id == 1 and 800 < heard_ms < 2000
        await wait_until(lambda: len(agent.utterances) == 2)
        # the interrupting turn starts with its first syllable: the whole recording
        assert len(agent.utterances[1]) >= len(speech(WIRE)) - WIRE.bytes_for_ms(100)
        await core.hang_up()

    run_virtual(main)


def test_noise_while_the_agent_listens_is_not_a_turn() -> None:
    async def main() -> None:
        agent = ToneAgent(INFO, reply_ms=500)
        core = await Core(agent).start()
        await core.say(noise_burst(400) + silence(WIRE, 1000))
        assert agent.utterances == [] and "commit" not in core.port.names()
        await core.speak()  # a real question still is
        await wait_until(lambda: len(agent.utterances) == 1)
        await core.hang_up()

    run_virtual(main)


def test_without_judging_or_resuming_every_sound_cuts_at_once() -> None:
    async def main() -> None:
        no_judging = SessionConfig(interruptions=InterruptionConfig(judge=False))
        for config, resumable in ((no_judging, True), (SessionConfig(), False)):
            agent = ToneAgent(INFO, reply_ms=REPLY_MS)
            core = await Core(agent, config, resumable=resumable).start()
            await reply_under_way(core)
            await core.say(noise_burst())
            ((turn_id, _),) = agent.interruptions
            (stop,) = [c for c in core.port.calls if c.name == "interrupt"]
            assert turn_id == 1 and not [s for s in core.port.sent if s.sent_at_s > stop.at_s]
            await core.hang_up()

    run_virtual(main)


def test_the_far_end_button_is_always_real() -> None:
    async def main() -> None:
        agent = ToneAgent(INFO, reply_ms=REPLY_MS)
        core = await Core(agent).start()
        await reply_under_way(core)
        core.session.interrupt()
        await asyncio.sleep(0)
        assert [t for t, _ in agent.interruptions] == [1]
        await core.hang_up()

    run_virtual(main)


def test_the_window_is_a_setting() -> None:
    """A long window lets a whole sentence end before the verdict: with no recogniser, it
    is then short speech, and the reply goes on."""

    async def main() -> None:
        base = SessionConfig()
        config = dataclasses.replace(
            base, interruptions=InterruptionConfig(window_ms=10_000, end_silence_ms=600)
        )
        agent = ToneAgent(INFO, reply_ms=REPLY_MS)
        core = await Core(agent, config).start()
        await reply_under_way(core)
        await core.say(speech(WIRE) + silence(WIRE, 2000))
        assert agent.interruptions == []
        assert core.session.stats.false_interruptions == 1
        await core.hang_up()

    run_virtual(main)


def test_without_a_recogniser_a_first_word_and_a_pause_still_interrupt() -> None:
    """ "Wait, | stop, I have a question": a word, 400 ms of quiet, then the sentence. By
    the sound alone the word could be an "uh-huh"; the longer quiet it needs shows it was
    not, and the reply does not come back for a moment in between."""

    async def main() -> None:
        agent = ToneAgent(INFO, reply_ms=REPLY_MS)
        core = await Core(agent).start()
        await reply_under_way(core)
        await core.say(short_word() + silence(WIRE, 400) + speech(WIRE) + silence(WIRE, 800))
        (stop, *_) = [c for c in core.port.calls if c.name == "interrupt"]
        assert [t for t, _ in agent.interruptions] == [1]
        assert not [s for s in core.port.audio_of(1) if s.sent_at_s > stop.at_s]
        assert core.session.stats.false_interruptions == 0
        await core.hang_up()

    run_virtual(main)


class CommittingToneAgent(ToneAgent):
    """A tone agent whose own (streaming) recogniser ends the caller's turns."""

    hears_every_frame = True

    @property
    def commits_turns(self) -> bool:
        return True


def test_a_recogniser_that_ends_turns_is_judged_by_its_words() -> None:
    """A streaming recogniser commits the sound as a turn of words: a backchannel is no turn
    (and the reply goes on), other words are the caller taking the turn."""

    async def main() -> None:
        for words, real in (("Uh-huh.", False), ("Hold on a second.", True)):
            agent = CommittingToneAgent(INFO, reply_ms=REPLY_MS)
            core = await Core(agent).start()
            core.session.commit_turn("Tell me a story.")
            await wait_until(lambda c=core: bool(c.port.audio_of(1)))  # type: ignore[misc]
            await asyncio.sleep(1.0)
            await core.say(short_word())  # the sound starts: held, judged...
            turn = core.session.commit_turn(words)  # ...and the recogniser ends it
            assert (turn is not None) is real
            if real:
                await wait_until(lambda a=agent: bool(a.interruptions))  # type: ignore[misc]
                assert [t for t, _ in agent.interruptions] == [1] and turn == 2
            else:
                await core.say(silence(WIRE, 1000))
                assert agent.interruptions == []
                assert core.session.stats.false_interruptions == 1
                # a late commit of the same sound is not a turn either
                assert core.session.commit_turn("Mm-hmm.") is None
            await core.hang_up()

    run_virtual(main)


def test_a_word_the_recogniser_is_not_sure_of_is_judged_by_the_sound() -> None:
    """No sure words in "Wait," (then a pause, then the sentence): the sound alone decides,
    so the pause must be long to be an "uh-huh", and this one goes on."""

    async def main() -> None:
        agent = HearingToneAgent("")
        core = await Core(agent).start()
        await reply_under_way(core)
        await core.say(short_word() + silence(WIRE, 400) + speech(WIRE) + silence(WIRE, 800))
        assert len(agent.heard) == 1 and [t for t, _ in agent.interruptions] == [1]
        (stop, *_) = [c for c in core.port.calls if c.name == "interrupt"]
        assert not [s for s in core.port.audio_of(1) if s.sent_at_s > stop.at_s]
        await core.hang_up()

    run_virtual(main)
