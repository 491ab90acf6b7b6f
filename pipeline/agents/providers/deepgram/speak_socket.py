"""One Aura socket (``/v1/speak``) of a call, and the reader that tells whose audio arrives.

Aura's binary messages carry no label: they are the audio of the flushes, in the order the
flushes were sent, each flush's audio ended by a ``Flushed``. So the socket keeps the flushes
it sent and not yet saw answered (:attr:`AuraSocket.pending`), and its reader hands every
binary message to the oldest one's owner, a reply (``speak_turn.py``), tagged with the
sentences that flush covers. Reading runs in a task of its own for as long as the socket is
open, so a reply's first audio reaches the caller while the reply is still being written.

A ``Clear`` (barge-in) drops the server's text and audio and is answered by ``Cleared``;
whatever arrives before that answer belongs to what was cleared, and is dropped, so the next
reply on the same socket starts clean.

A flush refused for being over the limit (``Warning`` ``EXCESSIVE_FLUSH``) is answered when
it is processed, so its warning may overtake audio of earlier flushes; the warning is taken
to refuse the newest flush that has no audio yet. The only time that guess can be wrong is
when the server's window frees between two flushes sent close together; the reply then
fails with a transient error and is retried, which is harmless.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from pipeline.agents.providers.deepgram.speak_budget import FlushBudget
from pipeline.agents.providers.websocket import StreamError, describe, open_socket
from pipeline.audio import AudioSpec, SampleAligner

log = logging.getLogger("pipeline.agents.providers.deepgram")

#: the warning code of a refused flush (``deepgram-python-sdk`` #653: ``warn_code`` on the
#: wire, ``code`` in the SDK's model)
EXCESSIVE_FLUSH = "EXCESSIVE_FLUSH"
#: how long a control message or the closing handshake may take before we give up on it
CONTROL_TIMEOUT_S = 1.0


class FlushOwner(Protocol):
    """The reply a flush belongs to (``speak_turn.AuraTurn``)."""

    @property
    def silenced(self) -> bool:
        """Cancelled or failed: its audio is dropped, never handed on."""

    async def deliver(self, audio: bytes, first: int, last: int) -> None:
        """Hand on a piece of audio of sentences ``first..last`` (never raises)."""

    def changed(self) -> None:
        """One of its flushes was answered, refused, cleared or lost."""

    def refused(self, flush: Flush) -> None:
        """The server refused ``flush`` (over the limit); its text is still buffered there."""


FlushState = Literal["pending", "done", "refused", "cleared", "lost"]


@dataclass(eq=False, slots=True)
class Flush:
    """One ``Flush`` sent: the sentences it makes audible, and what became of it."""

    owner: FlushOwner
    #: the sentences it covers (indexes of the reply's ``say`` calls)
    first: int
    last: int
    #: the reply's closing flush (sent by ``finish``)
    final: bool
    state: FlushState = "pending"
    audio_bytes: int = 0


class AuraSocket:
    """An open ``/v1/speak`` socket speaking one voice in one format."""

    def __init__(
        self, ws: ClientConnection, voice: str, spec: AudioSpec, budget: FlushBudget, where: str
    ) -> None:
        self.ws = ws
        self.voice = voice
        self.spec = spec
        self.budget = budget
        self.where = where
        #: flushes sent and not yet answered by ``Flushed``, oldest first
        self.pending: deque[Flush] = deque()
        #: ``Clear`` messages sent and not yet answered by ``Cleared``: until then, audio is
        #: what was cleared
        self.clears_awaited = 0
        #: why the socket is no longer usable (it closed, stalled, or we closed it)
        self.failure: Exception | None = None
        #: Deepgram's id of this socket (its ``Metadata``), for an operator's support request
        self.request_id = ""
        self._aligner = SampleAligner() if spec.encoding == "pcm16" else None
        self._heard_at_s = time.monotonic()
        self._handing_on = False
        self._orphans_logged = False
        self._closed = False
        self._reader = asyncio.create_task(self._read(), name="deepgram-aura-read")

    @classmethod
    async def open(
        cls,
        url: str,
        headers: dict[str, str],
        voice: str,
        spec: AudioSpec,
        budget: FlushBudget,
        where: str,
        timeout_s: float,
    ) -> AuraSocket:
        started_s = time.monotonic()
        ws = await open_socket(url, headers, timeout_s, "deepgram aura")
        log.info(
            "deepgram speech socket open at %s (voice %s, %s) in %.0f ms",
            where,
            voice,
            spec,
            (time.monotonic() - started_s) * 1000,
        )
        return cls(ws, voice, spec, budget, where)

    @property
    def usable(self) -> bool:
        return self.failure is None

    def silence_s(self) -> float:
        """How long the server has been silent while an answer is awaited (a flush's audio,
        a ``Cleared``); 0 when none is, or while audio is being handed on (a full playout
        holds the reader back, which is not the server's fault)."""
        if (not self.pending and not self.clears_awaited) or self._handing_on:
            return 0.0
        return time.monotonic() - self._heard_at_s

    # -- what a reply sends --------------------------------------------------------------

    async def speak(self, text: str) -> None:
        await self._send({"type": "Speak", "text": text})

    async def flush(self, flush: Flush) -> None:
        self._awaiting()
        self.pending.append(flush)
        self.budget.spend()
        await self._send({"type": "Flush"})

    async def clear(self) -> None:
        """Drop every unspoken text and unsent audio on the server (all pending flushes)."""
        cleared, self.pending = self.pending, deque()
        for flush in cleared:
            flush.state = "cleared"
            flush.owner.changed()
        self._awaiting()
        self.clears_awaited += 1
        try:
            await asyncio.wait_for(self._send({"type": "Clear"}), CONTROL_TIMEOUT_S)
        except TimeoutError as exc:  # a socket that cannot take a short message is stuck
            self.fail(exc)
            raise

    def _awaiting(self) -> None:
        """An answer is now awaited: the server's silence is measured from here."""
        if not self.pending and not self.clears_awaited:
            self._heard_at_s = time.monotonic()

    async def _send(self, message: dict[str, str]) -> None:
        if self.failure is not None:
            raise self.failure
        try:
            await self.ws.send(json.dumps(message))
        except ConnectionClosed as exc:
            self.fail(exc)
            raise

    # -- failure and closing -------------------------------------------------------------

    def fail(self, exc: Exception) -> None:
        """The socket is unusable: its pending flushes are lost, their replies told."""
        if self.failure is not None:
            return
        self.failure = exc
        if not self._closed:
            log.warning("deepgram speech socket at %s failed: %s", self.where, describe(exc))
        lost, self.pending = self.pending, deque()
        for flush in lost:
            flush.state = "lost"
            flush.owner.changed()
        if asyncio.current_task() is not self._reader:
            self._reader.cancel()

    async def close(self, reason: Exception | None = None) -> None:
        """Say ``Close`` if the socket is still healthy, then close it. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self.failure is None and reason is None:
            with contextlib.suppress(ConnectionClosed, TimeoutError):
                await asyncio.wait_for(
                    self.ws.send(json.dumps({"type": "Close"})), CONTROL_TIMEOUT_S
                )
        self.fail(reason or StreamError("the speech socket was closed", transient=True))
        self._reader.cancel()
        await asyncio.wait({self._reader})
        await self.ws.close()

    # -- reading -------------------------------------------------------------------------

    async def _read(self) -> None:
        try:
            while self.failure is None:  # an ``Error`` event ends reading too
                message = await self.ws.recv()
                self._heard_at_s = time.monotonic()
                if isinstance(message, bytes):
                    await self._audio(message)
                else:
                    self._event(message)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a close (ConnectionClosed, even a clean one), a bug
            self.fail(exc)

    async def _audio(self, data: bytes) -> None:
        if self.clears_awaited:
            return  # audio of what was cleared, sent before the server saw the Clear
        if not self.pending:
            if not self._orphans_logged:
                self._orphans_logged = True
                log.debug("deepgram speech audio with no flush awaiting it: dropped")
            return
        flush = self.pending[0]
        flush.audio_bytes += len(data)
        audio = self._aligner.align(data) if self._aligner is not None else data
        owner = flush.owner
        if not audio or owner.silenced:
            return
        self._handing_on = True
        try:
            await owner.deliver(audio, flush.first, flush.last)
        finally:
            self._handing_on = False
            self._heard_at_s = time.monotonic()

    def _event(self, text: str) -> None:
        try:
            event: Any = json.loads(text)
        except ValueError:
            log.warning("deepgram speech sent a text message that is not JSON: %.80r", text)
            return
        kind = event.get("type") if isinstance(event, dict) else None
        if kind == "Flushed":
            self._flushed()
        elif kind == "Cleared":
            self.clears_awaited = max(0, self.clears_awaited - 1)
            self._reset_aligner()
        elif kind == "Warning":
            self._warning(event)
        elif kind == "Metadata":
            self.request_id = str(event.get("request_id", ""))
            log.info(
                "deepgram speech socket at %s: request_id %s, model %s",
                self.where,
                self.request_id,
                event.get("model_name", "?"),
            )
        elif kind == "Error":
            code = event.get("err_code") or event.get("code") or "?"
            message = event.get("err_msg") or event.get("description") or ""
            self.fail(StreamError(f"Deepgram speech error {code}: {message}", transient=True))
        else:
            log.debug("deepgram speech sent %s: ignored", kind)

    def _flushed(self) -> None:
        if self.clears_awaited or not self.pending:
            return  # the answer to a flush that was cleared
        flush = self.pending.popleft()
        flush.state = "done"
        self._reset_aligner()
        flush.owner.changed()

    def _warning(self, event: dict[str, Any]) -> None:
        code = event.get("warn_code") or event.get("code") or ""
        message = event.get("warn_msg") or event.get("description") or ""
        if code == EXCESSIVE_FLUSH and not self.clears_awaited:
            refused = next((f for f in reversed(self.pending) if not f.audio_bytes), None)
            if refused is not None:
                self.pending.remove(refused)
                refused.state = "refused"
                log.warning(
                    "deepgram speech socket at %s refused a flush (%d sent in the last minute): %s",
                    self.where,
                    self.budget.used(),
                    message,
                )
                refused.owner.refused(refused)
                return
        log.warning("deepgram speech socket at %s warned %s: %s", self.where, code, message)

    def _reset_aligner(self) -> None:
        """Each flush's audio is whole samples: a byte left over is not carried into the
        next one."""
        if self._aligner is not None:
            self._aligner.reset()
