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
from pipeline.tools.call_tools import CallTools


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
    #: True: a new session for a live identity replaces the old one (a toy reconnecting while
    #: its old TCP connection is still half-open). False: the newcomer is refused, unless
    #: the old one has heard nothing for ``dead_after_s`` (a stream that always sends audio
    #: and went quiet is dead: the newcomer takes over).
    supersede: bool = False
    dead_after_s: float | None = None
    #: the far end's own tools (a xiaozhi device's), offered to the call's agent
    tools: CallTools | None = None


def mask_phone(number: str) -> str:
    """Keep the last 4 digits of a phone number: enough to tell calls apart in logs."""
    if not number:
        return ""
    return "*" * max(0, len(number) - 4) + number[-4:]


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
