"""How an emulated caller listens: keeps the line alive and waits for the agent's audio.

Twilio streams the caller's microphone all the time, silence included, so while the caller
waits for the agent it keeps sending silence. "The agent has finished speaking" means: audio
that began after a given moment has played, and then ``quiet_s`` passed with nothing new.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from transports.twilio.emulator.client import FakeTwilio

POLL_S = 0.02
MS_PER_S = 1000.0


@dataclass(frozen=True)
class Heard:
    """What the caller heard after a moment: when audio began (None: it never did), and
    whether it then finished (``quiet_s`` of quiet before the deadline or the hang-up)."""

    began_at_s: float | None
    finished: bool


@contextlib.asynccontextmanager
async def line_kept_alive(peer: FakeTwilio, max_s: float) -> AsyncIterator[None]:
    """Stream silence in the background for at most ``max_s`` (as Twilio does between words)."""
    line = asyncio.create_task(peer.silence(int(max_s * MS_PER_S)), name="bridge-call-line")
    try:
        yield
    finally:
        line.cancel()
        await asyncio.gather(line, return_exceptions=True)


async def listen(
    peer: FakeTwilio, *, after_s: float, begin_by_s: float, end_by_s: float, quiet_s: float
) -> Heard:
    """Wait for audio that arrives at or after ``after_s`` (until ``begin_by_s``), then for it
    to finish: played out, and ``quiet_s`` without new audio (until ``end_by_s``).

    Times are ``time.monotonic()`` seconds (media arrival times, which are sorted). A call
    the server closed ends the wait as soon as what arrived has played.
    """
    began_at_s: float | None = None
    while True:
        now_s = time.monotonic()
        times = peer.timeline.media_times
        if began_at_s is None and (first := bisect.bisect_left(times, after_s)) < len(times):
            began_at_s = times[first]
        if began_at_s is not None:
            idle = not peer.model.has_queued
            if idle and (now_s - times[-1] > quiet_s or peer.is_closed):
                return Heard(began_at_s, finished=True)  # quiet, or hung up: nothing more comes
            if now_s > end_by_s:
                return Heard(began_at_s, finished=False)
        elif now_s > begin_by_s or peer.is_closed:
            return Heard(None, finished=False)
        await asyncio.sleep(POLL_S)
