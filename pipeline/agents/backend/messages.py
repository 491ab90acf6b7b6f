"""Twilio's side of a Media Stream, as a backend sees it: the messages we send and parse.

Towards a Twilio-ready backend the bridge *is* Twilio, so these builders make the messages
Twilio sends (``connected``, ``start``, ``media``, ``mark`` echoes, ``dtmf``, ``stop``), numbered
as Twilio numbers them (``sequenceNumber`` from "1", ``media.chunk`` from "1", ``timestamp`` in
ms since the stream started), and :func:`parse` reads the three messages a server may send
(``media``, ``mark``, ``clear``, ``/work/shared/spec/twilio-media-streams.md`` §3.2).

The Twilio emulator (``transports/twilio/emulator/model.py``) builds its messages with
:class:`TwilioStream` too: one definition of what Twilio sends, for the bridge playing Twilio
towards a backend and for the tests playing Twilio towards the bridge.

Parsing is hostile-input safe: every malformed or unexpected message yields a
:class:`Rejected` with the reason, never an exception, so the link can log and ignore it.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

FRAME_MS = 20
ULAW_BYTES_PER_MS = 8
#: the ``media`` payload size Twilio sends: 20 ms of μ-law
FRAME_BYTES = FRAME_MS * ULAW_BYTES_PER_MS
MEDIA_FORMAT: dict[str, Any] = {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}
#: longest mark name we echo (Twilio's own are short labels)
MAX_MARK_NAME_CHARS = 256

Message = dict[str, Any]


def new_sid(prefix: str) -> str:
    """A Twilio-style SID (``CA…``, ``MZ…``, ``AC…``: the prefix and 32 hex digits)."""
    return prefix + secrets.token_hex(16)


class TwilioStream:
    """One stream towards the backend: its identities and Twilio's counters.

    A reconnect is a new stream (a new ``streamSid``, counters from 1) of the same call.
    """

    def __init__(
        self,
        call_sid: str,
        account_sid: str,
        params: Mapping[str, str],
        stream_sid: str | None = None,
    ) -> None:
        self.call_sid = call_sid
        self.account_sid = account_sid
        self.params = dict(params)
        self.stream_sid = stream_sid or new_sid("MZ")
        self._seq = 0
        self._chunk = 0

    def _next_seq(self) -> str:
        self._seq += 1
        return str(self._seq)

    def connected(self) -> Message:
        return {"event": "connected", "protocol": "Call", "version": "1.0.0"}

    def start(self, media_format: Mapping[str, Any] | None = None) -> Message:
        """``media_format``: what a test claims instead of Twilio's μ-law 8 kHz."""
        return {
            "event": "start",
            "sequenceNumber": self._next_seq(),
            "start": {
                "accountSid": self.account_sid,
                "streamSid": self.stream_sid,
                "callSid": self.call_sid,
                "tracks": ["inbound"],
                "mediaFormat": dict(media_format or MEDIA_FORMAT),
                "customParameters": dict(self.params),
            },
            "streamSid": self.stream_sid,
        }

    def media(self, ulaw: bytes) -> Message:
        """One inbound frame; the timestamp counts the audio sent so far (ms), as Twilio's."""
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

    def mark(self, name: str) -> Message:
        """The echo of the backend's mark ``name``: its audio has played (or was cleared)."""
        return {
            "event": "mark",
            "sequenceNumber": self._next_seq(),
            "streamSid": self.stream_sid,
            "mark": {"name": name},
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


# -- what the backend sends ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Media:
    ulaw: bytes


@dataclass(frozen=True, slots=True)
class Mark:
    name: str


@dataclass(frozen=True, slots=True)
class Clear:
    pass


@dataclass(frozen=True, slots=True)
class Rejected:
    """Not applied (as Twilio's warning 31951): ``why`` is logged."""

    why: str


Received = Media | Mark | Clear | Rejected


def parse(frame: str | bytes, stream_sid: str, max_bytes: int) -> Received:
    """One frame from the backend, checked as Twilio checks it (text JSON, a known event,
    our ``streamSid``); ``max_bytes`` bounds the frame before any decoding."""
    if not isinstance(frame, str):
        return Rejected("binary frame")
    if len(frame) > max_bytes:
        return Rejected(f"frame of {len(frame)} characters")
    try:
        message = json.loads(frame)
    except ValueError:
        return Rejected("invalid JSON")
    if not isinstance(message, dict):
        return Rejected("not a JSON object")
    event = message.get("event")
    if event not in ("media", "mark", "clear"):
        return Rejected(f"unknown event {str(event)[:40]!r}")
    if message.get("streamSid") != stream_sid:
        return Rejected(f"{event} for another streamSid")
    if event == "clear":
        return Clear()
    body = message.get(event)
    if not isinstance(body, dict):
        return Rejected(f"{event} without its body")
    if event == "mark":
        name = body.get("name")
        if not isinstance(name, str) or not name or len(name) > MAX_MARK_NAME_CHARS:
            return Rejected("mark without a usable name")
        return Mark(name)
    payload = body.get("payload")
    if not isinstance(payload, str):
        return Rejected("media without a payload")
    try:
        ulaw = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        return Rejected("media payload is not base64")
    return Media(ulaw)
