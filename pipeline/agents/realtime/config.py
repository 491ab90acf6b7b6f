"""What one Realtime connection needs to know, and where the endpoint lives."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit, urlunsplit


@dataclass(frozen=True, slots=True)
class RealtimeConfig:
    #: ``wss://…/v1/realtime`` (the model is added as a query parameter)
    url: str
    api_key: str
    model: str = "gpt-realtime"
    #: ``server_vad`` (silence-based, predictable) or ``semantic_vad`` (waits for a finished
    #: thought; fewer cut-offs, more latency)
    turn_detection: str = "server_vad"
    #: trailing silence that ends the caller's turn (server VAD only)
    silence_ms: int = 500
    #: model that transcribes the caller for call records; empty: no user transcripts
    transcribe_model: str = "gpt-4o-mini-transcribe"
    #: how long a dropped or refused connection is retried before the call gives up
    reconnect_deadline_s: float = 10.0
    #: one handshake attempt (TCP + TLS + HTTP upgrade)
    connect_timeout_s: float = 5.0
    #: caller audio held while the upstream is slow or reconnecting (oldest dropped beyond)
    inbox_ms: int = 2_000
    #: conversation turns kept as text to replay after a reconnect
    history_items: int = 40

    def endpoint(self) -> str:
        """The handshake URL: ``url`` with ``model=`` added to its query."""
        parts = urlsplit(self.url)
        query = "&".join(q for q in (parts.query, urlencode({"model": self.model})) if q)
        return urlunsplit(parts._replace(query=query))


def realtime_url(base_url: str) -> str:
    """``https://api.openai.com/v1`` -> ``wss://api.openai.com/v1/realtime`` (http -> ws)."""
    parts = urlsplit(base_url.rstrip("/"))
    scheme = {"https": "wss", "http": "ws"}.get(parts.scheme, parts.scheme)
    return urlunsplit(parts._replace(scheme=scheme, path=parts.path + "/realtime"))
