"""A call's time limits: how long it may stay idle, and how long it may last in all.

Pure arithmetic on the session's clock readings, so the one task per call that enforces the
limits only ever sleeps until the nearest deadline (no polling), and tests need no clock.
"""

from __future__ import annotations

from dataclasses import dataclass

IDLE = "idle timeout"
TOO_LONG = "maximum duration"
NEVER_S = float("inf")


@dataclass(frozen=True, slots=True)
class TimeLimits:
    #: end the call after this long without the caller speaking (0: never)
    idle_timeout_s: float = 0.0
    #: end the call after this long in total (0: never)
    max_duration_s: float = 0.0

    @property
    def enabled(self) -> bool:
        return self.idle_timeout_s > 0 or self.max_duration_s > 0

    def next_deadline(self, started_at_s: float, last_activity_s: float) -> tuple[float, str]:
        """The nearest deadline and why it ends the call (``NEVER_S`` when none is set)."""
        deadlines = [(NEVER_S, "")]
        if self.idle_timeout_s > 0:
            deadlines.append((last_activity_s + self.idle_timeout_s, IDLE))
        if self.max_duration_s > 0:
            deadlines.append((started_at_s + self.max_duration_s, TOO_LONG))
        return min(deadlines)
