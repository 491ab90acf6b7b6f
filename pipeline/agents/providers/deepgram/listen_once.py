"""One turn's audio to its text on a socket of its own: what the cascade falls back on while
the call's stream is down and its own endpointer cut the turn.

The socket hears the utterance (as fast as it takes it: the recogniser times by the audio),
then is told the audio is over, so it answers at once instead of waiting for silence:

* Nova-3: ``Finalize`` turns everything since the last final result into a final one
  (``from_finalize: true``), then ``CloseStream`` (which would do the same, and ends with
  ``Metadata`` and a normal close, should ``Finalize`` have nothing left to answer);
* Flux: ``ForceEndTurn`` ends the turn under way at once (an ``EndOfTurn`` with
  ``trigger: "manual"``), then ``CloseStream``; a turn the model ended by itself on the
  utterance's trailing silence is already in, and the close says nothing more comes.

The text is every final (Nova-3) or ended turn (Flux) heard, in order; a Flux turn still
open when the socket closes counts with its latest words.
"""

from __future__ import annotations

import asyncio
import json
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any

from websockets.exceptions import ConnectionClosedOK

from pipeline.agents.providers.deepgram.listen_turns import stream_error, transcript
from pipeline.agents.providers.websocket import open_socket
from pipeline.audio import AudioSpec

#: how much of the utterance goes in each message
CHUNK_MS = 250


class OnceReader(ABC):
    """Collects one utterance's words from a model's messages."""

    #: sent after the audio, in order
    finish: tuple[str, ...]

    def __init__(self) -> None:
        self.words: list[str] = []

    @abstractmethod
    def read(self, message: dict[str, Any]) -> bool:
        """One message; True when nothing more is needed."""

    def text(self) -> str:
        return " ".join(word for word in self.words if word)


class NovaOnce(OnceReader):
    finish = ("Finalize", "CloseStream")

    def read(self, message: dict[str, Any]) -> bool:
        kind = message.get("type")
        if kind == "Error":
            raise stream_error(message)
        if kind == "Metadata":  # CloseStream's answer: everything was said before it
            return True
        if kind != "Results" or not message.get("is_final"):
            return False
        self.words.append(transcript(message))
        return bool(message.get("from_finalize"))


class FluxOnce(OnceReader):
    finish = ("ForceEndTurn", "CloseStream")

    def __init__(self) -> None:
        super().__init__()
        self._open: str | None = None

    def read(self, message: dict[str, Any]) -> bool:
        kind = message.get("type")
        if kind == "Error":
            raise stream_error(message)
        if kind != "TurnInfo":
            return False
        text = str(message.get("transcript") or "").strip()
        if message.get("event") != "EndOfTurn":
            self._open = text
            return False
        self._open = None
        self.words.append(text)
        return message.get("trigger") == "manual"

    def text(self) -> str:
        if self._open:
            self.words.append(self._open)
            self._open = None
        return super().text()


async def transcribe_once(
    url: str,
    headers: Mapping[str, str],
    reader: OnceReader,
    utterance: bytes,
    spec: AudioSpec,
    timeout_s: float,
    name: str,
) -> str:
    """The words of ``utterance`` (``spec`` audio), within ``timeout_s`` in all; errors are
    those :func:`websocket.classify` reads (a refused handshake, a drop, ``TimeoutError``,
    an in-band ``StreamError``)."""
    async with asyncio.timeout(timeout_s):
        ws = await open_socket(url, headers, timeout_s, name)
        try:
            step = max(spec.bytes_for_ms(CHUNK_MS), spec.bytes_per_sample)
            for at in range(0, len(utterance), step):
                await ws.send(utterance[at : at + step])
            for kind in reader.finish:
                await ws.send(json.dumps({"type": kind}))
            while True:
                try:
                    raw = await ws.recv()
                except ConnectionClosedOK:  # the stream closed as asked: all is in
                    break
                if isinstance(raw, bytes):
                    continue
                try:
                    message = json.loads(raw)
                except ValueError:  # not for us to understand; the answer comes anyway
                    continue
                if isinstance(message, dict) and reader.read(message):
                    break
            return reader.text()
        finally:
            await ws.close()
