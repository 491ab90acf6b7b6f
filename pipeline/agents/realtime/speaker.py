"""The speaker: what the model says reaches the pipeline in order, in a task of its own.

Server events are handled synchronously, and :meth:`AgentOutput.audio` may wait while the
playout is full. So handlers only queue what is to be said (audio, a turn's end, a failure, a
hang-up) and this one task hands it over in arrival order: an end never overtakes the audio
before it, and control events are never stuck behind audio waiting for playout space.

The queue has no bound of its own: it holds what the model has generated ahead of playout
(the model sends a reply faster than real time), and dropping any of it would garble the reply.
"""

from __future__ import annotations

import asyncio
from enum import Enum

from pipeline.agents.base import AgentOutput
from pipeline.agents.realtime.turns import Turns


class Say(Enum):
    AUDIO = 1
    END = 2
    FAIL = 3
    HANG_UP = 4


class Speaker:
    def __init__(self, turns: Turns) -> None:
        self._turns = turns
        self._queue: asyncio.Queue[tuple[Say, int, bytes | str | None]] = asyncio.Queue()

    def audio(self, turn_id: int, audio: bytes) -> None:
        self._queue.put_nowait((Say.AUDIO, turn_id, audio))

    def end(self, turn_id: int) -> None:
        self._queue.put_nowait((Say.END, turn_id, None))

    def fail(self, turn_id: int, kind: str) -> None:
        self._queue.put_nowait((Say.FAIL, turn_id, kind))

    def hang_up(self, turn_id: int, reason: str) -> None:
        """End the call after ``turn_id`` (0: after whatever is queued), unless it was cut."""
        self._queue.put_nowait((Say.HANG_UP, turn_id, reason))

    async def run(self, out: AgentOutput) -> None:
        while True:
            what, turn, payload = await self._queue.get()
            if what is Say.AUDIO:
                assert isinstance(payload, bytes)
                await out.audio(turn, payload)
            elif what is Say.END:
                waiter = self._turns.external.get(turn)
                if waiter is not None:
                    waiter.set()  # the session ends its own turn
                else:
                    out.end_turn(turn)
            elif what is Say.FAIL:
                waiter = self._turns.external.get(turn)
                if waiter is not None:
                    waiter.set()
                else:
                    await out.fail_turn(turn, str(payload))
            else:
                response = self._turns.by_turn.get(turn)
                if response is None or not response.cancelled:
                    out.hang_up(str(payload))
