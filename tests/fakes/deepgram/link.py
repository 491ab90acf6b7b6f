"""One accepted WebSocket of the fake Deepgram: ordered sending, reading, faults, idleness.

The protocol cores (:mod:`~tests.fakes.deepgram.nova`, :mod:`~tests.fakes.deepgram.flux`,
:mod:`~tests.fakes.deepgram.aura`) decide *what* to send; a :class:`Link` decides *when*:

* in order, through one outbox, so an injected delay before the first answer of an
  utterance, turn or flush (``FakeDeepgram.first_result_delay_s``, a provider's latency for
  benchmarks) holds back what follows it too, as a slower service would;
* faults strike after a given number of sent messages (:class:`~.records.Fault`): a drop
  cuts the TCP connection without a close frame (the client sees 1006), a stall stops all
  sending but keeps reading and recording, a close sends a close frame with a code;
* a Nova-3 socket that receives nothing (no audio, no text) for
  ``Tuning.idle_timeout_s`` is closed with 1011 and a ``NET-0001`` reason, as Deepgram
  documents ("If no audio data or KeepAlive messages are sent within a 10-second window,
  the connection will close with a NET-0001 error", https://developers.deepgram.com/docs/audio-keep-alive).

Everything the client sends is recorded with its arrival time before the protocol sees it,
and everything sent is recorded as it goes out.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

from starlette.websockets import WebSocket, WebSocketDisconnect

from tests.fakes.deepgram.records import ClientMessage, Connection, Emit, Fault, SentMessage

#: the reason Deepgram gives when it closes an idle stream (its troubleshooting pages)
NET_0001 = (
    "NET-0001: Deepgram did not receive audio data or a text message within the timeout "
    "window. See https://dpgr.am/net0001"
)
#: the reason of an injected close fault
INJECTED_CLOSE = "NET-0000: The service has encountered an internal error (injected fault)."
#: what a send raises once the client is gone (uvicorn's ClientDisconnected is an OSError)
_GONE = (OSError, RuntimeError, WebSocketDisconnect)


@dataclass(slots=True)
class _Queued:
    emit: Emit
    not_before: float


class Link:
    def __init__(
        self,
        ws: WebSocket,
        record: Connection,
        *,
        delay_s: Callable[[], float],
        error_event: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        self.ws = ws
        self.record = record
        self.fault = record.fault
        self._delay_s = delay_s
        self._error_event = error_event
        self._queue: deque[_Queued] = deque()
        self._changed = asyncio.Event()
        self.sent_count = 0
        self.stalled = False
        #: a close is queued: what the client sends now is recorded and otherwise ignored
        self.closing = False

    # -- what the protocol cores call --------------------------------------------------

    def emit(self, emits: Iterable[Emit]) -> None:
        now = time.monotonic()
        for emit in emits:
            delay_s = self._delay_s() if emit.first else 0.0
            self._queue.append(_Queued(emit, now + delay_s))
            self.closing = self.closing or emit.close is not None
        self._changed.set()

    def purge(self, drop: Callable[[Emit], bool]) -> None:
        """Forget queued messages that ``drop`` selects (they were never sent)."""
        self._queue = deque(q for q in self._queue if not drop(q.emit))
        self._changed.set()

    # -- the connection ----------------------------------------------------------------

    async def run(
        self, handle: Callable[[ClientMessage], Awaitable[None]], idle_timeout_s: float | None
    ) -> None:
        """Serve until the client leaves or the fake closes or drops the socket. On return
        without a close frame sent, uvicorn closes the transport: that is the drop."""
        sender = asyncio.create_task(self._send_loop(), name="deepgram-fake-send")
        reader = asyncio.create_task(
            self._read_loop(handle, idle_timeout_s), name="deepgram-fake-read"
        )
        try:
            await asyncio.wait({sender, reader}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (sender, reader):
                task.cancel()
            outcomes = await asyncio.gather(sender, reader, return_exceptions=True)
            record = self.record
            if record.closed_at is None:
                record.closed_at = time.monotonic()
        for outcome in outcomes:  # a bug in the fake shows as uvicorn's ASGI error log
            if isinstance(outcome, Exception):
                raise outcome

    async def _read_loop(
        self, handle: Callable[[ClientMessage], Awaitable[None]], idle_timeout_s: float | None
    ) -> None:
        while True:
            timeout_s = None if self.stalled or self.closing else idle_timeout_s
            try:
                message = await asyncio.wait_for(self.ws.receive(), timeout_s)
            except TimeoutError:
                self.emit([Emit(close=(1011, NET_0001))])
                continue
            except _GONE:
                self._closed_by("client", 1006, "")
                return
            if message["type"] == "websocket.disconnect":
                self._closed_by(
                    "client", int(message.get("code", 1005)), message.get("reason") or ""
                )
                return
            data, text = message.get("bytes"), message.get("text")
            received = ClientMessage(time.monotonic(), data=data, text=None if data else text)
            self.record.messages.append(received)
            if not self.closing:
                await handle(received)

    async def _send_loop(self) -> None:
        fault = self.fault
        while True:
            if (
                fault is not None
                and fault.kind != "status"
                and self.sent_count >= fault.after_messages
            ):
                await self._strike(fault)
                return
            emit = await self._next()
            if emit.close is not None:
                code, reason = emit.close
                self._closed_by("server", code, reason)
                with contextlib.suppress(*_GONE):
                    await self.ws.close(code, reason)
                return
            try:
                await self._send(emit)
            except _GONE:
                return

    async def _next(self) -> Emit:
        """The head of the queue once it is due (a purge may remove it while it waits)."""
        while True:
            self._changed.clear()
            if self._queue:
                wait_s = self._queue[0].not_before - time.monotonic()
                if wait_s <= 0:
                    return self._queue.popleft().emit
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), wait_s)
            else:
                await self._changed.wait()

    async def _send(self, emit: Emit) -> None:
        if emit.event is not None:
            await self.ws.send_text(json.dumps(emit.event))
            self.record.sent.append(SentMessage(time.monotonic(), event=emit.event))
        elif emit.audio is not None:
            await self.ws.send_bytes(emit.audio)
            self.record.sent.append(SentMessage(time.monotonic(), audio=emit.audio))
        self.sent_count += 1

    async def _strike(self, fault: Fault) -> None:
        if fault.kind == "drop":
            self._closed_by("drop", 1006, "")
        elif fault.kind == "stall":
            self.stalled = True
            await asyncio.Event().wait()  # until the client leaves or the fake stops
        elif fault.kind == "close":
            with contextlib.suppress(*_GONE):
                if self._error_event is not None:
                    await self._send(Emit(self._error_event()))
                self._closed_by("server", fault.close_code, INJECTED_CLOSE)
                await self.ws.close(fault.close_code, INJECTED_CLOSE)

    def _closed_by(self, who: Literal["client", "server", "drop"], code: int, reason: str) -> None:
        record = self.record
        if record.closed_by:
            return
        record.closed_by = who
        record.close_code = code
        record.close_reason = reason
        record.closed_at = time.monotonic()
