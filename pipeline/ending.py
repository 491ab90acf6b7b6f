"""How a call's end is carried out, phase by phase (``lifecycle.py`` says which phase).

Each function runs as one task of the call: waiting for the reply to end and saying the
farewell (ENDING), letting the goodbye be heard (HANGING_UP), closing the port (CLOSING), and
the watch on the idle and duration limits that asks for the first of these.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Protocol

from pipeline.agents.base import Agent, AgentOutput
from pipeline.call_logger import CallLog
from pipeline.lifecycle import Ending, Phase
from pipeline.playout import Playout
from pipeline.ports import CallPort
from pipeline.session_config import (
    DRAIN_GRACE_S,
    HANGUP_PLAYOUT_TIMEOUT_S,
    MARK_POLL_S,
    REPLY_POLL_S,
)
from pipeline.time_limits import TimeLimits


class EndingCall(AgentOutput, Protocol):
    """What ending a call needs of it (a :class:`~pipeline.session.CallSession`)."""

    agent: Agent
    port: CallPort
    playout: Playout
    log: CallLog
    phase: Phase
    end_reason: str
    started_at: float
    last_activity: float
    clock: Callable[[], float]

    @property
    def responding(self) -> bool: ...

    @property
    def turn_task(self) -> asyncio.Task[Any] | None: ...

    def end(self, ending: Ending) -> None: ...


async def end_after_reply(session: EndingCall, ending: Ending) -> None:
    """ENDING: never cut a reply (no event marks its end, so look again now and then);
    then the farewell, then the hang-up."""
    while session.responding:  # noqa: ASYNC110 - the port's playback has no event
        await asyncio.sleep(REPLY_POLL_S)
    if session.phase is not Phase.ENDING:
        return  # a sooner end took over meanwhile
    session.log.info("ending the call: %s", ending.reason)
    if ending.farewell:
        turn = session.begin_turn()
        try:
            await session.agent.farewell(turn, session)
        finally:
            session.end_turn(turn)
    session.end(Ending.after_audio(ending.reason, ending.close_code))


async def hang_up(session: EndingCall, ending: Ending) -> None:
    """HANGING_UP: let the goodbye play out and be heard, then close the port."""
    turn_task = session.turn_task
    if turn_task is not None and turn_task is not asyncio.current_task():
        await asyncio.wait({turn_task}, timeout=HANGUP_PLAYOUT_TIMEOUT_S)
    await heard_all(session, "goodbye")
    if session.phase is Phase.HANGING_UP:
        session.end(Ending.now(ending.reason, ending.close_code))


async def heard_all(session: EndingCall, what: str) -> None:
    """Wait until everything queued so far has been sent and played at the far end (a
    goodbye before the hang-up, a handoff line before a transfer), within bounds."""
    try:
        async with asyncio.timeout(HANGUP_PLAYOUT_TIMEOUT_S):
            await session.playout.wait_idle()
    except TimeoutError:
        session.log.warning("%s did not finish playing in time", what)
    await session.port.drain(session.port.unacked_ms() / 1000 + DRAIN_GRACE_S)


async def heard_up_to(session: EndingCall, turn_id: int, position_ms: float | None) -> None:
    """Until the far end has played ``turn_id`` up to ``position_ms`` (a mark's place; None:
    the whole turn), or there is nothing more of it to hear. A position in the turn's last
    partial chunk is reached once the turn's end has been sent."""
    while True:
        live = session.playout.is_live(turn_id)
        heard_ms = session.playout.heard_ms(turn_id, session.port.unacked_ms())
        if position_ms is not None and heard_ms is not None and heard_ms >= position_ms:
            return
        if not live and (position_ms is None or heard_ms is None):
            break
        if not live and session.port.unacked_ms() <= 0:
            return
        await asyncio.sleep(MARK_POLL_S)
    await heard_all(session, "marked audio")


async def close_port(session: EndingCall, ending: Ending) -> None:
    """CLOSING: the port closes now; the transport then reports its socket gone."""
    session.end_reason = session.end_reason or ending.reason
    await session.port.close(ending.close_code, ending.wire_reason)


async def enforce_time_limits(session: EndingCall, limits: TimeLimits) -> None:
    """One task per call: sleeps until the nearest deadline (idle or total duration)."""
    while session.phase is Phase.LIVE:
        when_s, reason = limits.next_deadline(session.started_at, session.last_activity)
        now_s = session.clock()
        if when_s > now_s:
            await asyncio.sleep(when_s - now_s)
        elif session.responding:  # never cut a reply: look again once it has played
            await asyncio.sleep(REPLY_POLL_S)
        else:
            session.end(Ending.politely(reason))
