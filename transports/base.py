"""What every transport adapter needs from the application, and nothing more.

Adapters know their wire protocol; the application (``bridge``) decides who may call, which
agent answers, and keeps the registry of live calls. The adapter asks it through
:class:`SessionOpener`, so no transport imports ``bridge`` or any agent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from pipeline.ports import CallPort
from pipeline.session import CallSession


@dataclass(frozen=True, slots=True)
class CallRequest:
    """A transport's description of a call that wants a session."""

    transport: str
    call_id: str
    #: the identity that may hold only one live session (a CallSid, a device)
    identity: str
    caller: str = ""
    callee: str = ""
    params: Mapping[str, str] = field(default_factory=dict)


class Rejected(Exception):
    """The application refused the call; the adapter closes with ``close_code``."""

    def __init__(self, close_code: int, reason: str) -> None:
        super().__init__(reason)
        self.close_code = close_code
        self.reason = reason


class AgentUnavailable(Exception):
    """The agent could not be started for this call."""


class SessionOpener(Protocol):
    async def open(self, request: CallRequest, port: CallPort) -> CallSession:
        """Create and start a session, or raise :class:`Rejected` / :class:`AgentUnavailable`."""
        ...

    async def closed(self, session: CallSession, reason: str) -> None:
        """The call is over: close the session and forget it."""
