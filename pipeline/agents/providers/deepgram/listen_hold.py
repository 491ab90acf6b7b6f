"""The call's audio on its way to the recogniser, kept until the recogniser is done with it.

:meth:`AudioHold.append` never blocks: the call's frames land here and a sender task takes
them for the socket. What was sent stays until the recogniser has answered for it (a final
result, the end of a turn), so that after a dropped socket the audio of the turn in progress
can be sent again on the next one and the turn is not lost; while the stream is down,
everything is held, up to a bound beyond which the oldest audio goes.

Positions are *call offsets*, in bytes of ``spec`` audio since the call's first frame. Each
socket hears the call from some offset on (its ``origin``), so a time the recogniser reports
(seconds since its socket opened) is ``origin`` plus that many seconds of audio: the timings
of every socket map onto one timeline.
"""

from __future__ import annotations

import asyncio
import contextlib

from pipeline.audio import AudioSpec


class AudioHold:
    def __init__(self, spec: AudioSpec, limit_s: float) -> None:
        self.spec = spec
        self._sample_bytes = spec.bytes_per_sample
        self._limit_bytes = max(spec.bytes_for_ms(limit_s * 1000), self._sample_bytes)
        self._buffer = bytearray()
        #: call offset of the buffer's first byte
        self.start = 0
        #: call offset up to which the current socket has been sent audio
        self.sent = 0
        #: call offset the current socket's time 0 stands for
        self.origin = 0
        #: audio dropped by the bound before it could be sent (or sent again)
        self.dropped_bytes = 0
        self._more = asyncio.Event()

    @property
    def end(self) -> int:
        """Call offset just past the last byte appended."""
        return self.start + len(self._buffer)

    @property
    def pending_bytes(self) -> int:
        return self.end - self.sent

    def append(self, audio: bytes, *, wake: bool = True) -> None:
        """One frame of the call (or keepalive silence); drops the oldest beyond the bound.
        ``wake=False``: the caller sends it at once, so a :meth:`wait` goes on waiting."""
        self._buffer += audio
        excess = len(self._buffer) - self._limit_bytes
        if excess > 0:
            self._drop(self._whole(excess, up=True))
        if wake:
            self._more.set()

    def take(self, max_bytes: int) -> bytes:
        """Up to ``max_bytes`` (whole samples) of what the socket has not been sent yet."""
        n = min(self.end - self.sent, max_bytes)
        n = self._whole(n, up=False)
        if n <= 0:
            return b""
        at = self.sent - self.start
        chunk = bytes(self._buffer[at : at + n])
        self.sent += n
        return chunk

    def trim(self, keep_from: int) -> None:
        """The recogniser is done with the audio before ``keep_from``: forget it (but never
        audio not yet sent)."""
        n = self._whole(min(keep_from, self.sent) - self.start, up=False)
        if n > 0:
            del self._buffer[:n]
            self.start += n

    def rewind(self, replay_from: int) -> int:
        """A new socket: it hears the call from ``replay_from`` (or the oldest audio still
        held, if that was dropped); returns that offset, the socket's origin."""
        origin = min(max(replay_from, self.start), self.end)
        origin = self.start + self._whole(origin - self.start, up=False)
        self.sent = self.origin = origin
        return origin

    def to_live(self) -> int:
        """Forget everything held (the call's endpointer dealt with it): the next socket
        hears the call from now on. Returns the new origin."""
        n = self._whole(len(self._buffer), up=False)
        del self._buffer[:n]
        self.start += n
        self.sent = self.origin = self.start
        return self.origin

    def offset_of(self, socket_s: float) -> int:
        """The call offset of a time the current socket reported (seconds of its audio)."""
        return self.origin + round(socket_s * self.spec.rate_hz) * self._sample_bytes

    def bytes_for_s(self, seconds: float) -> int:
        return round(seconds * self.spec.rate_hz) * self._sample_bytes

    async def wait(self, timeout_s: float) -> None:
        """Until there is audio to send, or ``timeout_s``."""
        if self.pending_bytes >= self._sample_bytes:
            return
        self._more.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._more.wait(), max(timeout_s, 0.0))

    def wake(self) -> None:
        """Ends a :meth:`wait` now (the stream is closing)."""
        self._more.set()

    def _drop(self, n: int) -> None:
        if n <= 0:
            return
        del self._buffer[:n]
        self.start += n
        if self.sent < self.start:
            # Unsent audio is gone: the socket will hear the next audio right after what it
            # heard, so its times stand for later call offsets from here on.
            skipped = self.start - self.sent
            self.dropped_bytes += skipped
            self.origin += skipped
            self.sent = self.start

    def _whole(self, n: int, *, up: bool) -> int:
        """``n`` bytes rounded to whole samples."""
        size = self._sample_bytes
        return -(-n // size) * size if up else n // size * size
