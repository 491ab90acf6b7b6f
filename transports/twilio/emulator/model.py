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
  messages Twilio sends, numbered as Twilio numbers them.

Playback runs on an absolute clock: a frame starts when the previous one ends, or when it
arrives if the player was idle, so a late timer does not make the model drift.
"""

from __future__ import annotations

import base64
import json
import secrets
from collections import deque
from dataclasses import dataclass, field
from typing import Any

FRAME_MS = 20
ULAW_RATE_HZ = 8000
ULAW_BYTES_PER_MS = ULAW_RATE_HZ // 1000
ULAW_SILENCE = b"\xff"
MS_PER_S = 1000.0
DEFAULT_MEDIA_FORMAT: dict[str, Any] = {
    "encoding": "audio/x-mulaw",
    "sampleRate": ULAW_RATE_HZ,
    "channels": 1,
}

Message = dict[str, Any]


def new_sid(prefix: str) -> str:
    """A random Twilio-style SID (``CA…``, ``MZ…``, ``AC…``: prefix and 32 hex digits)."""
    return prefix + secrets.token_hex(16)


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
        self._seq = 0
        self._chunk = 0
        self._queue: deque[_Media | _Mark] = deque()
        #: when the player is free to start the next queued item
        self._free_at_s = 0.0

    # -- Twilio -> server ------------------------------------------------------------------

    def _next_seq(self) -> str:
        self._seq += 1
        return str(self._seq)

    def connected(self) -> Message:
        return {"event": "connected", "protocol": "Call", "version": "1.0.0"}

    def start(self, media_format: dict[str, Any] | None = None) -> Message:
        return {
            "event": "start",
            "sequenceNumber": self._next_seq(),
            "start": {
                "accountSid": self.account_sid,
                "streamSid": self.stream_sid,
                "callSid": self.call_sid,
                "tracks": ["inbound"],
                "mediaFormat": media_format or dict(DEFAULT_MEDIA_FORMAT),
                "customParameters": self.params,
            },
            "streamSid": self.stream_sid,
        }

    def media(self, ulaw: bytes) -> Message:
        """One inbound ``media`` frame; chunks count from 1 and stamp ``chunk * FRAME_MS``."""
        self._chunk += 1
        return {
            "event": "media",
            "sequenceNumber": self._next_seq(),
            "media": {
                "track": "inbound",
                "chunk": str(self._chunk),
                "timestamp": str(self._chunk * FRAME_MS),
                "payload": base64.b64encode(ulaw).decode("ascii"),
            },
            "streamSid": self.stream_sid,
        }

    def dtmf(self, digit: str) -> Message:
        return {
            "event": "dtmf",
            "streamSid": self.stream_sid,
            "sequenceNumber": self._next_seq(),
            "dtmf": {"track": "inbound_track", "digit": digit},
        }

    def stop(self) -> Message:
        return {
            "event": "stop",
            "sequenceNumber": self._next_seq(),
            "stop": {"accountSid": self.account_sid, "callSid": self.call_sid},
            "streamSid": self.stream_sid,
        }

    def _mark_echo(self, name: str, now_s: float) -> Message:
        self.timeline.echoed_marks.append(name)
        self.timeline.echo_times.append(now_s)
        return {
            "event": "mark",
            "sequenceNumber": self._next_seq(),
            "streamSid": self.stream_sid,
            "mark": {"name": name},
        }

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
