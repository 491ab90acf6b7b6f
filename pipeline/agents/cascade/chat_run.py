"""One streamed chat answer, running on its own, handing its sentences on as they end.

A run starts when the turn is committed, or earlier, speculatively, when a streaming
recogniser says the caller has probably finished (``EagerEndOfTurn``): then the model's first
tokens are on their way while the recogniser makes sure, and a run whose question was not
the final one is cancelled unread.

Nothing is more urgent than the first sentence's speech: its request is built and sent in
several steps, and the rest of an answer that has already arrived would be parsed in
between. So after the first sentence the run stops reading until the reply is
:meth:`ChatRun.audible`; the model's next sentences wait in the socket meanwhile. A
speculative run waits there too, which is also what keeps it from speaking early.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from pipeline.agents.cascade.stages import ChatReply, Message, OnSentence
from pipeline.tasks import TaskSet

#: runs the chat stage (with its retries): given where sentences go and whether a retry may
#: still happen (never once a sentence was handed on)
ChatCall = Callable[[OnSentence, Callable[[], bool]], Awaitable[ChatReply]]


class ChatRun:
    def __init__(self, messages: list[Message], call: ChatCall, tasks: TaskSet, name: str) -> None:
        #: the conversation the answer is to (a speculative run is kept only if it matches)
        self.messages = messages
        self._sentences: asyncio.Queue[str | None] = asyncio.Queue()
        self._outcome: ChatReply | Exception | None = None
        self._audible = asyncio.Event()
        self._handed_on = False
        self._task = tasks.spawn(self._run(call), name)

    async def next_sentence(self) -> str | None:
        """The next sentence, or None once the answer is over (see :meth:`result`)."""
        return await self._sentences.get()

    def audible(self) -> None:
        """The reply can be heard (or its first sentence gave no audio): read on."""
        self._audible.set()

    def result(self) -> ChatReply:
        """What the answer amounted to, once :meth:`next_sentence` gave None; raises the
        chat's error if it failed."""
        outcome = self._outcome
        if isinstance(outcome, Exception):
            raise outcome
        assert outcome is not None, "result() before the answer ended"
        return outcome

    async def cancel(self) -> None:
        """Stop the run and wait for it, without swallowing our own cancellation."""
        await cancel_and_wait(self._task)

    async def _run(self, call: ChatCall) -> None:
        async def on_sentence(text: str) -> None:
            self._handed_on = True
            self._sentences.put_nowait(text)
            await self._audible.wait()

        try:
            self._outcome = await call(on_sentence, lambda: not self._handed_on)
        except Exception as exc:  # handed to the speaker, which raises it after what it has
            self._outcome = exc
        finally:
            self._sentences.put_nowait(None)


async def cancel_and_wait(task: asyncio.Task[Any]) -> None:
    """Cancel ``task`` and wait for it to finish, without swallowing our own cancellation."""
    if task.done():
        return
    task.cancel()
    await asyncio.wait({task})  # returns when it is done; only our own cancellation raises
