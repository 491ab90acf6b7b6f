"""How a call ends: one phase, one request type, one table of what may follow what.

A call is :attr:`Phase.LIVE` until something asks it to end with an :class:`Ending`; the
ending names the phase the call enters, and a later ending can only make the end come sooner:

* ``ENDING``: the reply in progress plays to its end, the agent may say a farewell, then the
  call hangs up (a drain, an idle or duration limit);
* ``HANGING_UP``: the audio queued so far plays and is heard, then the port closes (the agent
  said goodbye);
* ``CLOSING``: the port closes now (an internal error, a superseded device, a forced shutdown).

``CLOSED`` follows whichever came last, once the transport reports its socket gone and the
session has torn down. Inbound audio is handled until ``CLOSING``.

Pure: no asyncio, no clocks. :data:`TRANSITIONS` is the whole state machine; the session
consults it and the tests walk it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Phase(Enum):
    LIVE = "live"
    ENDING = "ending"
    HANGING_UP = "hanging_up"
    CLOSING = "closing"
    CLOSED = "closed"


#: (phase now, phase an ending asks for) -> the phase the call enters. A pair that is not
#: here is a request that comes too late to change anything: it is ignored.
TRANSITIONS: dict[tuple[Phase, Phase], Phase] = {
    (Phase.LIVE, Phase.ENDING): Phase.ENDING,
    (Phase.LIVE, Phase.HANGING_UP): Phase.HANGING_UP,
    (Phase.LIVE, Phase.CLOSING): Phase.CLOSING,
    (Phase.ENDING, Phase.HANGING_UP): Phase.HANGING_UP,
    (Phase.ENDING, Phase.CLOSING): Phase.CLOSING,
    (Phase.HANGING_UP, Phase.CLOSING): Phase.CLOSING,
    # the transport's socket is gone: teardown, from wherever the call was
    (Phase.LIVE, Phase.CLOSED): Phase.CLOSED,
    (Phase.ENDING, Phase.CLOSED): Phase.CLOSED,
    (Phase.HANGING_UP, Phase.CLOSED): Phase.CLOSED,
    (Phase.CLOSING, Phase.CLOSED): Phase.CLOSED,
}

#: phases in which the caller is still heard (inbound audio, DTMF, barge-in)
LISTENING = frozenset({Phase.LIVE, Phase.ENDING, Phase.HANGING_UP})


def next_phase(now: Phase, wanted: Phase) -> Phase | None:
    """The phase a request for ``wanted`` leads to from ``now``, or None if it is too late."""
    return TRANSITIONS.get((now, wanted))


@dataclass(frozen=True, slots=True)
class Ending:
    """A request to end the call: how soon, why, and with which close code."""

    #: the phase the call enters: ENDING, HANGING_UP or CLOSING
    via: Phase
    #: why, for logs, metrics and call records (``end_reason``)
    reason: str
    close_code: int = 1000
    #: ENDING only: the agent says its farewell before the hang-up
    farewell: bool = False
    #: the close frame's reason text, when it differs from ``reason``
    close_text: str = ""

    @classmethod
    def politely(cls, reason: str, *, farewell: bool = True, close_code: int = 1000) -> Ending:
        """Never cut anyone off: the reply plays to its end, then the farewell, then hang up."""
        return cls(Phase.ENDING, reason, close_code, farewell)

    @classmethod
    def after_audio(cls, reason: str, close_code: int = 1000) -> Ending:
        """Hang up once everything queued so far has been heard (the agent's goodbye)."""
        return cls(Phase.HANGING_UP, reason, close_code)

    @classmethod
    def now(cls, reason: str, close_code: int, close_text: str = "") -> Ending:
        """Close the port at once."""
        return cls(Phase.CLOSING, reason, close_code, close_text=close_text)

    @property
    def wire_reason(self) -> str:
        return self.close_text or self.reason
