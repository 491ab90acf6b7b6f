"""The agent's side of the Realtime WebSocket: connect, open the session, send, reconnect.

Two loops, each run as a task of the call by the agent:

* :meth:`RealtimeLink.run` connects (retrying to a deadline), sends the session's opening
  events and hands every server event to a listener, synchronously. When the connection
  drops it tells the listener and connects again; when it cannot connect it gives up.
* :meth:`RealtimeLink.send_loop` sends control events (cancel, truncate, response.create)
  ahead of buffered caller audio: a barge-in must reach the model now, not after the audio
  a slow upstream has buffered (up to ``inbox_ms``).

Caller audio waits in a bounded drop-oldest :class:`AudioInbox`, because :meth:`put_audio`
runs in the transport's receive loop and must never wait. Control events are only queued
while connected, and forgotten when the connection drops: they name items of that session.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from pipeline.agents.realtime import events
from pipeline.agents.realtime.config import RealtimeConfig
from pipeline.agents.realtime.connect import (
    RealtimeAuthError,
    RealtimeUnavailable,
    open_with_retry,
)
from pipeline.agents.realtime.inbox import AudioInbox
from pipeline.audio import AudioSpec
from pipeline.call_logger import CallLog

#: most caller audio sent in one ``input_audio_buffer.append``
MAX_APPEND_MS = 500
#: how long closing the socket may take when the call ends
CLOSE_TIMEOUT_S = 0.5


class LinkListener(Protocol):
    """What the link reports: server events, a lost connection, giving up."""

    def on_message(self, message: str | bytes) -> None:
        """One server event; must not wait (it runs in the read loop)."""

    def on_lost(self) -> None:
        """The connection dropped; the link is reconnecting."""

    def on_give_up(self, kind: str) -> None:
        """No connection could be made (``kind`` names why, for metrics); the link stops."""


#: the events that open a session: ``first`` is False after a reconnect. Read lazily, one
#: event per send, so each sees the conversation as it is when it goes out.
Opening = Callable[[bool], Iterable[events.Event]]


class RealtimeLink:
    def __init__(
        self,
        config: RealtimeConfig,
        spec: AudioSpec,
        log: CallLog,
        extra: dict[str, Any],
    ) -> None:
        self.config = config
        self.log = log
        self._extra = extra
        self.inbox = AudioInbox(
            spec.bytes_for_ms(config.inbox_ms), spec.bytes_for_ms(MAX_APPEND_MS)
        )
        self._wake = asyncio.Event()
        self._control: deque[events.Event] = deque()
        self._ws: ClientConnection | None = None
        self._connected = asyncio.Event()
        #: connections made so far (1 + reconnects)
        self.connections = 0

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def put_audio(self, audio: bytes) -> bool:
        """Buffer caller audio; True when older audio had to be dropped to make room."""
        dropped = self.inbox.put(audio)
        self._wake.set()
        return dropped

    def send(self, event: events.Event) -> None:
        """Queue a control event; it goes out ahead of any buffered audio."""
        if self._connected.is_set():
            self._control.append(event)
            self._wake.set()

    async def run(self, opening: Opening, listener: LinkListener) -> None:
        first = True
        while True:
            try:
                ws = await open_with_retry(self.config, self._extra)
            except RealtimeAuthError as exc:
                self.log.error("operator error: %s", exc)
                listener.on_give_up("realtime_auth")
                return
            except RealtimeUnavailable as exc:
                self.log.error("giving up on OpenAI Realtime: %s", exc)
                listener.on_give_up("realtime_unavailable")
                return
            self.connections += 1
            try:
                for event in opening(first):
                    await ws.send(json.dumps(event))
                first = False
                self._ws = ws
                self._connected.set()
                self._wake.set()
                async for message in ws:
                    listener.on_message(message)
            except ConnectionClosed:
                pass
            finally:
                self._ws = None
                self._connected.clear()
                self._control.clear()  # cancels and truncations name items of that session
            self.log.warning(
                "Realtime connection lost (close code %s); reconnecting", ws.close_code
            )
            listener.on_lost()

    async def send_loop(self) -> None:
        while True:
            await self._connected.wait()
            ws = self._ws
            if ws is None:
                self._connected.clear()
                continue
            if self._control:
                message = json.dumps(self._control.popleft())
            elif len(self.inbox):
                message = json.dumps(events.append_audio(self.inbox.take_nowait()))
            else:
                self._wake.clear()
                await self._wake.wait()
                continue
            try:
                await ws.send(message)
            except ConnectionClosed:
                if self._ws is ws:  # wait for the runner to reconnect
                    self._connected.clear()

    async def close(self) -> None:
        """Close the socket, briefly; call once both loops have been cancelled."""
        ws, self._ws = self._ws, None
        if ws is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(), CLOSE_TIMEOUT_S)
