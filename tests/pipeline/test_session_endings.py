"""How calls end, on a virtual clock: the agent's hang-up after its final audio, polite
endings (drains, limits) that never cut a reply, and the idle and duration limits."""

from __future__ import annotations

import asyncio

import pytest

from pipeline.agents.base import CallInfo
from pipeline.audio import PCM16_16K
from pipeline.lifecycle import Ending, Phase
from pipeline.session_config import DRAIN_GRACE_S, SessionConfig
from tests.fakes.agents import FAREWELL_MS, HangUpAgent, ToneAgent
from tests.support.core import Core, wait_until
from tests.support.virtual_time import run_virtual

INFO = CallInfo("call-1", "fake", PCM16_16K)


def test_the_agent_hangs_up_only_after_its_goodbye_was_heard() -> None:
    async def main() -> None:
        core = await Core(HangUpAgent(INFO, reply_ms=1200)).start()
        await core.speak()
        await wait_until(lambda: core.session.phase is Phase.HANGING_UP)
        await core.closed.wait()
        goodbye = core.port.audio_of(1)
        close = core.port.first("close")
        assert sum(s.duration_ms for s in goodbye) == pytest.approx(1200, abs=1)
        assert close.at_s >= goodbye[-1].ends_s  # every chunk had played
        assert close.at_s - goodbye[-1].ends_s < DRAIN_GRACE_S
        assert close.detail == (1000, "agent said goodbye")
        assert core.session.end_reason == "agent said goodbye"
        assert core.session.phase is Phase.CLOSED

    run_virtual(main)


@pytest.mark.parametrize("farewell", [True, False])
def test_a_polite_end_lets_the_reply_finish_then_says_farewell(farewell: bool) -> None:
    async def main() -> None:
        agent = ToneAgent(INFO, reply_ms=2000)
        core = await Core(agent).start()
        await core.speak()
        await wait_until(lambda: bool(core.port.audio_of(1)))
        await asyncio.sleep(0.5)
        core.session.end(Ending.politely("server shutdown", farewell=farewell, close_code=1001))
        assert core.session.phase is Phase.ENDING
        await core.closed.wait()
        reply = core.port.audio_of(1)
        assert sum(s.duration_ms for s in reply) == pytest.approx(2000, abs=1)  # not cut
        assert "interrupt" not in core.port.names()
        close = core.port.first("close")
        assert close.detail == (1001, "server shutdown")
        if farewell:
            bye = core.port.audio_of(2)
            assert agent.farewells == 1
            assert sum(s.duration_ms for s in bye) == pytest.approx(FAREWELL_MS, abs=1)
            assert bye[0].starts_s >= reply[-1].ends_s
            assert close.at_s >= bye[-1].ends_s
        else:
            assert agent.farewells == 0 and close.at_s >= reply[-1].ends_s

    run_virtual(main)


def test_a_later_request_can_only_bring_the_end_sooner() -> None:
    async def main() -> None:
        agent = ToneAgent(INFO, reply_ms=30_000)
        core = await Core(agent).start()
        await core.speak()
        await wait_until(lambda: bool(core.port.audio_of(1)))
        core.session.end(Ending.politely("drain"))
        core.session.hang_up("too late to be polite")  # moves on to HANGING_UP
        assert core.session.phase is Phase.HANGING_UP
        core.session.end(Ending.politely("ignored"))
        assert core.session.phase is Phase.HANGING_UP
        await asyncio.sleep(5)
        forced_at_s = core.now_s
        core.session.end(Ending.now("forced", 1001))
        await core.closed.wait()
        assert [c.detail for c in core.port.calls if c.name == "close"] == [(1001, "forced")]
        assert core.port.first("close").at_s == forced_at_s  # at once, mid-reply
        assert core.session.end_reason == "forced"
        assert agent.farewells == 0

    run_virtual(main)


def test_an_idle_call_ends_politely_at_the_limit() -> None:
    async def main() -> None:
        agent = ToneAgent(INFO, reply_ms=500)
        core = await Core(agent, SessionConfig(idle_timeout_s=30)).start()
        await asyncio.sleep(20)
        await core.speak()  # speaking at 20 s moves the idle deadline
        spoke_at_s = core.session.last_activity
        await core.closed.wait()
        close = core.port.first("close")
        assert close.detail == (1000, "idle timeout")
        assert agent.farewells == 1
        bye = core.port.audio_of(2)
        assert bye[0].sent_at_s == pytest.approx(spoke_at_s + 30, abs=0.05)
        assert close.at_s >= bye[-1].ends_s

    run_virtual(main)


def test_a_long_call_ends_at_its_maximum_duration_but_never_mid_reply() -> None:
    async def main() -> None:
        agent = ToneAgent(INFO, reply_ms=8000)
        config = SessionConfig(idle_timeout_s=30, max_duration_s=60)
        core = await Core(agent, config).start()
        for _ in range(2):  # keeps the call from going idle
            await core.speak()
            await asyncio.sleep(20)
        await asyncio.sleep(50 - core.now_s)
        await core.speak()  # the reply to this one is playing at 60 s
        await core.closed.wait()
        assert core.port.first("close").detail == (1000, "maximum duration")
        reply = core.port.audio_of(3)
        assert reply[0].starts_s < 60 < reply[-1].ends_s
        assert sum(s.duration_ms for s in reply) == pytest.approx(8000, abs=1)
        assert core.port.audio_of(4)[0].starts_s >= reply[-1].ends_s  # then the farewell

    run_virtual(main)


def test_the_transport_going_away_ends_everything_at_once() -> None:
    async def main() -> None:
        agent = ToneAgent(INFO, reply_ms=20_000)
        core = await Core(agent).start()
        await core.speak()
        await wait_until(lambda: bool(core.port.audio_of(1)))
        await core.hang_up("stop")
        assert core.session.phase is Phase.CLOSED
        assert agent.closed and agent.cancelled_turns == [1]
        assert [h.args for h in core.observer.named("ended")] == [("stop",)]
        core.session.end(Ending.now("too late", 1011))  # ignored once closed
        frames_in = core.session.stats.frames_in
        core.session.push_audio(b"\x00" * 640)
        assert core.session.stats.frames_in == frames_in and "close" not in core.port.names()

    run_virtual(main)
