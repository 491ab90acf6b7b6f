"""The call core on a virtual clock: turns, barge-in and the heard position, failures.

No socket and no real time: a real :class:`CallSession` (real endpointer, real resampling,
real playout) talks to a recording port whose far end plays audio on the loop's virtual
clock. Every timing below is exact, and the whole file runs in well under a second.
"""

from __future__ import annotations

import asyncio
import functools

import numpy as np
import pytest

from pipeline.agents.base import AgentOutput, CallInfo
from pipeline.apology import apology_audio
from pipeline.audio import PCM16_16K, ULAW_8K
from pipeline.observers import ObservedCall, Observers, SessionObserver
from pipeline.session_config import SessionConfig
from tests.fakes.agents import FailingTurnAgent, ToneAgent
from tests.support.core import Core, silence, speech, wait_until
from tests.support.virtual_time import run_virtual

INFO = CallInfo("call-1", "fake", PCM16_16K)


def tone_agent(**kwargs: int) -> ToneAgent:
    return ToneAgent(INFO, **kwargs)


def test_a_turn_is_committed_answered_and_paced() -> None:
    async def main() -> None:
        agent = tone_agent(reply_ms=1000)
        core = await Core(agent).start()
        said = speech(PCM16_16K)
        await core.speak()
        await wait_until(lambda: core.port.names()[-1:] == ["end"])
        port = core.port
        assert len(agent.utterances) == 1 and agent.utterances[0] in said + bytes(32000)
        assert [n for n in port.names() if n != "audio"] == ["commit", "begin", "end"]
        assert port.first("end").detail == (True, True)  # had audio, ok
        chunks = port.audio_of(1)
        assert sum(s.duration_ms for s in chunks) == pytest.approx(1000, abs=1)
        assert all(s.duration_ms == 40 for s in chunks[:-1])
        (turn,) = core.observer.named("user_turn")
        (latency,) = core.observer.named("latency")
        assert turn.args[0] == latency.args[0] == 1
        assert latency.args[1] == pytest.approx(0, abs=1)  # the agent answers at once
        await core.hang_up()
        assert agent.closed and core.session.end_reason == "caller hung up"

    run_virtual(main)


def test_a_phone_turn_reaches_the_agent_at_its_own_rate() -> None:
    """μ-law 8 kHz on the wire; the agent takes PCM16 16 kHz: converted once, whole."""

    async def main() -> None:
        agent = tone_agent(reply_ms=400)
        core = await Core(agent, wire=ULAW_8K).start()
        await core.speak()
        await wait_until(lambda: "end" in core.port.names())
        (utterance,) = agent.utterances
        duration_s = len(utterance) / 2 / 16000
        assert 4.0 < duration_s < 6.0  # the 4.8 s recording, give or take its silences
        assert sum(len(s.chunk) for s in core.port.audio_of(1)) == 8 * 400  # μ-law 8 kHz
        await core.hang_up()

    run_virtual(main)


def test_barge_in_cancels_the_turn_and_reports_what_was_heard() -> None:
    async def main() -> None:
        agent = tone_agent(reply_ms=5000)
        core = await Core(agent).start()
        await core.speak()
        await wait_until(lambda: bool(core.port.audio_of(1)))
        first = core.port.audio_of(1)[0]
        await asyncio.sleep(1.0)
        await core.speak()  # the caller talks over the reply
        interrupt = core.port.first("interrupt")
        heard_ms = (interrupt.at_s - first.starts_s) * 1000
        assert agent.interruptions[0][0] == 1
        assert agent.interruptions[0][1] == pytest.approx(heard_ms, abs=1)
        # the recording opens with silence; speech start then needs 200 ms of voice
        assert 1000 < heard_ms < 2500
        assert agent.cancelled_turns == [1]
        assert all(s.sent_at_s <= interrupt.at_s for s in core.port.audio_of(1))
        assert core.port.played_ms(1) == pytest.approx(heard_ms, abs=1)
        ((turn_id, barge_heard_ms),) = [h.args for h in core.observer.named("barge_in")]
        assert turn_id == 1 and barge_heard_ms == pytest.approx(heard_ms, abs=1)
        # the interruption is a turn of its own, answered in full
        await wait_until(lambda: "end" in [c.name for c in core.port.calls if c.turn_id == 2])
        assert len(agent.utterances) == 2
        assert core.session.stats.barge_ins == 1
        await core.hang_up()

    run_virtual(main)


def test_a_far_end_interrupt_and_a_dropped_turn() -> None:
    async def main() -> None:
        agent = tone_agent(reply_ms=3000, greeting_ms=2000)
        core = await Core(agent).start()
        await asyncio.sleep(0.5)
        core.session.interrupt()  # a toy's button during the greeting
        await asyncio.sleep(0)
        ((turn_id, heard_ms),) = agent.interruptions
        assert turn_id == 1 and heard_ms == pytest.approx(500, abs=1)
        await core.speak()
        await wait_until(lambda: bool(core.port.audio_of(2)))
        assert core.session.drop_turn() == 2  # the transport's watchdog gave up on it
        assert agent.interruptions[-1] == (2, 0.0)
        assert not core.session.responding
        await core.hang_up()

    run_virtual(main)


def test_early_transcription_gets_the_very_audio_of_the_turn() -> None:
    class Preparing(ToneAgent):
        prepared: list[tuple[int, bytes]]

        def prepare(self, turn_id: int, utterance: bytes) -> None:
            self.prepared.append((turn_id, utterance))

    async def main() -> None:
        agent = Preparing(INFO, reply_ms=200)
        agent.prepared = []
        core = await Core(agent).start()
        await core.speak()
        await wait_until(lambda: bool(agent.utterances))
        assert agent.prepared[-1] == (1, agent.utterances[0])
        await core.hang_up()

    run_virtual(main)


@pytest.mark.parametrize("spoken_apology", [True, False])
def test_a_failed_turn_is_never_dead_air(spoken_apology: bool) -> None:
    async def main() -> None:
        agent = FailingTurnAgent(INFO)
        config = SessionConfig(spoken_apology=spoken_apology)
        core = await Core(agent, config).start()
        await core.speak()
        await wait_until(lambda: "end" in core.port.names())
        sent_ms = sum(s.duration_ms for s in core.port.audio_of(1))
        if spoken_apology:  # a phone hears the packaged apology instead of the reply
            apology_ms = len(apology_audio(PCM16_16K)) / 32
            assert sent_ms == pytest.approx(apology_ms, abs=1)
            assert core.port.first("end").detail == (True, True)
        else:  # a toy gets its transport's error signal
            assert sent_ms == 0 and core.port.first("end").detail == (False, False)
        assert [h.args for h in core.observer.named("agent_error")] == [("RuntimeError",)]
        assert core.session.phase.value == "live"  # the call stays up
        await core.hang_up()

    run_virtual(main)


def test_a_failing_agent_task_closes_the_call_with_1011() -> None:
    class Crashing(ToneAgent):
        async def start(self, out: AgentOutput) -> None:
            out.tasks.spawn(self._crash(), "crash")

        async def _crash(self) -> None:
            await asyncio.sleep(3)
            raise RuntimeError("bug in the agent")

    async def main() -> None:
        core = await Core(Crashing(INFO)).start()
        await core.closed.wait()
        assert core.port.close_code == 1011
        assert core.port.first("close").detail == (1011, "internal error")
        assert core.port.first("close").at_s == pytest.approx(3)
        assert core.session.end_reason == "error"

    run_virtual(main)


def test_agent_tasks_end_with_the_call() -> None:
    class Busy(ToneAgent):
        task: asyncio.Task[None]

        async def start(self, out: AgentOutput) -> None:
            self.task = out.tasks.spawn(asyncio.Event().wait(), "forever")  # type: ignore[arg-type]

    async def main() -> None:
        agent = Busy(INFO)
        core = await Core(agent).start()
        await asyncio.sleep(10)
        await core.hang_up()
        assert agent.task.cancelled()
        with pytest.raises(RuntimeError, match="closed"):
            core.session.tasks.spawn(asyncio.sleep(1), "late")

    run_virtual(main)


def test_silence_and_low_noise_never_make_a_turn() -> None:
    async def main() -> None:
        agent = tone_agent(reply_ms=400)
        core = await Core(agent).start()
        rng = np.random.default_rng(3)
        noise = rng.normal(0, 40, 16000 * 20).astype(np.int16).tobytes()
        await core.say(silence(PCM16_16K, 5000) + noise)
        assert agent.utterances == [] and "commit" not in core.port.names()
        assert core.session.stats.user_turns == 0
        await core.hang_up()

    run_virtual(main)


def turn_ended(core: Core, turn_id: int) -> bool:
    return any(c.name == "end" and c.turn_id == turn_id for c in core.port.calls)


def test_every_failed_turn_is_apologised_for_and_a_broken_observer_changes_nothing() -> None:
    class Broken(SessionObserver):
        calls = 0

        def on_user_turn(self, session: ObservedCall, turn_id: int, speech_ms: float) -> None:
            Broken.calls += 1
            raise RuntimeError("metrics backend down")

    async def main() -> None:
        core = Core(FailingTurnAgent(INFO), wire=ULAW_8K)
        core.session.observer = Observers(core.observer, Broken())
        await core.start()
        apology_ms = len(apology_audio(PCM16_16K)) / 32
        for turn_id in (1, 2):
            await core.speak()
            await wait_until(functools.partial(turn_ended, core, turn_id))
            sent_ms = sum(s.duration_ms for s in core.port.audio_of(turn_id))
            assert sent_ms == pytest.approx(apology_ms, abs=1)
            await asyncio.sleep(apology_ms / 1000)
        assert Broken.calls == 2 and len(core.observer.named("user_turn")) == 2
        assert core.session.stats.agent_errors == 2
        await core.hang_up()

    run_virtual(main)
