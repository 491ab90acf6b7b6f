"""Graceful drain: stop admitting calls, let live ones finish, end the rest politely.

A deploy must not cut a call mid-sentence. :meth:`Drainer.drain` runs in three steps:

1. refuse every new call (:attr:`Admission.draining`; the routes answer busy TwiML, 1013 or
   503) while live calls go on, up to ``timeout_s``;
2. at the deadline, ask each remaining session to end politely: the reply in progress plays
   to its end first, then phone calls hear the agent's ``farewell()`` and are closed after
   their final mark; toys are closed as soon as their reply has played, without
   ``SESSION.END`` (which would put the device to sleep) so they reconnect to the next
   instance. Both close with 1001 (going away), as the wire specs ask for a shutdown;
3. whatever is still open ``FORCE_AFTER_S`` later is closed outright.

Then :attr:`Drainer.drained` is set; the server exits and the app's lifespan shutdown runs
(which writes the call records still queued).
"""

from __future__ import annotations

import asyncio
import logging
import time

from bridge.ops.admission import Admission
from bridge.switchboard import Switchboard
from pipeline.lifecycle import Ending

log = logging.getLogger("bridge.ops.drain")

#: after the deadline, how long polite endings (reply, farewell, final mark) may take
FORCE_AFTER_S = 15.0
#: WebSocket close code of a call ended by a shutdown (RFC 6455: "going away")
SHUTDOWN_CLOSE_CODE = 1001
SHUTDOWN_REASON = "server shutdown"
#: transports whose calls hear a farewell before the shutdown close
FAREWELL_TRANSPORTS = frozenset({"twilio"})
POLL_S = 0.1


class Drainer:
    def __init__(self, admission: Admission, switchboard: Switchboard) -> None:
        self._admission = admission
        self._switchboard = switchboard
        self.drained = asyncio.Event()
        self._lock = asyncio.Lock()

    @property
    def draining(self) -> bool:
        return self._admission.draining

    def _quiet(self) -> bool:
        """No session and no media connection left (a stream waiting for `start` counts)."""
        return not self._switchboard.sessions() and self._admission.total() == 0

    async def _wait_quiet(self, until_s: float) -> bool:
        while not self._quiet():
            if time.monotonic() >= until_s:
                return False
            await asyncio.sleep(POLL_S)
        return True

    async def drain(self, timeout_s: float) -> None:
        """Run the drain (idempotent: a second caller waits for the first to finish)."""
        async with self._lock:
            if self.drained.is_set():
                return
            self._admission.draining = True
            live = len(self._switchboard.sessions())
            log.info("draining: refusing new calls; %d live, deadline in %.0f s", live, timeout_s)
            if not await self._wait_quiet(time.monotonic() + timeout_s):
                self._end_politely()
                if not await self._wait_quiet(time.monotonic() + FORCE_AFTER_S):
                    await self._force_close()
            log.info("drained")
            self.drained.set()

    def _end_politely(self) -> None:
        sessions = self._switchboard.sessions()
        log.info("drain deadline: ending %d live calls politely", len(sessions))
        for session in sessions:
            farewell = session.call.transport in FAREWELL_TRANSPORTS
            session.end(
                Ending.politely(SHUTDOWN_REASON, farewell=farewell, close_code=SHUTDOWN_CLOSE_CODE)
            )

    async def _force_close(self) -> None:
        sessions = self._switchboard.sessions()
        log.warning("%d calls did not end in time; closing them", len(sessions))
        for session in sessions:
            session.end(Ending.now(SHUTDOWN_REASON, SHUTDOWN_CLOSE_CODE))
        await self._wait_quiet(time.monotonic() + 2.0)
