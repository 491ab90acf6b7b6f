"""Twilio's side of a bidirectional Media Stream, as a pure model (no sockets, no clock).

Twilio plays what the server sends at real time and reports progress with ``mark`` echoes: a
mark is echoed once everything queued before it has played, and a ``clear`` drops the unplayed
audio and echoes every pending mark at once. This module decides all of that from messages
and ``now_s`` arguments, the way h11 and wsproto separate a protocol from its I/O:

* :meth:`TwilioModel.receive` takes one frame from the server (with the time it arrived) and
  returns the mark echoes to send now;
* :meth:`TwilioModel.due_s` says when the next playback step is due, and
  :meth:`TwilioModel.advance` performs every step due by then, returning more mark echoes;
* the builders (:meth:`~TwilioModel.connected`, :meth:`~TwilioModel.start`,
  :meth:`~TwilioModel.media`, :meth:`~TwilioModel.dtmf`, :meth:`~TwilioModel.stop`) make the
  messages Twilio sends, numbered as Twilio numbers them (the backend agent's
  :class:`~pipeline.agents.backend.messages.TwilioStream`, which plays Twilio too).

Playback runs on an absolute clock: a frame starts when the previous one ends, or when it
arrives if the player was idle, so a late timer does not make the model drift.
"""

from __future__ import annotations

import base64
import json
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from pipeline.agents.backend.messages import TwilioStream
from pipeline.agents.backend.messages import new_sid as new_sid  # re-exported for tests

FRAME_MS = 20
ULAW_RATE_HZ = 8000
ULAW_BYTES_PER_MS = ULAW_RATE_HZ // 1000
ULAW_SILENCE = b"\xff"
MS_PER_S = 1000.0

Message = dict[str, Any]


@dataclass
class Timeline:
    """Everything the emulator saw, with the times the caller passed in (monotonic seconds)."""

    received: list[tuple[float, Message]] = field(default_factory=list)
    echoed_marks: list[str] = field(default_factory=list)
    #: when each mark echo was sent
    echo_times: list[float] = field(default_factory=list)
    #: marks echoed because their audio played (not flushed by a clear)
    played_marks: list[str] = field(default_factory=list)
    clears: list[float] = field(default_factory=list)
    media_times: list[float] = field(default_factory=list)
    non_text_frames: int = 0


@dataclass(frozen=True)
class _Media:
    ulaw: bytes

    @property
    def duration_s(self) -> float:
        return len(self.ulaw) / ULAW_BYTES_PER_MS / MS_PER_S


@dataclass(frozen=True)
class _Mark:
    name: str


class TwilioModel:
    """The far end of one Media Stream: identities, sequence numbers and the play queue."""

    def __init__(
        self,
        *,
        call_sid: str | None = None,
        stream_sid: str | None = None,
        account_sid: str | None = None,
        params: dict[str, str] | None = None,
        realtime_playback: bool = True,
    ) -> None:
        self.call_sid = call_sid or new_sid("CA")
        self.stream_sid = stream_sid or new_sid("MZ")
        self.account_sid = account_sid or new_sid("AC")
        self.params = params or {}
        #: False: audio counts as played the moment it arrives (no waiting)
        self.realtime_playback = realtime_playback
        self.timeline = Timeline()
        #: μ-law audio in the order it was played (cleared audio is not played)
        self.played = bytearray()
        #: the messages Twilio sends, numbered as Twilio numbers them
        self.stream = TwilioStream(self.call_sid, self.account_sid, self.params, self.stream_sid)
        self._queue: deque[_Media | _Mark] = deque()
        #: when the player is free to start the next queued item
        self._free_at_s = 0.0

    # -- Twilio -> server ------------------------------------------------------------------

    def connected(self) -> Message:
        return self.stream.connected()

    def start(self, media_format: dict[str, Any] | None = None) -> Message:
        return self.stream.start(media_format)

    def media(self, ulaw: bytes) -> Message:
        """One inbound ``media`` frame; chunks count from 1 and stamp ``chunk * FRAME_MS``."""
        return self.stream.media(ulaw)

    def dtmf(self, digit: str) -> Message:
        return self.stream.dtmf(digit)

    def stop(self) -> Message:
        return self.stream.stop()

    def _mark_echo(self, name: str, now_s: float) -> Message:
        self.timeline.echoed_marks.append(name)
        self.timeline.echo_times.append(now_s)
        return self.stream.mark(name)

    # -- server -> Twilio ------------------------------------------------------------------

    def receive(self, frame: str | bytes, now_s: float) -> list[Message]:
        """Take one frame from the server; return the mark echoes to send now.

        Non-JSON text raises ``ValueError`` (the server broke the protocol; a test should see
        it); binary frames are only counted, as Twilio ignores them.
        """
        echoes = self.advance(now_s)
        if not isinstance(frame, str):
            self.timeline.non_text_frames += 1
            return echoes
        message: Message = json.loads(frame)
        self.timeline.received.append((now_s, message))
        event = message.get("event")
        if event == "media":
            self.timeline.media_times.append(now_s)
            self._enqueue(_Media(base64.b64decode(message["media"]["payload"])), now_s)
        elif event == "mark":
            self._enqueue(_Mark(message["mark"]["name"]), now_s)
        elif event == "clear":
            self.timeline.clears.append(now_s)
            echoes += self._clear(now_s)
        return echoes + self.advance(now_s)

    def _enqueue(self, item: _Media | _Mark, now_s: float) -> None:
        if not self._queue:
            self._free_at_s = max(self._free_at_s, now_s)  # an idle player starts now
        self._queue.append(item)

    def _clear(self, now_s: float) -> list[Message]:
        """Drop unplayed audio (the frame playing now stops too); echo pending marks at once."""
        pending = list(self._queue)
        self._queue.clear()
        self._free_at_s = now_s
        return [self._mark_echo(item.name, now_s) for item in pending if isinstance(item, _Mark)]

    def due_s(self) -> float | None:
        """When the next playback step is due; None while nothing is queued."""
        return self._free_at_s if self._queue else None

    def advance(self, now_s: float) -> list[Message]:
        """Play every step due by ``now_s``; return the echoes of the marks reached."""
        echoes: list[Message] = []
        while self._queue and self._free_at_s <= now_s:
            item = self._queue.popleft()
            if isinstance(item, _Mark):
                self.timeline.played_marks.append(item.name)
                echoes.append(self._mark_echo(item.name, now_s))
                continue
            self.played += item.ulaw
            if self.realtime_playback:
                self._free_at_s += item.duration_s
        return echoes

    @property
    def has_queued(self) -> bool:
        """True while audio or marks wait for the player."""
        return bool(self._queue)

    def outbound(self, event: str | None = None) -> list[Message]:
        """Every message the server sent (of one ``event`` type), in arrival order."""
        return [m for _, m in self.timeline.received if event is None or m.get("event") == event]
