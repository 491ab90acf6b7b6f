"""One reply's speech: one context on the call's socket, sentences in, audio out.

:meth:`~ElevenLabsTurn.say` sends each sentence as soon as the cascade has it, flushed, so
its audio starts while the model is still writing the next one; it does not wait for the
audio, which the socket's reader hands to ``on_audio`` as it arrives, cut by sentence
(:mod:`.spans`). :meth:`~ElevenLabsTurn.finish` closes the context and waits for its
``isFinal``: by then every piece of audio has gone to ``on_audio``. An error of the socket
surfaces from the next ``say`` or from ``finish``.

:meth:`~ElevenLabsTurn.cancel` (barge-in) closes the context and drops whatever still comes
for it; the socket stays, for the next reply.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Literal

from pipeline.agents.cascade.stages import Attempt, OnSpokenAudio, SpeechTurn
from pipeline.agents.providers.elevenlabs import wire
from pipeline.agents.providers.elevenlabs.connection import SpeechSocket
from pipeline.agents.providers.elevenlabs.spans import SentenceSpans
from pipeline.agents.providers.websocket import StreamError
from pipeline.audio import AudioSpec

#: the stage's way to a socket for a voice (opened if need be, within the attempt's timeout)
Connect = Callable[[str, Attempt], Awaitable[SpeechSocket]]
State = Literal["new", "open", "finishing", "ended", "cancelled", "failed"]
#: a barge-in's ``close_context`` may take this long; past it the socket is left to drain
CANCEL_SEND_S = 1.0


class ElevenLabsTurn(SpeechTurn):
    def __init__(
        self,
        connect: Connect,
        context_id: str,
        voice_id: str,
        voice_settings: Mapping[str, float | bool] | None,
        on_audio: OnSpokenAudio,
        attempt: Attempt,
        spec: AudioSpec,
        log: logging.Logger | logging.LoggerAdapter[logging.Logger],
    ) -> None:
        self._connect = connect
        self._context_id = context_id
        self._voice_id = voice_id
        self._voice_settings = voice_settings
        self._on_audio = on_audio
        self._attempt = attempt
        self._spans = SentenceSpans(spec)
        self._log = log
        self._extra = {"turn_id": attempt.turn_id}
        self._socket: SpeechSocket | None = None
        self._state: State = "new"
        self._error: Exception | None = None
        self._done = asyncio.Event()

    # -- what the socket reads (connection.Listener) -----------------------------------------

    @property
    def context_id(self) -> str:
        return self._context_id

    @property
    def timeout_s(self) -> float:
        return self._attempt.timeout_s

    @property
    def owed(self) -> bool:
        return self._state == "finishing" or (self._state == "open" and self._spans.owed)

    @property
    def accepts_text(self) -> bool:
        return self._state == "open"

    async def hear(self, message: Mapping[str, Any]) -> None:
        if self._state not in ("open", "finishing"):
            return
        try:
            pieces = self._spans.cut(wire.audio_of(message), wire.alignment_of(message))
            for pcm, first, last in pieces:
                if self._state not in ("open", "finishing"):
                    return  # cancelled while the previous piece was handed on
                await self._on_audio(pcm, first, last)
        except Exception as exc:  # the cascade's own failure (or a broken message)
            self._log.warning(
                "elevenlabs speech: %s: audio could not be handed on: %r",
                self._context_id,
                exc,
                extra=self._extra,
            )
            self._settle("failed", exc)
            await self._close_context()

    def ended(self) -> None:
        """``isFinal``: normally after :meth:`finish`; before it, ElevenLabs closed the
        context by itself (its inactivity timeout), and more text would open a new one."""
        if self._state == "open":
            self._settle("ended", StreamError("ElevenLabs closed the context", transient=True))
        elif self._state == "finishing":
            self._settle("ended")

    def failed(self, exc: Exception) -> None:
        if self._state in ("new", "open", "finishing"):
            self._settle("failed", exc)

    # -- what the cascade calls (SpeechTurn) -------------------------------------------------

    async def say(self, text: str) -> None:
        self._check()
        if self._state == "cancelled":
            return
        if self._state not in ("new", "open"):
            raise RuntimeError(f"{self._context_id}: say() after finish()")
        socket = await self._open()
        if socket is None:
            return  # cancelled while connecting
        spoken = text.strip()
        index = self._spans.add(spoken)
        if spoken:
            await socket.send(wire.sentence(self._context_id, spoken), self.timeout_s)
            socket.expect()
        self._log.debug(
            "elevenlabs speech: %s: sentence %d sent", self._context_id, index, extra=self._extra
        )

    async def finish(self) -> None:
        if self._state == "new":
            self._settle("ended")  # nothing was said: no context was opened
            return
        if self._state == "open":
            self._state = "finishing"
            assert self._socket is not None
            await self._socket.send(wire.close_context(self._context_id), self.timeout_s)
            self._socket.expect()
        await self._done.wait()
        self._check()

    async def cancel(self) -> None:
        state = self._state
        if state in ("ended", "cancelled", "failed"):
            return
        self._settle("cancelled")
        if state == "open":
            await self._close_context()
        elif state == "finishing" and self._socket is not None:
            self._socket.detach(self._context_id)  # its close_context has gone already
        self._log.debug("elevenlabs speech: %s: cancelled", self._context_id, extra=self._extra)

    # -- helpers -----------------------------------------------------------------------------

    async def _open(self) -> SpeechSocket | None:
        """The socket, with this reply's context opened on it (on the first sentence)."""
        if self._socket is not None:
            return self._socket
        socket = await self._connect(self._voice_id, self._attempt)
        if self._state != "new":
            return None
        socket.attach(self)
        self._socket, self._state = socket, "open"
        await socket.send(wire.open_context(self._context_id, self._voice_settings), self.timeout_s)
        self._log.debug(
            "elevenlabs speech: %s: context opened (%s)",
            self._context_id,
            self._attempt.request_id,
            extra=self._extra,
        )
        return socket

    async def _close_context(self) -> None:
        socket = self._socket
        if socket is None:
            return
        socket.detach(self._context_id)
        with contextlib.suppress(Exception):  # a dead socket needs no close_context
            await socket.send(wire.close_context(self._context_id), CANCEL_SEND_S)

    def _settle(self, state: State, error: Exception | None = None) -> None:
        self._state = state
        if error is not None and self._error is None:
            self._error = error
        self._done.set()

    def _check(self) -> None:
        """Raise what ended this reply early."""
        if self._state in ("failed", "ended") and self._error is not None:
            raise self._error
