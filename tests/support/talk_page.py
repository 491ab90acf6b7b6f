"""The talk page's part, played by a test: a WebSocket client that speaks, plays what it is
sent in real time (keeping it, per reply) and reports what it played, as the page's player
worklet does. Fast and exact where the real page in Chromium (tests/e2e/test_talk_page.py)
is slow; both speak the same wire (transports/browser/protocol.py)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import defaultdict
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from tests.support.serverthread import ServerThread

FRAME_MS = 20
FRAME_BYTES = 640  # 20 ms of PCM16 at 16 kHz
REPORT_EVERY_S = 0.1


class FakePage:
    def __init__(self, server: ServerThread, persona: str = "", query: str = "") -> None:
        self.url = f"{server.ws}/ws/browser{query}"
        self.persona = persona
        self.messages: list[dict[str, Any]] = []
        #: per reply: every sample played, in order
        self.played: dict[int, bytearray] = defaultdict(bytearray)
        self.clears: list[int] = []
        self.close_code: int | None = None
        self._queue: list[tuple[int, bytearray]] = []
        self._turn: int | None = None
        self._ws: ClientConnection | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.closed = asyncio.Event()
        self._reading = asyncio.Event()
        self._reading.set()

    async def open(self) -> FakePage:
        self._ws = await connect(self.url, max_size=None)
        await self._ws.send(json.dumps({"type": "hello", "persona": self.persona}))
        self._tasks = [
            asyncio.create_task(self._read(), name="page-reader"),
            asyncio.create_task(self._play(), name="page-player"),
        ]
        return self

    async def close(self) -> None:
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await self._ws.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    @property
    def playing(self) -> bool:
        """Audio is queued that the player has not played yet."""
        return bool(self._queue)

    def stop_reading(self) -> None:
        """Stop reading the socket (a frozen tab): TCP pushes back on the server."""
        self._reading.clear()

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.messages if m.get("type") == kind]

    async def say(self, pcm16: bytes, tail_ms: int = 900) -> None:
        """Speak in real time, 20 ms a message, then stay quiet (a live microphone)."""
        audio = pcm16 + bytes(tail_ms * 32)
        start = time.monotonic()
        for n, offset in enumerate(range(0, len(audio), FRAME_BYTES)):
            assert self._ws is not None
            await self._ws.send(audio[offset : offset + FRAME_BYTES])
            await asyncio.sleep(max(0.0, start + (n + 1) * FRAME_MS / 1000 - time.monotonic()))

    async def wait_for(self, ready: Any, timeout_s: float = 10.0, what: str = "it") -> None:
        deadline = time.monotonic() + timeout_s
        while not ready():
            if time.monotonic() > deadline:
                raise AssertionError(f"talk page: timed out waiting for {what}")
            await asyncio.sleep(0.02)

    async def send_json(self, message: dict[str, Any]) -> None:
        """Send a control message as it is (a test's own, possibly hostile)."""
        assert self._ws is not None
        await self._ws.send(json.dumps(message))

    async def _send(self, message: dict[str, Any]) -> None:
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await self._ws.send(json.dumps(message))

    async def _read(self) -> None:
        assert self._ws is not None
        try:
            async for message in self._ws:
                await self._reading.wait()
                if isinstance(message, bytes):
                    if self._turn is not None:
                        self._queue.append((self._turn, bytearray(message)))
                    continue
                event = json.loads(message)
                self.messages.append(event)
                if event["type"] == "turn":
                    self._turn = event["turn"]
                elif event["type"] == "clear":
                    self.clears.append(event["turn"])
                    self._queue.clear()
                    played_ms = len(self.played[event["turn"]]) / 32
                    await self._send(
                        {"type": "played", "turn": event["turn"], "ms": played_ms, "final": True}
                    )
        except Exception:
            pass
        finally:
            self.close_code = self._ws.close_code
            self.closed.set()

    async def _play(self) -> None:
        """Play 20 ms every 20 ms of whatever is queued; report every 100 ms."""
        start = time.monotonic()
        n = 0
        while True:
            n += 1
            await asyncio.sleep(max(0.0, start + n * FRAME_MS / 1000 - time.monotonic()))
            need = FRAME_BYTES
            while need and self._queue:
                turn, chunk = self._queue[0]
                take = chunk[:need]
                del chunk[:need]
                self.played[turn] += take
                need -= len(take)
                if not chunk:
                    self._queue.pop(0)
            if n % int(REPORT_EVERY_S * 1000 / FRAME_MS) == 0 and self.played:
                turn = max(self.played)
                await self._send(
                    {"type": "played", "turn": turn, "ms": len(self.played[turn]) / 32}
                )
