"""How many ``Flush`` messages an Aura socket may still send, and which ones are worth it.

Deepgram processes at most 20 ``Flush`` per 60 s on one socket; past that a flush is refused
with an ``EXCESSIVE_FLUSH`` warning and its text stays unspoken
(https://developers.deepgram.com/docs/tts-ws-flush). A reply needs one flush, at its end; a
second one, right after its first sentence, lets the caller hear that sentence while the
model is still writing the rest, which is what makes the reply feel quick. So:

* the reply's last flush is always sent (a turn starts on a socket only when it has room for
  one more, see :meth:`FlushBudget.has_room`; otherwise a fresh socket, with a fresh budget,
  is opened);
* the early flush is sent only while the socket has used fewer than ``early_below`` flushes
  in the window (half the limit by default), and only when one is still left after it for
  the reply's end. A burst of short turns therefore loses the early flushes first, never
  the ends of replies.

The window is counted from when each flush was *sent*, and kept a little longer than the
server's (:data:`WINDOW_MARGIN_S`): the server counts from when it *arrived*, later, so
ours is the stricter count and a flush we think allowed is allowed.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

#: Deepgram's limit: flushes per window, and the window
FLUSH_LIMIT = 20
FLUSH_WINDOW_S = 60.0
#: early flushes stop once this many flushes were sent in the window
EARLY_FLUSH_BELOW = 10
#: how much longer than the server we remember a flush (network latency, clock drift)
WINDOW_MARGIN_S = 1.0


class FlushBudget:
    """The sliding window of one socket's flushes."""

    def __init__(
        self,
        limit: int = FLUSH_LIMIT,
        window_s: float = FLUSH_WINDOW_S,
        early_below: int = EARLY_FLUSH_BELOW,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.window_s = window_s
        self.early_below = early_below
        self._clock = clock
        self._sent_at_s: deque[float] = deque()

    def used(self) -> int:
        """Flushes sent within the window."""
        horizon_s = self._clock() - self.window_s - WINDOW_MARGIN_S
        while self._sent_at_s and self._sent_at_s[0] <= horizon_s:
            self._sent_at_s.popleft()
        return len(self._sent_at_s)

    def spend(self) -> None:
        self._sent_at_s.append(self._clock())

    def has_room(self) -> bool:
        """Whether a reply's closing flush may still be sent."""
        return self.used() < self.limit

    def allows_early(self) -> bool:
        """Whether an early flush may be sent and still leave one for the reply's end."""
        used = self.used()
        return used < self.early_below and used + 2 <= self.limit
