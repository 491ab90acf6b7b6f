"""Aura streaming speech (``/v1/speak``): text in, audio out, in the requested format.

Messages and the document each comes from:

* on connect, ``Metadata`` (``request_id``, ``model_name``, ``model_version``,
  ``model_uuid``; ``deepgram-python-sdk`` ``speak_v1metadata.py``; Flux TTS's server
  messages page calls its ``Connected`` the "successor to v1/speak's ``Metadata``", which
  is why the fake sends it first);
* ``Speak`` adds its ``text`` to the buffer; ``Flush`` turns the buffer into audio, sent as
  binary messages, then ``Flushed`` with a ``sequence_id``
  (https://developers.deepgram.com/docs/tts-ws-flush);
* at most 20 ``Flush`` per 60 s: past that the flush is not processed and a ``Warning``
  says so ("you will receive a warning message stating that we cannot process any more
  flush messages until the 60-second time window has passed", same page). The SDK's
  ``speak_v1warning.py`` names its fields ``code`` and ``description``; a merged SDK fix
  (deepgram/deepgram-python-sdk#653) reports the wire carrying
  ``{"warn_code": "EXCESSIVE_FLUSH", "warn_msg": ...}``. The fake sends both pairs;
* ``Clear`` drops the text buffer and all audio not yet sent, then ``Cleared``
  (https://developers.deepgram.com/docs/tts-ws-clear);
* ``Close`` closes at once with 1000 (https://developers.deepgram.com/docs/tts-ws-close).

Speech is :func:`~tests.fakes.deepgram.audio.speech_audio`: ``tts_ms(text)`` of a tone, in
``Tuning.aura_chunk_ms`` binary messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque

from tests.fakes.deepgram.audio import bytes_per_sample, speech_audio
from tests.fakes.deepgram.link import Link
from tests.fakes.deepgram.params import AuraParams
from tests.fakes.deepgram.records import ClientMessage, Emit, Tuning

EXCESSIVE_FLUSH = "EXCESSIVE_FLUSH"
FLUSH_WARNING = "Rate limit exceeded for flushes. Please try again later."


class AuraSession:
    def __init__(self, link: Link, params: AuraParams, tuning: Tuning, request_id: str) -> None:
        self.link = link
        self.params = params
        self.tuning = tuning
        self.request_id = request_id
        self.buffer: list[str] = []
        #: flushed text waiting for synthesis, with its flush's sequence_id
        self.jobs: deque[tuple[str, int]] = deque()
        self._job_ready = asyncio.Event()
        #: when each processed flush arrived (wall clock), for the 20-per-minute limit
        self.flush_times: deque[float] = deque()
        self.flushes = 0
        self.clears = 0
        self._speaker: asyncio.Task[None] | None = None

    def open(self) -> None:
        metadata = {
            "type": "Metadata",
            "request_id": self.request_id,
            "model_name": self.params.voice,
            "model_version": "fake",
            "model_uuid": "00000000-0000-4000-8000-00000000a0a0",
        }
        self.link.emit([Emit(metadata)])
        self._start_speaker()

    async def close(self) -> None:
        await self._stop_speaker()

    async def handle(self, message: ClientMessage) -> None:
        kind = message.type
        if kind == "Speak":
            self.buffer.append(str(message.json.get("text", "")))
        elif kind == "Flush":
            self._flush()
        elif kind == "Clear":
            await self._clear()
        elif kind == "Close":
            await self._stop_speaker()
            self.link.purge(lambda emit: True)
            self.link.emit([Emit(close=(1000, ""))])

    def _flush(self) -> None:
        now = time.monotonic()
        window_s = self.tuning.flush_window_s
        while self.flush_times and now - self.flush_times[0] >= window_s:
            self.flush_times.popleft()
        if len(self.flush_times) >= self.tuning.flush_limit:
            warning = {
                "type": "Warning",
                "code": EXCESSIVE_FLUSH,
                "description": FLUSH_WARNING,
                "warn_code": EXCESSIVE_FLUSH,
                "warn_msg": FLUSH_WARNING,
            }
            self.link.emit([Emit(warning)])
            return
        self.flush_times.append(now)
        self.jobs.append(("".join(self.buffer), self.flushes))
        self.flushes += 1
        self.buffer.clear()
        self._job_ready.set()

    async def _clear(self) -> None:
        await self._stop_speaker()
        self.jobs.clear()
        self.buffer.clear()
        self.link.purge(lambda emit: emit.audio is not None or _is_flushed(emit))
        self.link.emit([Emit({"type": "Cleared", "sequence_id": self.clears})])
        self.clears += 1
        self._start_speaker()

    # -- synthesis ---------------------------------------------------------------------

    def _start_speaker(self) -> None:
        self._speaker = asyncio.create_task(self._speak_jobs(), name="deepgram-fake-aura")

    async def _stop_speaker(self) -> None:
        task, self._speaker = self._speaker, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _speak_jobs(self) -> None:
        params = self.params
        step = (
            params.rate_hz * self.tuning.aura_chunk_ms // 1000 * bytes_per_sample(params.encoding)
        )
        while True:
            while not self.jobs:
                self._job_ready.clear()
                await self._job_ready.wait()
            text, sequence_id = self.jobs.popleft()
            audio = speech_audio(text, params.encoding, params.rate_hz)
            for index, offset in enumerate(range(0, len(audio), step)):
                self.link.emit([Emit(audio=audio[offset : offset + step], first=index == 0)])
                if self.tuning.aura_chunk_delay_s:
                    await asyncio.sleep(self.tuning.aura_chunk_delay_s)
            self.link.emit([Emit({"type": "Flushed", "sequence_id": sequence_id})])


def _is_flushed(emit: Emit) -> bool:
    return emit.event is not None and emit.event.get("type") == "Flushed"
