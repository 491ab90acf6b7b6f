"""One multi-stream-input socket to one voice: the call's replies, one context each.

The socket is opened for the call's first reply and kept: each later reply only opens a
context on it, which saves the handshake (TLS and all) on every turn. One reader task hands
each message to the context's :class:`Listener` (a reply); one keep-alive task sends an empty
text when nothing else has gone out for ``keepalive_interval_s``, since ElevenLabs closes a
socket (and a context) that hears nothing for its inactivity timeout (20 s by default).

A stall is caught by a watchdog on the reader: while a reply is owed audio (text was sent and
not spoken yet, or its context was closed and its ``isFinal`` has not come), the provider
must send something within that reply's ``timeout_s``. Time spent handing audio to the
cascade does not count: its back-pressure (a full playout) is not the provider's silence.

Any failure (a drop, an error message, a stall) fails the whole socket: every reply on it
gets the error, and the stage opens a new socket for the next reply.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Mapping
from typing import Any, Protocol

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from pipeline.agents.providers.elevenlabs import wire
from pipeline.agents.providers.websocket import StreamError, describe, open_socket

#: how long a failed send waits for the reader to read why the socket closed (an error
#: message comes before the close, and tells more than the close code)
READ_WHY_S = 1.0
#: how long ``close_socket`` may take to go out at the end of the call
CLOSE_SEND_S = 1.0


class Listener(Protocol):
    """A reply's end of the socket: its context's messages arrive here."""

    @property
    def context_id(self) -> str: ...

    @property
    def timeout_s(self) -> float:
        """How long the provider may be silent while this reply is owed audio."""
        ...

    @property
    def owed(self) -> bool:
        """The provider owes this reply something (audio, or its ``isFinal``)."""
        ...

    @property
    def accepts_text(self) -> bool:
        """The context is open and takes more text (a keep-alive may go to it)."""
        ...

    async def hear(self, message: Mapping[str, Any]) -> None:
        """An audio message of this context (never raises: a reply's own failure is its
        own, not the socket's)."""

    def ended(self) -> None:
        """The context's ``isFinal``: nothing more comes for it."""

    def failed(self, exc: Exception) -> None:
        """The socket failed: nothing more comes, ever."""


class SpeechSocket:
    """Opened with :meth:`open`; closed with :meth:`aclose` (or by its own failure)."""

    def __init__(
        self,
        ws: ClientConnection,
        voice_id: str,
        where: str,
        keepalive_interval_s: float,
        log: logging.Logger | logging.LoggerAdapter[logging.Logger],
    ) -> None:
        self._ws = ws
        self.voice_id = voice_id
        self._where = where
        self._keepalive_interval_s = keepalive_interval_s
        self._log = log
        self._listeners: dict[str, Listener] = {}
        #: contexts closed early (barge-in) whose ``isFinal`` has not come: the API counts
        #: them against its limit of open contexts until it does
        self._draining: set[str] = set()
        self._last_sent_s = time.monotonic()
        self._watchdog: asyncio.Timeout | None = None
        self._stall_s = 0.0
        self._delivering = False
        self._closing = False
        #: why the socket failed; it is unusable from then on
        self.error: Exception | None = None
        self._reader = asyncio.create_task(self._read(), name=f"elevenlabs-read-{voice_id}")
        self._keeper = asyncio.create_task(self._keep_alive(), name=f"elevenlabs-keep-{voice_id}")

    @classmethod
    async def open(
        cls,
        url: str,
        headers: Mapping[str, str],
        timeout_s: float,
        *,
        voice_id: str,
        where: str,
        keepalive_interval_s: float,
        log: logging.Logger | logging.LoggerAdapter[logging.Logger],
    ) -> SpeechSocket:
        ws = await open_socket(url, headers, timeout_s, "elevenlabs speech")
        log.info("elevenlabs speech: connected to %s", where)
        return cls(ws, voice_id, where, keepalive_interval_s, log)

    @property
    def usable(self) -> bool:
        return self.error is None and not self._closing

    @property
    def contexts_in_use(self) -> int:
        return len(self._listeners) + len(self._draining)

    @property
    def idle(self) -> bool:
        return not self._listeners

    # -- replies -----------------------------------------------------------------------------

    def attach(self, listener: Listener) -> None:
        if self.error is not None:
            raise self.error
        self._listeners[listener.context_id] = listener

    def detach(self, context_id: str) -> None:
        """A reply cancelled its context: what still comes for it is dropped, and it counts
        as open until its ``isFinal``."""
        if self._listeners.pop(context_id, None) is not None and self.error is None:
            self._draining.add(context_id)
        self._watch(restart=False)

    def expect(self) -> None:
        """A reply is owed audio now (it sent text, or closed its context): start the
        watchdog unless it already runs."""
        self._watch(restart=False)

    async def send(self, message: Mapping[str, Any], timeout_s: float) -> None:
        if self.error is not None:
            raise self.error
        if self._closing:
            raise ConnectionError("the ElevenLabs socket is closed")
        try:
            async with asyncio.timeout(timeout_s):
                await self._ws.send(json.dumps(message))
        except ConnectionClosed as exc:
            if asyncio.current_task() is not self._reader:
                await asyncio.wait([self._reader], timeout=READ_WHY_S)
            raise self.error or exc from None
        except TimeoutError:
            error = TimeoutError(f"ElevenLabs took no message for {timeout_s:.1f} s")
            self._fail(error)
            self._ws.transport.abort()
            raise self.error or error from None
        self._last_sent_s = time.monotonic()

    async def aclose(self) -> None:
        """The end of the call (or a socket the stage gives up): ``close_socket``, then the
        close handshake; replies still waiting fail."""
        if not self._closing:
            self._closing = True
            self._keeper.cancel()
            if self.error is None:
                with contextlib.suppress(ConnectionClosed, TimeoutError, OSError):
                    async with asyncio.timeout(CLOSE_SEND_S):
                        await self._ws.send(json.dumps(wire.CLOSE_SOCKET))
            self._fail(ConnectionError("the ElevenLabs socket was closed"))
            await self._ws.close()
        await asyncio.gather(self._reader, self._keeper, return_exceptions=True)

    # -- reading -----------------------------------------------------------------------------

    async def _read(self) -> None:
        try:
            async with asyncio.timeout(None) as watchdog:
                self._watchdog = watchdog
                self._watch(restart=True)  # a reply may have sent text before this task ran
                while True:
                    await self._dispatch(await self._ws.recv())
        except TimeoutError as exc:
            if self._watchdog is None or not self._watchdog.expired():
                self._fail(exc)
            else:
                self._fail(TimeoutError(f"ElevenLabs sent nothing for {self._stall_s:.1f} s"))
            self._ws.transport.abort()  # a stalled peer would not answer a close either
        except ConnectionClosed as exc:
            self._fail(exc)
        except StreamError as exc:
            self._fail(exc)
            with contextlib.suppress(Exception):
                await self._ws.close()
        except Exception as exc:  # a bug of ours: fail this socket, not the call's tasks
            self._log.exception("elevenlabs speech: reader failed")
            self._fail(exc)
            self._ws.transport.abort()
        finally:
            self._watchdog = None

    async def _dispatch(self, raw: str | bytes) -> None:
        if isinstance(raw, bytes):
            return  # the API sends text frames only
        try:
            message = json.loads(raw)
        except ValueError:
            self._log.warning("elevenlabs speech: a message that is not JSON was ignored")
            return
        if not isinstance(message, dict):
            return
        error = wire.error_of(message)
        if error is not None:
            raise error
        context_id = message.get("contextId")
        listener = self._listeners.get(context_id) if isinstance(context_id, str) else None
        final = message.get("isFinal") is True
        if listener is None:  # a cancelled reply's, or the keep-alive's default context
            if final:
                self._draining.discard(str(context_id))
            return
        if message.get("audio"):
            self._delivering = True
            self._pause()
            try:
                await listener.hear(message)
            finally:
                self._delivering = False
        if final and self._listeners.get(listener.context_id) is listener:
            del self._listeners[listener.context_id]
            listener.ended()
        self._watch(restart=True)

    def _pause(self) -> None:
        watchdog = self._watchdog
        if watchdog is not None and not watchdog.expired():
            watchdog.reschedule(None)

    def _watch(self, *, restart: bool) -> None:
        """Arm the watchdog while a reply is owed audio: from now when ``restart`` (the
        provider just sent something), else only if it is not armed already."""
        watchdog = self._watchdog
        if watchdog is None or watchdog.expired() or self._delivering:
            return
        owed = [listener.timeout_s for listener in self._listeners.values() if listener.owed]
        if not owed:
            watchdog.reschedule(None)
        elif restart or watchdog.when() is None:
            self._stall_s = min(owed)
            watchdog.reschedule(asyncio.get_running_loop().time() + self._stall_s)

    def _fail(self, exc: Exception) -> None:
        if self.error is not None:
            return
        self.error = exc
        if not self._closing:
            self._log.warning(
                "elevenlabs speech: the socket to %s failed (%s)", self._where, describe(exc)
            )
        listeners = list(self._listeners.values())
        self._listeners.clear()
        self._draining.clear()
        self._keeper.cancel()
        for listener in listeners:
            listener.failed(exc)

    # -- keeping it alive --------------------------------------------------------------------

    async def _keep_alive(self) -> None:
        interval_s = self._keepalive_interval_s
        while True:
            await asyncio.sleep(max(0.0, self._last_sent_s + interval_s - time.monotonic()))
            if time.monotonic() - self._last_sent_s < interval_s:
                continue  # something else went out meanwhile
            open_ids = [c for c, listener in self._listeners.items() if listener.accepts_text]
            try:
                await self.send(wire.keepalive(open_ids[-1] if open_ids else None), interval_s)
            except Exception:  # the reader (or the send) has reported it
                return
