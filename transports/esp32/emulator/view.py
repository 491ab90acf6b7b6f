"""What a toy saw, read from its device model: the attributes tests and tools assert on.

The model owns the record; the socket client only exposes it, read-only, under the names the
emulator has always used (``toy.state``, ``toy.responses``, ``toy.protocol_errors``...).
"""

from __future__ import annotations

import time
from typing import Any

from transports.esp32.emulator.device import ToyResponse
from transports.esp32.emulator.model import ToyModel


class ToyRecordView:
    """Read-only views of ``self.model``; times are ``time.monotonic()`` seconds."""

    model: ToyModel

    @property
    def state(self) -> str:
        return self.model.state

    @property
    def state_history(self) -> list[tuple[float, str]]:
        """(monotonic time, state) for every transition, for timing assertions."""
        return self.model.state_history

    @property
    def auth(self) -> dict[str, Any] | None:
        return self.model.auth

    @property
    def volume_control(self) -> int | None:
        return self.model.volume_control

    @property
    def pitch_factor(self) -> float | None:
        return self.model.pitch_factor

    @property
    def connected_at(self) -> float | None:
        return self.model.connected_at

    @property
    def first_message_at(self) -> float | None:
        return self.model.first_message_at

    @property
    def messages(self) -> list[tuple[float, str, object]]:
        """(monotonic time, "text", parsed JSON or raw str) / (time, "binary", length)."""
        return self.model.messages

    @property
    def responses(self) -> list[ToyResponse]:
        return self.model.responses

    @property
    def protocol_errors(self) -> list[str]:
        return self.model.protocol_errors

    @property
    def dropped_binary(self) -> int:
        return self.model.dropped_binary

    @property
    def session_ended(self) -> bool:
        return self.model.session_ended

    @property
    def hold_pending(self) -> bool:
        """True between COMPLETE/ERROR and the return to LISTENING (binary is dropped)."""
        return self.model.hold_pending

    @property
    def ring_ms(self) -> float:
        return self.model.ring_ms

    def played_ms(self) -> float:
        """Ms of the current (or last) response played so far per the play clock.

        Without realtime playback, audio counts as played once decoded.
        """
        return self.model.played_ms(time.monotonic())
