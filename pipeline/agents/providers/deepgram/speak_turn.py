"""One reply spoken on a call's Aura socket: sentences in as ``Speak``, audio out per flush.

Each sentence goes to the server as it arrives; the server keeps the text until a ``Flush``
turns it into audio. A reply is flushed at most twice (``speak_budget.py`` says why and
when): right after its first sentence, so the caller hears it while the rest is written, and
at :meth:`AuraTurn.finish`, for everything after it. The audio of a flush covering sentences
``a..b`` reaches ``on_audio`` as ``(audio, a, b)``: Aura does not say where in a flush's
audio each sentence begins. With the early flush the first sentence is always told apart.

When the server refuses the early flush (over its limit), the text stays in its buffer and
the closing flush covers it too. When it refuses the closing one, the reply fails with a
transient :class:`FlushRefused` and the socket is closed, so the retry gets a fresh socket,
and a fresh budget. A reply whose flush goes unanswered for the attempt's timeout fails with
:class:`SpeechStalled` (a :class:`TimeoutError`), and the socket is closed too.

A reply that fails or is cancelled (barge-in) while the server still holds some of its text
or audio sends ``Clear``: nothing of it reaches ``on_audio`` afterwards, and the socket is
ready for the next reply.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Literal

from pipeline.agents.cascade.stages import Attempt, OnSpokenAudio, SpeechTurn
from pipeline.agents.providers.deepgram.speak_socket import AuraSocket, Flush
from pipeline.agents.providers.websocket import StreamError, describe

log = logging.getLogger("pipeline.agents.providers.deepgram")

#: the socket a reply speaks on, opened (or reopened) if need be within ``timeout_s``
SocketSource = Callable[[float], Awaitable[AuraSocket]]
TurnState = Literal["speaking", "finished", "cancelled", "failed"]
#: shortest wait for an answer, however little of the attempt's timeout is left
MIN_WAIT_S = 0.01


class FlushRefused(StreamError):
    """The server refused a reply's closing flush (``EXCESSIVE_FLUSH``)."""

    def __init__(self) -> None:
        super().__init__(
            "Deepgram refused the reply's flush (over 20 per minute on one socket)",
            transient=True,
            status=429,
        )


class SpeechStalled(TimeoutError):
    """The server sent nothing for the attempt's timeout while a flush awaited its audio."""


class AuraTurn(SpeechTurn):
    def __init__(self, socket_source: SocketSource, on_audio: OnSpokenAudio, attempt: Attempt):
        self._socket_source = socket_source
        self._on_audio = on_audio
        self._attempt = attempt
        self._socket: AuraSocket | None = None
        #: sentences given to :meth:`say` so far (the next one's index)
        self._said = 0
        #: the first sentence no flush covers yet
        self._unflushed_from = 0
        self._flushes: list[Flush] = []
        self.spoken_through = -1
        self._state: TurnState = "speaking"
        #: why the reply failed (``on_audio`` raised, the closing flush was refused)
        self._error: Exception | None = None
        self._changed = asyncio.Event()

    # -- SpeechTurn ----------------------------------------------------------------------

    async def say(self, text: str) -> None:
        if self._state == "cancelled":
            return
        if self._state != "speaking":
            raise self._error or RuntimeError("say() after finish()")
        index = self._said
        self._said += 1
        try:
            socket = await self._bind()
            if self._state != "speaking":
                return  # cancelled meanwhile
            self._check(socket)
            if index and text and not text[0].isspace():
                # the server's buffer joins texts as they come; the space keeps sentences
                # apart even when a refused flush left the one before in the buffer
                text = " " + text
            await socket.speak(text)
            if index == 0 and self._state == "speaking" and socket.budget.allows_early():
                await self._flush(socket, final=False)
        except BaseException as exc:
            await self._abandon(exc)
            raise

    async def finish(self) -> None:
        if self._state in ("cancelled", "finished"):
            return
        if self._state == "failed":
            raise self._error or RuntimeError("the reply failed")
        socket = self._socket
        try:
            while socket is not None:
                self._changed.clear()
                if self._state == "cancelled":
                    return
                self._check(socket)
                if self._unflushed_from < self._said:
                    await self._flush(socket, final=True)
                    continue
                if all(f.state in ("done", "refused") for f in self._flushes):
                    break  # a refused early flush's sentences are in a later one
                wait_s = max(MIN_WAIT_S, self._attempt.timeout_s - socket.silence_s())
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), wait_s)
        except BaseException as exc:
            await self._abandon(exc)
            raise
        self._state = "finished"

    async def cancel(self) -> None:
        if self._state != "speaking":
            return
        self._state = "cancelled"
        self._changed.set()
        socket = self._socket
        if socket is not None and socket.usable and self._owes():
            await self._clear(socket)

    # -- what the socket tells the reply (speak_socket.FlushOwner) -----------------------

    @property
    def silenced(self) -> bool:
        return self._state in ("cancelled", "failed") or self._error is not None

    async def deliver(self, audio: bytes, first: int, last: int) -> None:
        try:
            await self._on_audio(audio, first, last)
        except Exception as exc:  # the reply fails; the socket's reader carries on
            if self._error is None:
                self._error = exc
        finally:
            self._changed.set()

    def changed(self) -> None:
        # flushes are answered in order: one answered means all before it were too
        done = [f.last for f in self._flushes if f.state == "done"]
        if done:
            self.spoken_through = max(self.spoken_through, *done)
        self._changed.set()

    def refused(self, flush: Flush) -> None:
        later = next(
            (f for f in self._flushes if f.state == "pending" and f.first > flush.first), None
        )
        if later is not None:
            later.first = flush.first  # the server speaks the refused text with it
        elif flush.final:
            self._error = self._error or FlushRefused()
        else:
            self._unflushed_from = min(self._unflushed_from, flush.first)
        self._changed.set()

    # -- helpers ---------------------------------------------------------------------------

    async def _bind(self) -> AuraSocket:
        """The reply's socket: the call's, opened on its first sentence and kept to the end."""
        if self._socket is None:
            self._socket = await self._socket_source(self._attempt.timeout_s)
        return self._socket

    async def _flush(self, socket: AuraSocket, *, final: bool) -> None:
        flush = Flush(self, self._unflushed_from, self._said - 1, final)
        self._flushes.append(flush)
        self._unflushed_from = self._said
        await socket.flush(flush)

    def _owes(self) -> bool:
        """Whether the server still holds text or audio of this reply."""
        return self._unflushed_from < self._said or any(f.state == "pending" for f in self._flushes)

    def _check(self, socket: AuraSocket) -> None:
        """Raise what went wrong, if anything did."""
        if self._error is not None:
            raise self._error
        lost = any(f.state == "lost" for f in self._flushes)
        if socket.failure is not None and (lost or self._owes()):
            raise socket.failure
        if any(f.state == "cleared" for f in self._flushes):
            raise StreamError("the reply's audio was cleared by another reply", transient=True)
        timeout_s = self._attempt.timeout_s
        if socket.silence_s() >= timeout_s:
            raise SpeechStalled(f"Deepgram sent no speech for {timeout_s:.1f} s after a flush")

    async def _abandon(self, exc: BaseException) -> None:
        """Leave the socket fit for the next reply after ``exc`` ended this one."""
        if isinstance(exc, asyncio.CancelledError):
            await self.cancel()
            return
        if self._state == "speaking":
            self._state = "failed"
        if self._error is None and isinstance(exc, Exception):
            self._error = exc
        socket = self._socket
        if socket is None or not socket.usable:
            return
        log.warning("deepgram speech for %s failed: %s", self._attempt.request_id, describe(exc))
        if isinstance(exc, (SpeechStalled, FlushRefused)):
            await socket.close(exc)  # the next reply opens a fresh socket, with a fresh budget
        elif self._owes():
            await self._clear(socket)

    async def _clear(self, socket: AuraSocket) -> None:
        try:
            await socket.clear()
        except Exception as exc:  # gone or stuck: the next reply opens another socket
            socket.fail(exc)
