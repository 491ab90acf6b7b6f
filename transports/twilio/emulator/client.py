"""An emulated Twilio Media Streams peer, for tests, benchmarks and ``bridge call``.

It behaves like Twilio's side of a bidirectional stream: sends ``connected`` and ``start``,
streams μ-law in 20 ms ``media`` frames at real time, plays what it receives at real time,
echoes each ``mark`` once everything before it has played, and on ``clear`` drops its buffer
and echoes every pending mark at once. What is played when is decided by the pure
:class:`~transports.twilio.emulator.model.TwilioModel`; this module only moves its messages
over a WebSocket and wakes it on time.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from transports.twilio.emulator.model import (
    FRAME_MS,
    MS_PER_S,
    ULAW_BYTES_PER_MS,
    ULAW_SILENCE,
    Message,
    Timeline,
    TwilioModel,
    new_sid,
)

__all__ = ["FRAME_MS", "ULAW_BYTES_PER_MS", "ULAW_SILENCE", "FakeTwilio", "Timeline", "new_sid"]

OPEN_TIMEOUT_S = 5.0
#: how often the waiting helpers look at the timeline
WAIT_POLL_S = 0.01
QUIET_POLL_S = 0.05


class FakeTwilio:
    """Twilio's end of one Media Stream over a real WebSocket (see the module doc)."""

    def __init__(
        self,
        url: str,
        *,
        call_sid: str | None = None,
        stream_sid: str | None = None,
        account_sid: str | None = None,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        realtime_playback: bool = True,
    ) -> None:
        self.url = url
        self.headers = headers or {}
        self.model = TwilioModel(
            call_sid=call_sid,
            stream_sid=stream_sid,
            account_sid=account_sid,
            params=params,
            realtime_playback=realtime_playback,
        )
        self.close_code: int | None = None
        self.close_reason = ""
        #: time.monotonic() when the connection closed
        self.closed_at: float | None = None
        self._ws: ClientConnection | None = None
        #: set whenever the model's playback schedule may have changed
        self._player_wake = asyncio.Event()
        self._tasks: list[asyncio.Task[Any]] = []
        self._closed = asyncio.Event()
        #: cleared by :meth:`stop_reading`: a far end that stops reading its socket
        self._reading = asyncio.Event()
        self._reading.set()

    # -- the model's state, read-only --------------------------------------------------------

    @property
    def call_sid(self) -> str:
        return self.model.call_sid

    @property
    def stream_sid(self) -> str:
        return self.model.stream_sid

    @property
    def account_sid(self) -> str:
        return self.model.account_sid

    @property
    def params(self) -> dict[str, str]:
        return self.model.params

    @property
    def realtime_playback(self) -> bool:
        return self.model.realtime_playback

    @property
    def timeline(self) -> Timeline:
        return self.model.timeline

    @property
    def played(self) -> bytearray:
        """μ-law audio in the order it was played (cleared audio is not played)."""
        return self.model.played

    # -- connection ------------------------------------------------------------------------

    async def connect(self) -> FakeTwilio:
        self._ws = await connect(
            self.url, additional_headers=self.headers, max_size=None, open_timeout=OPEN_TIMEOUT_S
        )
        self._tasks = [
            asyncio.create_task(self._reader(), name="fake-twilio-reader"),
            asyncio.create_task(self._player(), name="fake-twilio-player"),
        ]
        return self

    async def __aenter__(self) -> FakeTwilio:
        return await self.connect()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._ws is not None:
            await self._ws.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def wait_closed(self, timeout_s: float = 5.0) -> int | None:
        await asyncio.wait_for(self._closed.wait(), timeout_s)
        return self.close_code

    @property
    def is_closed(self) -> bool:
        return self._closed.is_set()

    # -- Twilio -> server ------------------------------------------------------------------

    async def send_json(self, message: Message) -> None:
        assert self._ws is not None
        await self._ws.send(json.dumps(message))

    async def send_connected(self) -> None:
        await self.send_json(self.model.connected())

    async def send_start(self, media_format: dict[str, Any] | None = None) -> None:
        await self.send_json(self.model.start(media_format))

    async def begin(self) -> None:
        """``connected`` then ``start``, as Twilio opens every stream."""
        await self.send_connected()
        await self.send_start()

    def media_message(self, ulaw: bytes) -> Message:
        return self.model.media(ulaw)

    async def send_media(self, ulaw: bytes) -> None:
        await self.send_json(self.model.media(ulaw))

    async def stream(self, ulaw: bytes, realtime: bool = True) -> None:
        """Send audio as 20 ms frames on an absolute schedule (no drift)."""
        frame = FRAME_MS * ULAW_BYTES_PER_MS
        t0 = time.monotonic()
        for index, offset in enumerate(range(0, len(ulaw), frame)):
            if realtime:
                delay = t0 + index * FRAME_MS / MS_PER_S - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            if self.is_closed:
                return
            await self.send_media(ulaw[offset : offset + frame])

    async def silence(self, ms: int, realtime: bool = True) -> None:
        await self.stream(ULAW_SILENCE * (ms * ULAW_BYTES_PER_MS), realtime)

    async def send_dtmf(self, digit: str) -> None:
        await self.send_json(self.model.dtmf(digit))

    async def send_stop(self) -> None:
        await self.send_json(self.model.stop())

    # -- server -> Twilio ------------------------------------------------------------------

    def outbound(self, event: str | None = None) -> list[Message]:
        return self.model.outbound(event)

    async def wait_for_media(self, count: int = 1, timeout_s: float = 10.0) -> None:
        deadline = time.monotonic() + timeout_s
        while len(self.timeline.media_times) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"got {len(self.timeline.media_times)} media, wanted {count}")
            await asyncio.sleep(WAIT_POLL_S)

    async def wait_quiet(self, quiet_s: float = 1.0, timeout_s: float = 30.0) -> None:
        """Wait until some reply arrived and then nothing was played for ``quiet_s``."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            times = self.timeline.media_times
            last = times[-1] if times else None
            idle = not self.model.has_queued
            if last is not None and idle and time.monotonic() - last > quiet_s:
                return
            await asyncio.sleep(QUIET_POLL_S)
        raise TimeoutError("reply did not finish")

    def stop_reading(self) -> None:
        """Stop reading the socket (a stuck peer): the library buffers a few frames, then TCP
        pushes back on the server."""
        self._reading.clear()

    def resume_reading(self) -> None:
        self._reading.set()

    async def _reader(self) -> None:
        assert self._ws is not None
        try:
            while True:
                await self._reading.wait()
                frame = await self._ws.recv()
                await self._send_echoes(self.model.receive(frame, time.monotonic()))
                self._player_wake.set()
        except ConnectionClosed:
            pass
        finally:
            if self._ws.close_code is not None:
                self.close_code = self._ws.close_code
                self.close_reason = self._ws.close_reason or ""
            self.closed_at = time.monotonic()
            self._closed.set()

    async def _send_echoes(self, echoes: list[Message]) -> None:
        for echo in echoes:
            with contextlib.suppress(ConnectionClosed):
                await self.send_json(echo)

    async def _player(self) -> None:
        """Wakes the model when its next playback step is due, and sends the mark echoes."""
        while True:
            self._player_wake.clear()
            await self._send_echoes(self.model.advance(time.monotonic()))
            due_s = self.model.due_s()
            if due_s is None:
                await self._player_wake.wait()
                continue
            delay_s = due_s - time.monotonic()
            if delay_s > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._player_wake.wait(), delay_s)
