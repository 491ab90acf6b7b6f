"""How a call behaves: its endpointing, playout and limits, and the waits of its ending."""

from __future__ import annotations

from dataclasses import dataclass, field

from pipeline.endpointing import EndpointerConfig
from pipeline.interruptions import InterruptionConfig
from pipeline.playout import PlayoutConfig

#: extra time granted to the far end to confirm the goodbye, on top of what is unplayed
DRAIN_GRACE_S = 2.0
#: how long a goodbye may take to be generated and queued before we close anyway
HANGUP_PLAYOUT_TIMEOUT_S = 30.0
#: how often a call that must end looks again whether its reply has finished playing
REPLY_POLL_S = 0.25
#: how often the place a backend's mark names is checked against what has been heard
MARK_POLL_S = 0.02


@dataclass(frozen=True, slots=True)
class SessionConfig:
    endpointer: EndpointerConfig = field(default_factory=EndpointerConfig)
    playout: PlayoutConfig = field(default_factory=PlayoutConfig)
    #: how a sound over a reply is judged (an interruption, or an "uh-huh")
    interruptions: InterruptionConfig = field(default_factory=InterruptionConfig)
    #: end the call politely after this long without user speech (0: never)
    idle_timeout_s: float = 0.0
    #: end the call politely after this long in total (0: never)
    max_duration_s: float = 0.0
    #: a failed agent turn plays the packaged apology (phones); else the transport's error
    #: signal alone reports it (a toy shows RESPONSE.ERROR)
    spoken_apology: bool = True
    #: a keypad entry ends this long after its last key (or at ``#``)
    keypad_gap_s: float = 1.0
