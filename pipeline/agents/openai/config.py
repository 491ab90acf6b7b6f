"""What the OpenAI agent needs to know, as plain values (filled from settings by the bridge)."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

from pipeline.agents.retry import RetryPolicy

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


@dataclass(frozen=True, slots=True)
class OpenAIAgentConfig:
    stt: Endpoint
    chat: Endpoint
    tts: Endpoint
    stt_model: str = "gpt-4o-mini-transcribe"
    chat_model: str = "gpt-4o-mini"
    tts_model: str = "gpt-4o-mini-tts"
    #: ISO-639-1 hint for transcription; empty: the model detects the language
    stt_language: str = ""
    #: longest the caller may wait in silence while a turn's stages are retried
    turn_deadline_s: float = 8.0
    #: one attempt's connect/read timeout (never more than what is left of the deadline)
    request_timeout_s: float = 5.0
    #: spoken when the bridge ends the call (idle or too long)
    farewell: str = "I have to go now. Goodbye!"
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    def missing_keys(self) -> list[str]:
        """Stages that talk to api.openai.com without a key (a start-up error)."""
        stages = {"transcription": self.stt, "chat": self.chat, "speech": self.tts}
        return [name for name, ep in stages.items() if ep.is_openai and not ep.api_key]
