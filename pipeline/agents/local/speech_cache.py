"""Speech already synthesised, kept for the next time the same words are said.

The offline agent says the same few things again and again (the greeting, "Sorry, I didn't
catch that", the help text, today's date): on one core piper needs ~0.2 s for every second of
speech it makes, and that time is the caller's wait. An IVR keeps its prompts recorded; this
keeps each sentence the first time it is spoken, in a bounded least-recently-used store
shared by every call of the process.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from pipeline.agents.local.voice import Speaker

#: ~190 s of speech at 22 050 Hz: every fixed phrase many times over, a few MB per process
DEFAULT_BUDGET_BYTES = 8 * 1024 * 1024


class CachedSpeaker(Speaker):
    """``speaker`` with a memory: the same text is synthesised once while it stays in use."""

    def __init__(self, speaker: Speaker, budget_bytes: int = DEFAULT_BUDGET_BYTES) -> None:
        self._speaker = speaker
        self._budget_bytes = budget_bytes
        self._used_bytes = 0
        self._kept: OrderedDict[str, bytes] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    @property
    def rate_hz(self) -> int:
        return self._speaker.rate_hz

    def load(self) -> None:
        self._speaker.load()

    def synthesize(self, text: str) -> bytes:
        with self._lock:
            pcm = self._kept.get(text)
            if pcm is not None:
                self._kept.move_to_end(text)
                self.hits += 1
                return pcm
            self.misses += 1
        # outside the lock: another call's hit need not wait for this synthesis
        pcm = self._speaker.synthesize(text)
        if len(pcm) <= self._budget_bytes:
            self._keep(text, pcm)
        return pcm

    def _keep(self, text: str, pcm: bytes) -> None:
        with self._lock:
            previous = self._kept.pop(text, None)
            if previous is not None:  # two calls made the same sentence at once
                self._used_bytes -= len(previous)
            self._kept[text] = pcm
            self._used_bytes += len(pcm)
            while self._used_bytes > self._budget_bytes:
                _, dropped = self._kept.popitem(last=False)
                self._used_bytes -= len(dropped)
