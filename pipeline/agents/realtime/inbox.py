"""A bounded, drop-oldest buffer of caller audio between ``feed()`` and the sender task.

``feed()`` runs inside the transport's receive loop and must never wait: if the upstream is
slow, stalled or reconnecting, the newest audio is what matters for a live conversation, so
the oldest is dropped beyond a fixed budget and counted (spec item 43). One event wakes the
single sender task (the owner sets it); nothing is allocated per frame beyond the frame.
"""

from __future__ import annotations

from collections import deque


class AudioInbox:
    def __init__(self, capacity_bytes: int, max_batch_bytes: int) -> None:
        self.capacity_bytes = capacity_bytes
        self._max_batch_bytes = max_batch_bytes
        self._chunks: deque[bytes] = deque()
        self._size_bytes = 0
        self.dropped_bytes = 0
        self.drops = 0

    def __len__(self) -> int:
        return self._size_bytes

    def put(self, audio: bytes) -> bool:
        """Add ``audio``; returns True when older audio had to be dropped to make room."""
        if not audio:
            return False
        self._chunks.append(audio)
        self._size_bytes += len(audio)
        dropped = False
        while self._size_bytes > self.capacity_bytes:
            oldest = self._chunks.popleft()
            self._size_bytes -= len(oldest)
            self.dropped_bytes += len(oldest)
            dropped = True
        if dropped:
            self.drops += 1
        return dropped

    def take_nowait(self) -> bytes:
        """What is buffered, oldest first, in whole chunks up to one batch (b"" if empty)."""
        if not self._chunks:
            return b""
        batch = [self._chunks.popleft()]
        size = len(batch[0])
        while self._chunks and size + len(self._chunks[0]) <= self._max_batch_bytes:
            chunk = self._chunks.popleft()
            batch.append(chunk)
            size += len(chunk)
        self._size_bytes -= size
        return b"".join(batch)
