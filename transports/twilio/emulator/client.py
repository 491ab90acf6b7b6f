"""An emulated Twilio Media Streams peer, for tests, benchmarks and ``bridge call``.

It behaves like Twilio's side of a bidirectional stream: sends ``connected`` and ``start``,
streams μ-law in 20 ms ``media`` frames at real time, plays what it receives at real time,
echoes each ``mark`` once everything before it has played, and on ``clear`` drops its buffer
and echoes every pending mark at once.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import secrets
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

FRAME_MS = 20
ULAW_BYTES_PER_MS = 8
ULAW_SILENCE = b"\xff"


def new_sid(prefix: str) -> str:
    return prefix + secrets.token_hex(16)


@dataclass
class Timeline:
    """Everything the emulator saw, with monotonic timestamps."""

    received: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    echoed_marks: list[str] = field(default_factory=list)
    #: when each mark echo was sent
    echo_times: list[float] = field(default_factory=list)
    #: marks echoed because their audio played (not flushed by a clear)
    played_marks: list[str] = field(default_factory=list)
    clears: list[float] = field(default_factory=list)
    media_times: list[float] = field(default_factory=list)
    non_text_frames: int = 0


class FakeTwilio:
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
        self.call_sid = call_sid or new_sid("CA")
        self.stream_sid = stream_sid or new_sid("MZ")
        self.account_sid = account_sid or new_sid("AC")
        self.params = params or {}
        self.headers = headers or {}
        self.realtime_playback = realtime_playback
        self.timeline = Timeline()
        #: μ-law audio in the order it was played (cleared audio is not played)
        self.played = bytearray()
        self.close_code: int | None = None
        self.close_reason = ""
        #: time.monotonic() when the connection closed
        self.closed_at: float | None = None
        self._ws: ClientConnection | None = None
        self._seq = 0
        self._chunk = 0
        self._play_queue: deque[tuple[str, Any]] = deque()
        self._play_wake = asyncio.Event()
        self._cleared = asyncio.Event()
        self._tasks: list[asyncio.Task[Any]] = []
        self._closed = asyncio.Event()
        self._started_at = 0.0

    # -- connection ------------------------------------------------------------------------

    async def connect(self) -> FakeTwilio:
        self._ws = await connect(
            self.url, additional_headers=self.headers, max_size=None, open_timeout=5
        )
        self._started_at = time.monotonic()
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

    async def send_json(self, message: dict[str, Any]) -> None:
        assert self._ws is not None
        await self._ws.send(json.dumps(message))

    def _next_seq(self) -> str:
        self._seq += 1
        return str(self._seq)

    async def send_connected(self) -> None:
        await self.send_json({"event": "connected", "protocol": "Call", "version": "1.0.0"})

    async def send_start(self, media_format: dict[str, Any] | None = None) -> None:
        await self.send_json(
            {
                "event": "start",
                "sequenceNumber": self._next_seq(),
                "start": {
                    "accountSid": self.account_sid,
                    "streamSid": self.stream_sid,
                    "callSid": self.call_sid,
                    "tracks": ["inbound"],
                    "mediaFormat": media_format
                    or {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                    "customParameters": self.params,
                },
                "streamSid": self.stream_sid,
            }
        )

    async def begin(self) -> None:
        """``connected`` then ``start``, as Twilio opens every stream."""
        await self.send_connected()
        await self.send_start()

    def media_message(self, ulaw: bytes) -> dict[str, Any]:
        self._chunk += 1
        return {
            "event": "media",
            "sequenceNumber": self._next_seq(),
            "media": {
                "track": "inbound",
                "chunk": str(self._chunk),
                "timestamp": str(self._chunk * FRAME_MS),
                "payload": base64.b64encode(ulaw).decode("ascii"),
            },
            "streamSid": self.stream_sid,
        }

    async def send_media(self, ulaw: bytes) -> None:
        await self.send_json(self.media_message(ulaw))

    async def stream(self, ulaw: bytes, realtime: bool = True) -> None:
        """Send audio as 20 ms frames on an absolute schedule (no drift)."""
        frame = FRAME_MS * ULAW_BYTES_PER_MS
        t0 = time.monotonic()
        for index, offset in enumerate(range(0, len(ulaw), frame)):
            if realtime:
                delay = t0 + index * FRAME_MS / 1000 - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            if self.is_closed:
                return
            await self.send_media(ulaw[offset : offset + frame])

    async def silence(self, ms: int, realtime: bool = True) -> None:
        await self.stream(ULAW_SILENCE * (ms * ULAW_BYTES_PER_MS), realtime)

    async def send_dtmf(self, digit: str) -> None:
        await self.send_json(
            {
                "event": "dtmf",
                "streamSid": self.stream_sid,
                "sequenceNumber": self._next_seq(),
                "dtmf": {"track": "inbound_track", "digit": digit},
            }
        )

    async def send_stop(self) -> None:
        await self.send_json(
            {
                "event": "stop",
                "sequenceNumber": self._next_seq(),
                "stop": {"accountSid": self.account_sid, "callSid": self.call_sid},
                "streamSid": self.stream_sid,
            }
        )

    # -- server -> Twilio ------------------------------------------------------------------

    def outbound(self, event: str | None = None) -> list[dict[str, Any]]:
        return [m for _, m in self.timeline.received if event is None or m.get("event") == event]

    async def wait_for_media(self, count: int = 1, timeout_s: float = 10.0) -> None:
        deadline = time.monotonic() + timeout_s
        while len(self.timeline.media_times) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"got {len(self.timeline.media_times)} media, wanted {count}")
            await asyncio.sleep(0.01)

    async def wait_quiet(self, quiet_s: float = 1.0, timeout_s: float = 30.0) -> None:
        """Wait until some reply arrived and then nothing was played for ``quiet_s``."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            last = self.timeline.media_times[-1] if self.timeline.media_times else None
            if last is not None and not self._play_queue and time.monotonic() - last > quiet_s:
                return
            await asyncio.sleep(0.05)
        raise TimeoutError("reply did not finish")

    async def _reader(self) -> None:
        assert self._ws is not None
        try:
            async for frame in self._ws:
                now = time.monotonic()
                if not isinstance(frame, str):
                    self.timeline.non_text_frames += 1
                    continue
                message = json.loads(frame)
                self.timeline.received.append((now, message))
                event = message.get("event")
                if event == "media":
                    self.timeline.media_times.append(now)
                    payload = base64.b64decode(message["media"]["payload"])
                    self._play_queue.append(("media", payload))
                    self._play_wake.set()
                elif event == "mark":
                    self._play_queue.append(("mark", message["mark"]["name"]))
                    self._play_wake.set()
                elif event == "clear":
                    self.timeline.clears.append(now)
                    await self._clear()
        except ConnectionClosed:
            pass
        finally:
            if self._ws.close_code is not None:
                self.close_code = self._ws.close_code
                self.close_reason = self._ws.close_reason or ""
            self.closed_at = time.monotonic()
            self._closed.set()

    async def _clear(self) -> None:
        """Drop unplayed audio; echo every pending mark at once, as Twilio does."""
        pending = list(self._play_queue)
        self._play_queue.clear()
        self._cleared.set()
        for kind, value in pending:
            if kind == "mark":
                await self._echo(value)

    async def _echo(self, name: str) -> None:
        self.timeline.echoed_marks.append(name)
        self.timeline.echo_times.append(time.monotonic())
        with contextlib.suppress(ConnectionClosed):
            await self.send_json(
                {
                    "event": "mark",
                    "sequenceNumber": self._next_seq(),
                    "streamSid": self.stream_sid,
                    "mark": {"name": name},
                }
            )

    async def _player(self) -> None:
        """Plays queued audio at real time; a mark is echoed when everything before it played."""
        while True:
            if not self._play_queue:
                self._play_wake.clear()
                await self._play_wake.wait()
                continue
            kind, value = self._play_queue.popleft()
            if kind == "mark":
                self.timeline.played_marks.append(value)
                await self._echo(value)
                continue
            self.played += value
            if not self.realtime_playback:
                continue
            self._cleared.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._cleared.wait(), len(value) / ULAW_BYTES_PER_MS / 1000)
