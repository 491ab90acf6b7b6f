"""Where the toy's speaker is, estimated from what we sent and when (pure: times are arguments).

The device has no jitter buffer and reads its socket only as fast as it plays (TCP
back-pressure), so audio sent a bounded lead ahead of real time is played at
``max(previous end, send time) + frame``. That estimate is all the server knows of the
device's playback: it spaces the next ``RESPONSE.CREATED`` after the unplayed rest, gives the
heard position on ``INTERRUPT``, and times ``SESSION.END``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(slots=True)
class PlaybackClock:
    #: when the last frame sent ends playing
    play_end_s: float = 0.0
    #: when the open response began playing
    response_started_s: float = 0.0
    #: audio sent in the open response
    response_sent_ms: float = 0.0

    def start_response(self, now_s: float) -> None:
        """A response opens; it starts playing when what is still queued has played."""
        self.response_started_s = max(now_s, self.play_end_s)
        self.response_sent_ms = 0.0

    def sent(self, now_s: float, frame_ms: float) -> None:
        """A frame of ``frame_ms`` left at ``now_s``: it plays after everything before it."""
        self.play_end_s = max(self.play_end_s, now_s) + frame_ms / 1000
        self.response_sent_ms += frame_ms

    def unplayed_ms(self, now_s: float) -> float:
        return max(0.0, (self.play_end_s - now_s) * 1000)

    def is_playing(self, now_s: float) -> bool:
        return self.play_end_s > now_s

    def played_ms(self, now_s: float) -> float:
        """How much of the open response has played by ``now_s``."""
        elapsed_ms = (now_s - self.response_started_s) * 1000
        return max(0.0, min(self.response_sent_ms, elapsed_ms))


class ClockedPlayback:
    """A port's answers about playback when the bridge clocks a device's speaker itself (a
    toy, a xiaozhi device: neither confirms what it played): mixed into their ports."""

    _playback: PlaybackClock
    clock: Callable[[], float]

    def is_playing(self) -> bool:
        return self._playback.is_playing(self.clock())

    def unacked_ms(self) -> float:
        return self._playback.unplayed_ms(self.clock())

    async def drain(self, timeout_s: float) -> None:
        await asyncio.sleep(min(timeout_s, self.unacked_ms() / 1000))
