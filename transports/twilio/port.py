"""The :class:`~pipeline.ports.CallPort` of one Twilio Media Stream.

Audio goes out as ``media`` frames, each followed by a ``mark`` whose echo says it was played;
the mark ledger in the protocol core turns those echoes into "how much of each turn was
heard". A barge-in is one ``clear`` (only if something is unplayed).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from pipeline.audio import ULAW_8K
from pipeline.tools.base import TransferFailed, TransferTarget
from transports.link import Link
from transports.twilio.binding import StreamTokens
from transports.twilio.protocol import TwilioProtocol

log = logging.getLogger("transports.twilio")

#: ends a call at Twilio (REST), given its CallSid; must never raise
CallCompleter = Callable[[str], Awaitable[None]]
#: hands a live call to a person at Twilio (REST: the call's TwiML becomes a ``<Dial>``),
#: given its CallSid, the target and the stream's custom parameters (from, to, persona);
#: raises :class:`~pipeline.tools.base.TransferFailed`
CallTransferrer = Callable[[str, TransferTarget, Mapping[str, str]], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class TwilioOptions:
    chunk_ms: int = 40
    lead_ms: int = 400
    start_timeout_s: float = 5.0
    #: when set, ``start`` must carry a stream token minted for its CallSid (else 1008)
    stream_tokens: StreamTokens | None = None
    #: when set, an agent hang-up also completes the call through Twilio's REST API, after
    #: the goodbye was heard and before the stream closes (the TwiML continues after
    #: ``</Connect>``, see bridge/twilio/twiml.py)
    complete_call: CallCompleter | None = None
    #: when set, an agent may transfer the call to a person (``transfer_call`` tool)
    transfer_call: CallTransferrer | None = None
    #: wall clock for stream-token expiry
    clock: Callable[[], float] = time.time


class TwilioPort:
    transport = "twilio"
    wire_in = ULAW_8K
    wire_out = ULAW_8K
    #: after a ``clear``, more ``media`` simply plays
    resumable = True

    def __init__(self, link: Link, proto: TwilioProtocol, options: TwilioOptions) -> None:
        self.chunk_ms = options.chunk_ms
        self.lead_ms = options.lead_ms
        self._complete_call = options.complete_call
        self._transfer_call = options.transfer_call
        #: the stream's custom parameters (from, to, persona), set when it starts
        self.call_params: Mapping[str, str] = {}
        #: the call was handed to a person: it is theirs now, never ours to complete
        self._transferred = False
        self._link = link
        self._proto = proto
        self._all_played = asyncio.Event()
        self._all_played.set()

    async def commit_user_turn(self, turn_id: int) -> None:
        pass

    async def begin_response(self, turn_id: int) -> None:
        pass

    async def send_audio(self, turn_id: int, chunk: bytes, duration_ms: float) -> None:
        async with self._link.lock:
            if not self._proto.can_send:  # nothing may follow a stop
                return
            media, mark = self._proto.media_frames(turn_id, chunk, duration_ms)
            self._all_played.clear()
            await self._link.send_locked(media, mark)

    async def end_response(self, turn_id: int, *, had_audio: bool, ok: bool) -> None:
        pass

    async def interrupt(self, turn_id: int) -> float:
        async with self._link.lock:
            frame = self._proto.clear_frame() if self._proto.can_send else None
            if frame is not None:
                await self._link.send_locked(frame)
        self._all_played.set()
        return self._proto.heard_ms(turn_id)

    def is_playing(self) -> bool:
        return self._proto.pending_marks > 0

    def unacked_ms(self) -> float:
        return self._proto.pending_ms

    def mark_played(self) -> None:
        """A mark came back; once none is pending, everything sent has been heard."""
        if self._proto.pending_marks == 0:
            self._all_played.set()

    async def drain(self, timeout_s: float) -> None:
        try:
            async with asyncio.timeout(timeout_s):
                await self._all_played.wait()
        except TimeoutError:
            log.warning("marks not echoed within %.1fs; closing anyway", timeout_s)

    async def close(self, code: int, reason: str) -> None:
        """The session ends the call: 1000 after an agent hang-up (goodbye heard), or else.

        A hang-up of a live stream is first completed through the REST API when configured,
        so Twilio does not go on to the TwiML after ``</Connect>``. A failure (1011) does go
        on to it: that is what the apology is for.
        """
        call_sid = self._proto.call_sid
        if (
            code == 1000
            and not self._transferred
            and self._complete_call is not None
            and call_sid
            and self._proto.can_send
            and self._link.open
        ):
            await self._complete_call(call_sid)
        await self._link.close(code, reason)

    async def transfer(self, target: TransferTarget) -> None:
        """The call's TwiML becomes a ``<Dial>`` to ``target`` (Twilio then stops the
        stream); without REST credentials and a public host there is no transfer."""
        call_sid = self._proto.call_sid
        if self._transfer_call is None or not call_sid:
            raise TransferFailed("transfers need Twilio REST credentials and a public host")
        await self._transfer_call(call_sid, target, self.call_params)
        self._transferred = True
