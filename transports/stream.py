"""The one shape of a transport adapter: a stream object around one WebSocket.

Every transport's ``adapter.py`` subclasses :class:`TransportStream` and supplies four
things: how to :meth:`~TransportStream.parse` a message into its protocol's events, the one
event handler :meth:`~TransportStream.handle`, what happens before the first message
(:meth:`~TransportStream.begin`) and how the connection fails (:meth:`~TransportStream.fail`).
The stream does the rest the same way for every wire:

* the ordinary receive loop: ``receive()``, parse, hand each event to :meth:`handle`, await
  what it returns, until the socket or the port is closed;
* the fast path: registered with the server's hook (``transports/fast_receive.py``), it
  parses each frame straight from the socket callback and hands the events to the very same
  :meth:`handle` when all of them are :attr:`inline` (media, mark echoes) and nothing is
  queued before them; anything else is queued, already parsed, for the ordinary loop, so the
  order of events never changes. Media handling is therefore written once, in ``handle``;
* teardown, exactly once: the session is closed (``SessionOpener.closed``) and the socket
  closed with 1000 unless something closed it first.

``handle`` returns None when it is done, or an awaitable for the loop to await (opening a
session, closing the socket). An :attr:`inline` event must always return None.
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from collections.abc import Awaitable, MutableMapping
from typing import Any, ClassVar, Generic, TypeVar

from starlette.websockets import WebSocket

from pipeline.session import CallSession
from transports.base import SessionOpener
from transports.fast_receive import ERROR_KEY, EVENTS_KEY, FastReceive, fast_receive_of
from transports.link import Link

E = TypeVar("E")


class TransportStream(ABC, Generic[E]):
    #: short transport name for logs ("twilio", "esp32")
    transport: ClassVar[str]
    #: event types the fast path handles straight from the socket callback
    inline: ClassVar[tuple[type, ...]]
    log: ClassVar[logging.Logger]

    def __init__(self, ws: WebSocket, opener: SessionOpener, link: Link) -> None:
        self.ws = ws
        self.opener = opener
        self.link = link
        self.session: CallSession | None = None
        #: why the connection ended, unless the session knows better
        self.reason = "socket closed"
        self._queued = 0  # events handed to the queue and not yet handled
        self._hook: FastReceive | None = None

    # -- what each transport supplies ------------------------------------------------------

    @abstractmethod
    def parse(self, message: str | bytes) -> list[E]:
        """One WebSocket message -> its protocol events (sans-I/O)."""

    @abstractmethod
    def handle(self, event: E) -> Awaitable[None] | None:
        """The one event handler, for both receive paths."""

    async def begin(self) -> None:
        """After the accept, before the first message (the toy's ``auth``, its session)."""

    def deadline_s(self) -> float | None:
        """Loop time by which the next message must arrive, or None (Twilio's ``start``)."""
        return None

    async def on_deadline(self) -> None:
        """Nothing arrived by :meth:`deadline_s`."""

    async def fail(self) -> None:
        """An unexpected error in this connection: the transport's failure signal, then 1011."""
        await self.link.close(1011, self.reason)

    async def end(self) -> None:
        """Teardown's last word to the socket (after the session closed)."""
        await self.link.close(1000, self.reason)

    def peer_closed(self) -> None:
        """The peer closed its side: nothing more can be said to it."""
        self.link.gone = True

    @property
    def context(self) -> dict[str, Any]:
        """Log context of this connection."""
        call_id = self.session.call.call_id if self.session is not None else None
        return {"call_id": call_id, "transport": self.transport}

    # -- the shape ---------------------------------------------------------------------------

    def fast_receive(self, message: str | bytes) -> dict[str, Any] | None:
        """The fast path: handle inline events now, queue anything else in order."""
        events = self.parse(message)
        if self._queued == 0 and self.session is not None:
            inline = self.inline
            if all(type(event) in inline for event in events):
                for event in events:
                    self.handle(event)
                return None
        self._queued += 1
        return {"type": "websocket.receive", EVENTS_KEY: events}

    async def run(self) -> None:
        """From the accept (done by :meth:`begin` or before) to teardown."""
        self._hook = fast_receive_of(self.ws)
        try:
            await self.begin()
            if self._hook is not None:
                self._hook.register(self.fast_receive)
            while self.link.open:
                message = await self._receive()
                if message is None:
                    await self.on_deadline()
                    continue
                if message["type"] == "websocket.disconnect":
                    self.peer_closed()
                    break
                for event in self._events_of(message):
                    pending = self.handle(event)
                    if pending is not None:
                        await pending
        except asyncio.CancelledError:
            self.reason = "server shutdown"
            raise
        except Exception:
            self.reason = "internal error"
            self.log.exception("%s connection failed", self.transport, extra=self.context)
            await self.fail()
        finally:
            if self._hook is not None:
                self._hook.register(None)
            if self.session is not None:
                await self.opener.closed(self.session, self.session.end_reason or self.reason)
            await self.end()

    async def _receive(self) -> MutableMapping[str, Any] | None:
        """The next ASGI message, or None once :meth:`deadline_s` has passed."""
        deadline_s = self.deadline_s()
        if deadline_s is None:
            return await self.ws.receive()
        try:
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a
            # cancellation that arrives as a message does, and the loop would not end
            async with asyncio.timeout_at(deadline_s):
                return await self.ws.receive()
        except TimeoutError:
            return None

    def _events_of(self, message: MutableMapping[str, Any]) -> list[E]:
        if ERROR_KEY in message:
            raise message[ERROR_KEY]
        if EVENTS_KEY in message:
            self._queued -= 1
            events: list[E] = message[EVENTS_KEY]
            return events
        text = message.get("text")
        if text is not None:
            return self.parse(text)
        return self.parse(message.get("bytes") or b"")
