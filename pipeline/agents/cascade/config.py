"""What a cascade needs beyond its stages, as plain values (filled from settings by the bridge)."""

from __future__ import annotations

from dataclasses import dataclass, field

from pipeline.agents.retry import RetryPolicy


@dataclass(frozen=True, slots=True)
class CascadeConfig:
    #: longest the caller may wait in silence while a turn's stages are retried
    turn_deadline_s: float = 8.0
    #: one attempt's connect/read timeout (never more than what is left of the deadline)
    request_timeout_s: float = 5.0
    #: spoken when the bridge ends the call (idle or too long)
    farewell: str = "I have to go now. Goodbye!"
    retry: RetryPolicy = field(default_factory=RetryPolicy)
