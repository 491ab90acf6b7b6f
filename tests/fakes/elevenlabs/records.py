"""What the fake ElevenLabs saw and did, for tests to assert on, and the faults they inject.

Every handshake becomes a :class:`Connection`; every client message on it a
:class:`ClientMessage` stamped with ``time.monotonic()`` (so it compares with a test's own
clock), with credentials redacted: the ``xi-api-key`` header, an ``authorization`` header or
query parameter, and the ``xi-api-key`` / ``xi_api_key`` / ``authorization`` fields the
AsyncAPI allows in a first message. Server messages are kept too (:class:`ServerMessage`).
"""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass, field
from typing import Any, Literal

Endpoint = Literal["stream-input", "multi-stream-input"]
REDACTED = "<redacted>"
_SECRET_FIELDS = ("xi-api-key", "xi_api_key", "authorization")
#: the error an injected ``error_event`` sends by default: the text is one the live API sent
#: (pipecat-ai/pipecat#1426); its ``error`` code was not shown there, so this one is the fake's
DEFAULT_ERROR = "internal_server_error"
DEFAULT_ERROR_MESSAGE = "We are sorry, something went wrong. You are not charged for this request."


def redact(mapping: dict[str, Any]) -> dict[str, Any]:
    return {k: (REDACTED if k.lower() in _SECRET_FIELDS else v) for k, v in mapping.items()}


@dataclass(frozen=True, slots=True)
class Fault:
    """One injected failure of one connection (the shape of ``openai_server.Fault``).

    ``after_messages``: how many server messages go out first (0: right after the upgrade).
    """

    kind: Literal["status", "drop", "stall", "event"]
    status: int = 500
    retry_after: str | None = None
    after_messages: int = 0
    error: str = DEFAULT_ERROR
    message: str = DEFAULT_ERROR_MESSAGE

    @classmethod
    def http(cls, status: int, retry_after: str | None = None) -> Fault:
        """Refuse the upgrade with this HTTP status (401, 429, 500, 503...)."""
        return cls("status", status, retry_after)

    @classmethod
    def drop(cls, after_messages: int = 0) -> Fault:
        """Accept, then cut the TCP connection without a close frame (a network failure)."""
        return cls("drop", after_messages=after_messages)

    @classmethod
    def stall(cls, after_messages: int = 0) -> Fault:
        """Accept, then stop answering: nothing more is sent and no timeout fires, but the
        socket stays open and what the client sends is still recorded."""
        return cls("stall", after_messages=after_messages)

    @classmethod
    def error_event(
        cls,
        after_messages: int = 0,
        error: str = DEFAULT_ERROR,
        message: str = DEFAULT_ERROR_MESSAGE,
    ) -> Fault:
        """Send the API's error message (``{"message", "error", "code": 1008}``), then close
        with 1008."""
        return cls("event", after_messages=after_messages, error=error, message=message)


@dataclass(frozen=True, slots=True)
class ClientMessage:
    at_s: float
    data: dict[str, Any]

    @property
    def context_id(self) -> str | None:
        """``context_id`` (the guides and message schemas) or ``contextId`` (the client
        message schema ``WebsocketTTSClientMessageMulti``); None: the default context."""
        value = self.data.get("context_id", self.data.get("contextId"))
        return None if value is None else str(value)

    @property
    def text(self) -> str | None:
        value = self.data.get("text")
        return value if isinstance(value, str) else None

    @property
    def is_flush(self) -> bool:
        return self.data.get("flush") is True

    @property
    def is_close_context(self) -> bool:
        return self.data.get("close_context") is True

    @property
    def is_close_socket(self) -> bool:
        return self.data.get("close_socket") is True


@dataclass(frozen=True, slots=True)
class ServerMessage:
    at_s: float
    data: dict[str, Any]

    @property
    def context_id(self) -> str | None:
        value = self.data.get("contextId")
        return None if value is None else str(value)

    @property
    def audio(self) -> bytes:
        value = self.data.get("audio")
        return base64.b64decode(value) if isinstance(value, str) else b""

    @property
    def is_final(self) -> bool:
        return self.data.get("isFinal") is True

    @property
    def chars(self) -> str:
        found = self.data.get("alignment") or {}
        return "".join(found.get("chars", []))


@dataclass(slots=True)
class Connection:
    """One handshake and, when accepted, the session that followed."""

    endpoint: Endpoint
    voice_id: str
    query: dict[str, str]
    headers: dict[str, str]
    opened_at_s: float = field(default_factory=time.monotonic)
    #: 101 when upgraded, else the HTTP status the handshake was refused with
    status: int | None = None
    fault: Fault | None = None
    #: how the client authenticated: "header", "message", "token", or None (refused)
    auth: str | None = None
    received: list[ClientMessage] = field(default_factory=list)
    sent: list[ServerMessage] = field(default_factory=list)
    closed_at_s: float | None = None
    close_code: int | None = None
    close_reason: str = ""
    #: "server" (a close frame), "client", or "drop" (the fake cut the TCP connection)
    closed_by: str | None = None

    @property
    def multi(self) -> bool:
        return self.endpoint == "multi-stream-input"

    @property
    def closed(self) -> bool:
        return self.closed_at_s is not None

    # -- what the client sent ----------------------------------------------------------------

    def messages(self, context_id: str | None = None) -> list[ClientMessage]:
        """The client's messages to ``context_id`` (None: to the default context)."""
        return [m for m in self.received if m.context_id == context_id]

    def text_sent(self, context_id: str | None = None) -> str:
        """Everything the client gave ``context_id`` to speak, in order (keep-alives are
        empty or blank, so they add nothing that is spoken)."""
        return "".join(m.text or "" for m in self.messages(context_id)).strip()

    def flushes(self, context_id: str | None = None) -> list[ClientMessage]:
        return [m for m in self.messages(context_id) if m.is_flush]

    def keepalives(self, context_id: str | None = None) -> list[ClientMessage]:
        """Messages that only reset the inactivity clock: ``{"context_id", "text": ""}`` on
        multi-stream-input (guide "Keeping a context alive"), ``{"text": " "}`` after the first
        message on stream-input (guide "Generate audio in real-time", Tips)."""
        blank = "" if self.multi else " "
        found = self.messages(context_id)
        if not self.multi:
            found = found[1:]
        return [
            m
            for m in found
            if m.text == blank and not (m.is_flush or m.is_close_context or m.is_close_socket)
        ]

    def opened_contexts(self) -> list[str | None]:
        """Context ids in the order the client first addressed them (multi-stream-input)."""
        seen: list[str | None] = []
        for m in self.received:
            if m.is_close_socket or m.is_close_context or m.context_id in seen:
                continue
            seen.append(m.context_id)
        return seen

    def closed_contexts(self) -> list[str | None]:
        return [m.context_id for m in self.received if m.is_close_context]

    # -- what the fake sent ------------------------------------------------------------------

    def audio_of(self, context_id: str | None = None) -> list[ServerMessage]:
        return [m for m in self.sent if "audio" in m.data and m.context_id == context_id]

    def finals(self) -> list[ServerMessage]:
        return [m for m in self.sent if m.is_final]

    def errors(self) -> list[ServerMessage]:
        return [m for m in self.sent if "error" in m.data]
