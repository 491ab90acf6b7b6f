"""Captions: a reply's words, placed at the point of its audio where they are spoken.

An agent that knows its words (the cascade, sentence by sentence) says so just before it
queues their audio (:meth:`~pipeline.agents.base.AgentOutput.caption`). The session stamps
each caption with its position in the turn's audio (the ms of the turn queued so far) and
hands it to a port that can show words (:class:`CaptionPort`: a xiaozhi device's screen).
The port sends it when its own audio of the turn reaches that position, so the screen shows
a sentence as it starts to play, not when it was written: the playout's queue alone may hold
two seconds of the reply. Ports without a screen are never told, and cost nothing.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from pipeline.audio import AudioSpec
from pipeline.ports import CallPort

#: turns whose positions are kept (an agent writes one reply at a time; a greeting may
#: still be queued when the first answer starts)
MAX_TURNS = 4


@runtime_checkable
class CaptionPort(Protocol):
    """A port that shows the agent's words with its audio."""

    def caption(self, turn_id: int, at_ms: float, text: str) -> None:
        """Show ``text`` once ``at_ms`` of ``turn_id``'s audio has been sent; a caption whose
        audio never goes out (the turn was stopped) is never shown."""


class Captions:
    """Positions of one call's captions in its turns' audio (in the agent's format)."""

    def __init__(self, port: CallPort, agent_out: AudioSpec) -> None:
        self._port = port if isinstance(port, CaptionPort) else None
        self._spec = agent_out
        #: ms of audio queued so far, per turn
        self._queued_ms: dict[int, float] = {}

    def audio(self, turn_id: int, pcm: bytes) -> None:
        """``pcm`` of ``turn_id`` was queued."""
        if self._port is not None:
            self._queued_ms[turn_id] = self._at(turn_id) + self._spec.duration_ms(len(pcm))

    def caption(self, turn_id: int, text: str) -> None:
        """The audio queued next for ``turn_id`` speaks ``text``."""
        if self._port is not None and text.strip():
            self._port.caption(turn_id, self._at(turn_id), text.strip())

    def _at(self, turn_id: int) -> float:
        if turn_id not in self._queued_ms:
            if len(self._queued_ms) >= MAX_TURNS:
                del self._queued_ms[min(self._queued_ms)]
            self._queued_ms[turn_id] = 0.0
        return self._queued_ms[turn_id]
