"""The toy's speaker as arithmetic: how much of a response has played at a given time.

The firmware decodes each packet into a small ring that I2S drains at the decode rate, with no
jitter buffer: audio plays back to back, and a packet that arrives after the ring ran dry
starts playing when it arrives. The ring's size bounds how far reading may run ahead of
playback, which is what paces the server through TCP back-pressure.
"""

from __future__ import annotations

from transports.esp32.emulator.device import MS_PER_S


class PlayClock:
    """Play position of the current response, from ``now_s`` arguments (no clock reads).

    With ``realtime=False`` audio counts as played the moment it is decoded and the ring
    never fills, for tests that do not want to wait.
    """

    def __init__(self, *, realtime: bool, ring_s: float) -> None:
        self.realtime = realtime
        self.ring_s = ring_s
        #: when everything decoded so far will have played
        self._end_s = 0.0
        #: audio of the current response handed to the speaker (cut audio is taken back)
        self._queued_ms = 0.0

    def new_response(self) -> None:
        """``played_ms`` counts from the start of each response."""
        self._queued_ms = 0.0

    def queue(self, duration_s: float, now_s: float) -> None:
        """Decoded audio joins the ring; after an underrun it starts now."""
        self._queued_ms += duration_s * MS_PER_S
        if self.realtime:
            self._end_s = max(self._end_s, now_s) + duration_s

    def cut(self, now_s: float) -> None:
        """The speaker flush on LISTENING/SLEEP/disconnect discards what has not played."""
        self._queued_ms -= self.unplayed_s(now_s) * MS_PER_S
        self._end_s = min(self._end_s, now_s)

    def unplayed_s(self, now_s: float) -> float:
        return max(0.0, self._end_s - now_s)

    def played_ms(self, now_s: float) -> float:
        """Ms of the current (or last) response played by ``now_s``."""
        return max(0.0, self._queued_ms - self.unplayed_s(now_s) * MS_PER_S)

    def ring_free_at_s(self) -> float | None:
        """When the ring has room again (the device reads the socket only then); None: now."""
        if not self.realtime:
            return None
        return self._end_s - self.ring_s
