"""What tests inject into the fake Deepgram (faults, tuning) and what it records.

:class:`Fault` mirrors the shape of ``tests/fakes/openai_server.py``'s ``Fault`` (a kind,
an HTTP status, a count of messages sent first) for WebSocket endpoints: refuse the upgrade,
drop the TCP connection (no close frame), stall (keep the socket open, answer nothing),
or close it with a WebSocket close code as Deepgram reports a failure mid-stream (a close
frame whose code and UTF-8 reason say why; Deepgram's "STT Troubleshooting WebSocket, NET,
and DATA Errors" page,
https://developers.deepgram.com/docs/stt-troubleshooting-websocket-data-and-net-errors).

:class:`Connection` is one handshake as the fake saw it: where it came (path, query, the
headers with credentials redacted), whether it was let in, every client message with the
time it arrived, and everything the fake sent back.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from tests.fakes.deepgram.audio import WireEncoding, audio_ms

#: Nova-3 (``/v1/listen``), Flux (``/v2/listen``), Aura (``/v1/speak``)
Endpoint = Literal["nova", "flux", "aura"]
#: how the client came: straight to Deepgram, or through Cloudflare AI Gateway (Workers AI)
Route = Literal["deepgram", "gateway"]
#: headers whose values are credentials: kept only as a scheme and a digest
SECRET_HEADERS = frozenset({"authorization", "cf-aig-authorization", "sec-websocket-protocol"})


@dataclass(frozen=True, slots=True)
class Fault:
    kind: Literal["status", "drop", "stall", "close"]
    status: int = 500
    retry_after: str | None = None
    #: for "drop", "stall" and "close": how many messages the fake sends first (0: none,
    #: not even ``Connected`` or ``Metadata``)
    after_messages: int = 0
    #: for "close": the WebSocket close code (Deepgram uses 1011 for its NET errors)
    close_code: int = 1011

    @classmethod
    def http(cls, status: int, retry_after: str | None = None) -> Fault:
        """Refuse the upgrade with ``status`` (401, 429, 500, 503...)."""
        return cls("status", status, retry_after)

    @classmethod
    def drop(cls, after_messages: int = 0) -> Fault:
        """Accept, send ``after_messages`` messages, then cut the TCP connection."""
        return cls("drop", after_messages=after_messages)

    @classmethod
    def stall(cls, after_messages: int = 0) -> Fault:
        """Accept, send ``after_messages`` messages, then answer nothing more (the socket
        stays open and what the client sends is still recorded)."""
        return cls("stall", after_messages=after_messages)

    @classmethod
    def close(cls, after_messages: int = 0, code: int = 1011) -> Fault:
        """Accept, send ``after_messages`` messages, then close with ``code`` (Flux sends its
        ``Error`` message first)."""
        return cls("close", after_messages=after_messages, close_code=code)


@dataclass(slots=True)
class Tuning:
    """How the fake times its answers: audio time for recognition, wall time for limits."""

    #: Nova-3: one interim ``Results`` per this much audio while an utterance is open
    nova_interim_ms: int = 500
    #: Nova-3: silence after which a final is sent when ``endpointing=false``
    nova_final_without_endpointing_ms: int = 1000
    #: Flux: ``Update`` cadence ("approximately every 0.25 seconds", the Flux state page)
    flux_update_ms: int = 250
    #: Flux: silence after the last voiced frame before ``EagerEndOfTurn`` (when enabled)
    flux_eager_ms: int = 100
    #: Flux: silence after the last voiced frame before ``EndOfTurn``
    flux_eot_ms: int = 200
    #: Nova-3: no audio and no text for this long closes the socket (Deepgram: 10 s)
    idle_timeout_s: float = 10.0
    #: Aura: bytes of one binary message, as audio time
    aura_chunk_ms: int = 100
    #: Aura: wait between binary messages (0: as fast as the socket takes them)
    aura_chunk_delay_s: float = 0.0
    #: Aura: at most ``flush_limit`` ``Flush`` messages per ``flush_window_s``
    flush_limit: int = 20
    flush_window_s: float = 60.0
    #: RMS level above which a 20 ms frame is speech
    voice_rms: int = 400


@dataclass(frozen=True, slots=True)
class ClientMessage:
    """One WebSocket message from the client, as received."""

    at_s: float
    data: bytes | None = None
    text: str | None = None

    @property
    def json(self) -> dict[str, Any]:
        """The text message parsed (an empty dict for audio or text that is not JSON)."""
        if self.text is None:
            return {}
        try:
            value = json.loads(self.text)
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}

    @property
    def type(self) -> str | None:
        """``"KeepAlive"``, ``"Speak"``...; None for audio."""
        kind = self.json.get("type")
        return kind if isinstance(kind, str) else None


@dataclass(frozen=True, slots=True)
class SentMessage:
    """One message the fake sent: a JSON event or a binary audio chunk."""

    at_s: float
    event: dict[str, Any] | None = None
    audio: bytes | None = None


@dataclass(slots=True)
class Connection:
    endpoint: Endpoint
    route: Route
    path: str
    #: the query, one value per name (``query_string`` keeps repeated ones, e.g. ``keyterm``)
    query: dict[str, str]
    #: request headers; credentials appear as "<scheme> <redacted>"
    headers: dict[str, str]
    #: through the gateway: the account and gateway named in the path
    account: str = ""
    gateway: str = ""
    query_string: str = ""
    #: how credentials came: "Token", "Bearer", "subprotocol", "" for a bare token or none
    auth_scheme: str = ""
    #: 101 when upgraded, else the HTTP status the handshake got
    status: int = 101
    fault: Fault | None = None
    messages: list[ClientMessage] = field(default_factory=list)
    sent: list[SentMessage] = field(default_factory=list)
    opened_at: float = field(default_factory=time.monotonic)
    closed_at: float | None = None
    #: the close code: the client's, the fake's, or 1006 when the fake dropped the socket
    close_code: int | None = None
    close_reason: str = ""
    closed_by: Literal["", "client", "server", "drop"] = ""
    _secret_digest: bytes = b""

    # -- credentials -------------------------------------------------------------------

    def presented(self, secret: str) -> bool:
        """Whether the client presented ``secret`` (compared by digest; never stored)."""
        return hmac.compare_digest(self._secret_digest, _digest(secret))

    def keep_secret(self, secret: str) -> None:
        self._secret_digest = _digest(secret)

    # -- what the client sent ----------------------------------------------------------

    @property
    def audio(self) -> bytes:
        """Every binary message, joined, exactly as received."""
        return b"".join(m.data for m in self.messages if m.data is not None)

    @property
    def audio_ms(self) -> float:
        """How much audio the client sent, in the format its query declared."""
        encoding = self.query.get("encoding", "linear16")
        rate_hz = int(self.query.get("sample_rate", "16000") or 16000)
        wire: WireEncoding = "mulaw" if encoding == "mulaw" else "linear16"
        return audio_ms(len(self.audio), wire, rate_hz)

    def of_type(self, kind: str) -> list[ClientMessage]:
        """The client's text messages of ``kind`` (``"KeepAlive"``, ``"Flush"``...)."""
        return [m for m in self.messages if m.type == kind]

    # -- what the fake sent ------------------------------------------------------------

    def events(self, kind: str | None = None) -> list[dict[str, Any]]:
        """JSON events sent, optionally only those of ``type`` (or Flux ``event``) ``kind``."""
        out = [m.event for m in self.sent if m.event is not None]
        if kind is None:
            return out
        return [e for e in out if kind in (e.get("type"), e.get("event"))]

    @property
    def sent_audio(self) -> bytes:
        return b"".join(m.audio for m in self.sent if m.audio is not None)

    @property
    def closed(self) -> bool:
        return self.closed_at is not None


def redact(headers: dict[str, str]) -> tuple[dict[str, str], dict[str, tuple[str, str]]]:
    """Headers safe to keep, and the credentials found: for ``authorization``,
    ``cf-aig-authorization`` and ``subprotocol``, the scheme they came with and the secret."""
    safe: dict[str, str] = {}
    found: dict[str, tuple[str, str]] = {}
    for name, value in headers.items():
        if name not in SECRET_HEADERS:
            safe[name] = value
        elif name == "sec-websocket-protocol":
            offered = [p.strip() for p in value.split(",")]
            chosen = subprotocol_secret(offered)
            if chosen is None:
                safe[name] = value
                continue
            found["subprotocol"] = ("subprotocol", chosen[1])
            safe[name] = ", ".join("<redacted>" if chosen[1] in p else p for p in offered)
        else:
            kind, _, token = value.partition(" ")
            if not token:  # a bare token (Cloudflare's realtime examples send one)
                kind, token = "", kind
            found[name] = (kind, token)
            safe[name] = f"{kind} <redacted>".strip()
    return safe, found


def subprotocol_secret(offered: list[str]) -> tuple[str, str] | None:
    """Credentials a browser client put in ``Sec-WebSocket-Protocol``: Deepgram's
    ``["token", key]`` or Cloudflare's ``"cf-aig-authorization.<token>"``. Returns the
    subprotocol to accept and the secret."""
    if len(offered) >= 2 and offered[0] == "token":
        return "token", offered[1]
    for protocol in offered:
        if protocol.startswith("cf-aig-authorization."):
            token = protocol.removeprefix("cf-aig-authorization.")
            return protocol, token
    return None


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


@dataclass(frozen=True, slots=True)
class Emit:
    """One thing a protocol core wants sent, in order: a JSON event, audio, or a close."""

    event: dict[str, Any] | None = None
    audio: bytes | None = None
    #: the first answer to an utterance, a turn or a flush: the injected delay goes before it
    first: bool = False
    #: close the socket with (code, reason) once everything before it is sent
    close: tuple[int, str] | None = None
