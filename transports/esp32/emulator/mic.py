"""The firmware's mic task: raw PCM upstream while the device listens, on one clock.

Speech and idle silence share one absolute schedule (``chunk_bytes / 32`` ms per message), so
the server sees a continuous stream with no gaps or drift, and a message is sent only if the
device is still ``LISTENING`` at its slot: the stream stops the moment the state changes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from websockets.exceptions import ConnectionClosed

from transports.esp32.emulator.device import MIC_BYTES_PER_MS, MS_PER_S

#: sleeps shorter than this are not worth a timer; the mic just yields instead
MIN_SLEEP_S = 0.001
#: a mic schedule this far behind is restarted from now instead of bursting to catch up
MIC_REANCHOR_S = 0.2


class Mic:
    """Sends mic messages through ``send`` while ``listening()`` holds."""

    def __init__(
        self,
        chunk_bytes: int,
        *,
        listening: Callable[[], bool],
        send: Callable[[bytes], Awaitable[None]],
        changed: Callable[[], Awaitable[None]],
    ) -> None:
        if chunk_bytes < 1:
            raise ValueError("mic_chunk_bytes must be >= 1")
        self.chunk_bytes = chunk_bytes
        self.bytes_sent = 0
        #: silence streams whenever the device listens (a real device never goes quiet)
        self.idle = False
        self._listening = listening
        self._send = send
        self._changed = changed
        self._lock = asyncio.Lock()
        self._next_at: float | None = None

    def restart_schedule(self) -> None:
        """A new listening turn starts a new schedule."""
        self._next_at = None

    async def stream(self, audio: bytes, *, realtime: bool) -> int:
        """Send ``audio`` in ``chunk_bytes`` messages until done or not listening; the bytes
        sent. Holds the mic, so idle silence pauses meanwhile."""
        sent = 0
        async with self._lock:
            if self.bytes_sent % 2:
                # the mic is one stream of samples, however it is cut into messages: finish
                # the silent sample the idle messages split (odd sizes) before the speech
                audio = b"\x00" + audio
            for offset in range(0, len(audio), self.chunk_bytes):
                chunk = audio[offset : offset + self.chunk_bytes]
                if not await self._send_chunk(chunk, realtime):
                    break
                sent += len(chunk)
            if not realtime:
                self._next_at = None
        return sent

    async def idle_loop(self, running: Callable[[], bool]) -> None:
        """Stream silence whenever listening, while ``idle`` and ``running()`` hold."""
        silence = bytes(self.chunk_bytes)
        while self.idle and running():
            if not self._listening():
                await self._changed()
                continue
            async with self._lock:
                if self.idle:
                    await self._send_chunk(silence, realtime=True)

    async def _send_chunk(self, chunk: bytes, realtime: bool) -> bool:
        """Send one mic message at its slot; False (nothing sent) once not listening."""
        if realtime:
            await self._wait_slot(len(chunk))
        else:
            await asyncio.sleep(0)  # let the reader see COMMITTED/CREATED between chunks
        if not self._listening():
            return False
        try:
            await self._send(chunk)
        except ConnectionClosed:
            return False
        self.bytes_sent += len(chunk)
        return True

    async def _wait_slot(self, chunk_bytes: int) -> None:
        now = time.monotonic()
        if self._next_at is None or now - self._next_at > MIC_REANCHOR_S:
            self._next_at = now
        delay_s = self._next_at - now
        self._next_at += chunk_bytes / MIC_BYTES_PER_MS / MS_PER_S
        if delay_s > MIN_SLEEP_S:
            await asyncio.sleep(delay_s)
        else:
            await asyncio.sleep(0)
