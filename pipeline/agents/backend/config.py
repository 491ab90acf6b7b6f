"""How the bridge reaches a Twilio-ready backend (``BRIDGE_BACKEND_*`` settings)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class BackendConfig:
    #: the backend's Media Streams WebSocket (``wss://host/stream``)
    url: str
    #: sent with every handshake (an ``Authorization`` header, an API key)
    headers: Mapping[str, str] = field(default_factory=dict)
    #: connection attempts a call may make after its first one (refused or dropped), in all
    reconnects: int = 3
    #: first wait before a reconnect; doubled each time up to ``max_backoff_s``
    first_backoff_s: float = 0.25
    max_backoff_s: float = 2.0
    connect_timeout_s: float = 5.0
    #: a reply's turn ends this long after a mark with nothing after it
    mark_gap_s: float = 0.3
    #: ...or this long after its last audio, for a backend that never sends marks
    audio_gap_s: float = 1.5
    #: caller audio kept while the backend is unreachable (drop-oldest), in ms
    inbox_ms: int = 2_000
    #: largest frame accepted from the backend (a media payload is "of any size")
    max_frame_bytes: int = 4 * 1024 * 1024
