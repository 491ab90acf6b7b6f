"""What the talk page shows besides the audio: each turn's words and its latency.

The session tells its observers; this one passes what it hears on to the call's page, when
the call is a talk page's (other transports have nowhere to show it).
"""

from __future__ import annotations

from pipeline.observers import ObservedCall, SessionObserver
from transports.browser.port import BrowserPort
from transports.browser.protocol import BrowserProtocol

#: roles a page shows (keys pressed have no page to come from)
SHOWN_ROLES = frozenset({"user", "assistant"})


class PageFeed(SessionObserver):
    def on_transcript(self, session: ObservedCall, turn_id: int, role: str, text: str) -> None:
        port = session.port
        if isinstance(port, BrowserPort) and role in SHOWN_ROLES:
            port.post(BrowserProtocol.transcript(turn_id, role, text))

    def on_turn_latency(self, session: ObservedCall, turn_id: int, latency_ms: float) -> None:
        port = session.port
        if isinstance(port, BrowserPort):
            port.post(BrowserProtocol.latency(turn_id, latency_ms))
