"""What a call does besides talking: keypad entries, a voicemail, a hand-over to a person.

* **The keypad.** Digits are gathered into one entry ("press 1", or an account number and
  ``#``): the entry ends at ``#`` or after ``keypad_gap_s`` without another key. Like speech,
  an entry cuts off a reply (a real interruption: callers press a key to skip a menu), then
  becomes a user turn of its own, which an agent that reads the keypad answers
  (:meth:`~pipeline.agents.base.Agent.keypad`); the records keep the digits with the turn.
* **Voicemail.** On an outbound call Twilio's answering-machine detection says who answered.
  After a machine's beep the agent stops whatever it was saying, leaves its persona's message
  and hangs up; from then on nothing the line hears is a turn (the machine records).
* **A transfer.** What the agent said is heard first; then the transport hands the call over
  (Twilio ends the stream itself), and the call's end says where it went.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, Protocol

from pipeline.barge_in import BargeIn
from pipeline.ending import EndingCall, heard_all
from pipeline.lifecycle import Ending
from pipeline.observers import ObservedCall, SessionObserver
from pipeline.session_config import SessionConfig
from pipeline.tasks import TaskSet
from pipeline.tools.base import TransferTarget


class ActingCall(EndingCall, ObservedCall, Protocol):
    """What the actions need of their call (a :class:`~pipeline.session.CallSession`)."""

    config: SessionConfig
    tasks: TaskSet
    barge_in: BargeIn
    observer: SessionObserver

    def keypad_turn(self, digits: str) -> Coroutine[Any, Any, None]: ...


#: Twilio's answering-machine verdicts after the greeting ended (``DetectMessageEnd``)
MACHINE_ENDED = ("machine_end_beep", "machine_end_silence", "machine_end_other")
#: a keypad entry ends at this key at once (it is not part of the entry)
END_KEY = "#"
#: the transport ends the stream after a transfer; if it has not after this, we do
TRANSFER_CLOSE_AFTER_S = 10.0


class CallActions:
    def __init__(self, session: ActingCall) -> None:
        self._session = session
        self._keys = ""
        self._gap: asyncio.TimerHandle | None = None
        #: a voicemail is being left: the line's sounds are a machine's, never turns
        self.leaving_message = False

    # -- the keypad ------------------------------------------------------------------------

    def key(self, digit: str) -> None:
        """One key; the entry ends at ``#`` or after the gap."""
        if self._gap is not None:
            self._gap.cancel()
            self._gap = None
        if digit == END_KEY:
            self._enter(self._keys or END_KEY)
            return
        self._keys += digit
        gap_s = self._session.config.keypad_gap_s
        self._gap = asyncio.get_running_loop().call_later(gap_s, self._enter, self._keys)

    def _enter(self, digits: str) -> None:
        self._keys, self._gap = "", None
        session = self._session
        if not self.leaving_message:
            session.tasks.spawn(session.keypad_turn(digits), "keypad")

    def close(self) -> None:
        if self._gap is not None:
            self._gap.cancel()

    # -- voicemail -------------------------------------------------------------------------

    def answered_by(self, kind: str) -> None:
        """Who answered an outbound call (Twilio's ``AnsweredBy``)."""
        session = self._session
        session.log.info("answered by %s", kind)
        if kind in MACHINE_ENDED and not self.leaving_message:
            self.leaving_message = True
            session.tasks.spawn(self._leave_message(), "voicemail")
        elif kind == "fax":
            session.end(Ending.now("answered by a fax", 1000))

    async def _leave_message(self) -> None:
        session = self._session
        await session.barge_in.cut()
        message = session.agent.voicemail
        if not message:
            session.end(Ending.now("answering machine", 1000))
            return
        turn = session.begin_turn()
        try:
            await session.agent.say(turn, message, session)
        finally:
            session.end_turn(turn)
        session.end(Ending.after_audio("voicemail left"))

    # -- a transfer ------------------------------------------------------------------------

    async def transfer(self, target: TransferTarget) -> None:
        """Let everything queued be heard, then hand the call to ``target``; raises
        :class:`~pipeline.tools.base.TransferFailed` and the call goes on."""
        session = self._session
        await heard_all(session, "the handoff line")
        await session.port.transfer(target)
        destination = f"{target.name} {target.to}"
        session.log.info("call transferred to %s", destination)
        session.end_reason = "transferred"
        session.observer.on_transfer(session, destination)
        session.tasks.spawn(self._close_later(), "transferred")

    async def _close_later(self) -> None:
        """The transport ends the stream once the call has left; if it does not, we do."""
        await asyncio.sleep(TRANSFER_CLOSE_AFTER_S)
        self._session.end(Ending.now("transferred", 1000))
