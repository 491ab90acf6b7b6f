"""Work an agent starts in the caller's pause, kept for the turn it was started for.

The endpointer offers a turn before committing it (``Agent.prepare``): an agent may start on
it then (a transcription, a whole answer) so the rest of the silence window hides the wait.
The committed turn takes that work only if its audio is the very same; if the caller spoke
on, the work is void and is cancelled. One piece of work is pending at a time.
"""

from __future__ import annotations

import asyncio
from typing import Generic, TypeVar

T = TypeVar("T")


class EarlyWork(Generic[T]):
    """The pending piece of early work, and the audio it is of."""

    def __init__(self) -> None:
        self._pending: tuple[bytes, asyncio.Task[T]] | None = None

    @property
    def pending(self) -> bool:
        return self._pending is not None

    def start(self, utterance: bytes, task: asyncio.Task[T]) -> None:
        """Keep ``task`` as the work on ``utterance`` (any earlier work is dropped)."""
        self.drop()
        self._pending = utterance, task

    def peek(self, utterance: bytes) -> asyncio.Task[T] | None:
        """The work started on exactly ``utterance``, left pending for its turn to take."""
        pending = self._pending
        return pending[1] if pending is not None and pending[0] == utterance else None

    def take(self, utterance: bytes) -> asyncio.Task[T] | None:
        """The work started on exactly ``utterance``, now the caller's to await; None (and
        whatever was pending cancelled) if there is none for this audio."""
        pending, self._pending = self._pending, None
        if pending is not None and pending[0] == utterance:
            return pending[1]
        if pending is not None:
            pending[1].cancel()
        return None

    def drop(self) -> None:
        """Cancel the pending work: the caller's speech made it void, or the call ended."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending[1].cancel()
