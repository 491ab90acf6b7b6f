"""The last thing a call does: its socket is gone, so everything it still holds is let go.

Split from ``session.py`` so the session reads as the live call; the order here is the
contract: no task of the call runs on (so nothing writes to a closed port), the agent gets
a bounded chance to close its connections, the recording is finished, and only then do the
observers see the call end (its records are final) and the summary line is logged.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol

from pipeline.agents.base import Agent
from pipeline.observers import ObservedCall, SessionObserver
from pipeline.playout import Playout
from pipeline.ports import AudioTap
from pipeline.tasks import TaskSet


class Closable(Protocol):
    def close(self) -> None: ...


class ClosingCall(ObservedCall, Protocol):
    """What tearing a call down needs of it (a :class:`~pipeline.session.CallSession`)."""

    tasks: TaskSet
    agent: Agent
    tap: AudioTap | None
    playout: Playout
    observer: SessionObserver
    clock: Callable[[], float]
    started_at: float

    @property
    def actions(self) -> Closable: ...


#: how long an agent may take to close its connections
AGENT_CLOSE_TIMEOUT_S = 1.0


async def tear_down(session: ClosingCall) -> None:
    """Cancel the call's tasks, close the agent and the tap, tell the observers, log."""
    session.actions.close()
    await session.tasks.cancel_all()
    try:
        await asyncio.wait_for(session.agent.close(), timeout=AGENT_CLOSE_TIMEOUT_S)
    except Exception as exc:  # an agent failing to close must not break teardown
        session.log.warning("agent close failed: %r", exc)
    if session.tap is not None:
        tap, session.tap = session.tap, None
        session.playout.tap = None
        try:
            tap.close()
        except Exception as exc:  # a recording must not break teardown
            session.log.warning("audio tap close failed: %r", exc)
    session.observer.on_call_ended(session)
    duration_s, playout = session.clock() - session.started_at, session.playout
    sent, dropped = playout.chunks_sent, playout.chunks_dropped
    session.log.info("%s", session.stats.summary(session.end_reason, duration_s, sent, dropped))
