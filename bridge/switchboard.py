"""The registry of live calls, and the one place where a call gets its agent and session."""

from __future__ import annotations

import logging
from collections import defaultdict

from pipeline.agents.base import AgentFactory, CallInfo
from pipeline.endpointing import native_spec
from pipeline.lifecycle import Ending
from pipeline.observers import SessionObserver
from pipeline.ports import CallPort
from pipeline.session import CallSession
from pipeline.session_config import SessionConfig
from transports.base import AgentUnavailable, CallRequest, Rejected

log = logging.getLogger("bridge.switchboard")

#: close code of a device session replaced by a newer connection of the same device
SUPERSEDED_CLOSE_CODE = 4000
#: close code of a second stream for a call whose first stream is alive (Twilio opened two,
#: or a webhook was answered twice): refused, so the call never has two agents
DUPLICATE_CLOSE_CODE = 4409


class Switchboard:
    """Implements :class:`transports.base.SessionOpener` for every transport."""

    def __init__(
        self,
        factory: AgentFactory,
        session_configs: dict[str, SessionConfig],
        observer: SessionObserver | None = None,
    ) -> None:
        self.factory = factory
        self._configs = session_configs
        self._observer = observer
        self._live: dict[str, dict[str, CallSession]] = defaultdict(dict)
        self.calls_total: dict[str, int] = defaultdict(int)

    def counts(self) -> dict[str, int]:
        return {transport: len(calls) for transport, calls in self._live.items()}

    def sessions(self) -> list[CallSession]:
        return [s for calls in self._live.values() for s in calls.values()]

    def find(self, transport: str, identity: str) -> CallSession | None:
        """The live session of ``identity`` (a CallSid, a device id) on ``transport``."""
        return self._live[transport].get(identity)

    async def open(self, request: CallRequest, port: CallPort) -> CallSession:
        live = self._live[request.transport]
        previous = live.get(request.identity)
        if previous is not None:
            self._replace(live, request, previous)
        call = CallInfo(
            call_id=request.call_id,
            transport=request.transport,
            native_in=native_spec(port.wire_in),
            caller=request.caller,
            callee=request.callee,
            params=dict(request.params),
            wire_in=port.wire_in,
            wire_out=port.wire_out,
            tools=request.tools,
        )
        try:
            agent = self.factory.create(call)
        except Exception as exc:
            raise AgentUnavailable(
                f"{self.factory.name} agent could not be created: {exc!r}"
            ) from exc
        config = self._configs.get(request.transport, SessionConfig())
        session = CallSession(call, port, agent, config, self._observer)
        live[request.identity] = session
        self.calls_total[request.transport] += 1
        try:
            await session.start()
        except Exception as exc:
            del live[request.identity]
            await session.close("agent failed to start")
            raise AgentUnavailable(f"{self.factory.name} agent failed to start: {exc!r}") from exc
        session.log.info("call started caller=%s", call.caller)
        if self._observer is not None:
            self._observer.on_call_started(session)
        return session

    @staticmethod
    def _replace(live: dict[str, CallSession], request: CallRequest, old: CallSession) -> None:
        """A second connection for a live identity: a device's reconnect supersedes its old
        session; a stream takes over from a dead one; anything else is refused."""
        quiet_s = old.clock() - old.last_frame_at
        dead = request.dead_after_s is not None and quiet_s >= request.dead_after_s
        if not (request.supersede or dead):
            old.log.warning("refused a second stream for this live call (its audio is flowing)")
            raise Rejected(DUPLICATE_CLOSE_CODE, "a live stream already exists for this call")
        if dead:
            old.log.warning("a new stream takes over: this one sent nothing for %.1f s", quiet_s)
        else:
            old.log.info("superseded by a new connection of the same device")
        del live[request.identity]
        old.end(Ending.now("superseded", SUPERSEDED_CLOSE_CODE))

    async def closed(self, session: CallSession, reason: str) -> None:
        live = self._live[session.call.transport]
        for identity, candidate in list(live.items()):
            if candidate is session:
                del live[identity]
        await session.close(reason)
