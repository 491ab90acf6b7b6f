"""One context's text buffer: when its text is spoken, and in what pieces.

Text goes into the buffer and is spoken (queued for the context's speaker) when the buffer
reaches the next value of ``generation_config.chunk_length_schedule`` (default
``[120, 160, 250, 290]``), on ``flush: true``, on ``try_trigger_generation`` above a minimum, at
once with ``auto_mode=true``, and when the stream or context ends with audio already flushed:
AsyncAPI schemas ``SendText`` and ``GenerationConfig``, query parameter ``auto_mode`` ("disabling
chunk schedule and buffers"), guide ``developer-guides/websockets.mdx`` ("Buffering").
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from tests.fakes.elevenlabs import wire

#: what a context's first message fixes (AsyncAPI ``SendText``: "must either be not provided
#: or not changed")
SETTINGS_FIELDS = ("voice_settings", "generation_config")


class Context:
    """One context's text buffer and the queue of generations its speaker task works through."""

    def __init__(self, context_id: str | None, first: dict[str, Any]) -> None:
        self.id = context_id
        self.settings = {name: first.get(name) for name in SETTINGS_FIELDS}
        config = first.get("generation_config") or {}
        schedule = config.get("chunk_length_schedule") or wire.DEFAULT_CHUNK_SCHEDULE
        self.schedule = [int(n) for n in schedule]
        self.buffer = ""
        self.generations = 0
        #: texts to speak, in order; None: finish (send ``isFinal``) after what came before
        self.queue: asyncio.Queue[str | None] = asyncio.Queue()
        self.speaking = False
        self.closing = False
        #: closed without letting flushed audio finish (``close_drains_flushed=False``)
        self.cut = False
        self.last_s = time.monotonic()
        self.task: asyncio.Task[None] | None = None

    @property
    def busy(self) -> bool:
        return self.speaking or not self.queue.empty()

    def feed(self, text: str, *, flush: bool, try_trigger: bool, auto_mode: bool) -> None:
        # a blank text is a keep-alive unless it separates words already buffered
        if text and (text.strip() or self.buffer):
            self.buffer += text
        threshold = self.schedule[min(self.generations, len(self.schedule) - 1)]
        if (
            flush
            or auto_mode
            or (try_trigger and len(self.buffer.strip()) >= wire.TRY_TRIGGER_MIN_CHARS)
            or len(self.buffer) >= threshold
        ):
            self.emit()

    def emit(self) -> None:
        text, self.buffer = self.buffer, ""
        if text.strip():
            self.queue.put_nowait(text)
            self.generations += 1

    def close(self, *, drain: bool) -> None:
        self.buffer = ""
        self.closing = True
        self.cut = self.cut or not drain
        self.queue.put_nowait(None)
