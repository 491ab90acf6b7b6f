"""Where an OpenAI-compatible stage lives, as plain values (filled from settings by the bridge)."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

OPENAI_HOST = "api.openai.com"
#: sent when a custom server needs no key (the client library refuses an empty one)
NO_KEY = "no-key"


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One OpenAI-compatible server: where it is and the key it wants."""

    base_url: str
    api_key: str = ""

    @property
    def is_openai(self) -> bool:
        host = urlsplit(self.base_url).hostname or ""
        return host == OPENAI_HOST or host.endswith(".openai.com")

    @property
    def client_key(self) -> str:
        return self.api_key or NO_KEY

    @property
    def lacks_key(self) -> bool:
        """On api.openai.com without a key: every request would fail (a start-up error)."""
        return self.is_openai and not self.api_key
