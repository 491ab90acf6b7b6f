"""Turn-taking: when a caller's turn starts and ends."""

from __future__ import annotations

from dataclasses import dataclass

from bridge.settings.fields import setting
from pipeline.interruptions import DEFAULT_BACKCHANNELS


@dataclass(frozen=True)
class TurnsSettings:
    vad_silence_ms: int = setting(
        "BRIDGE_VAD_SILENCE_MS",
        500,
        "Trailing silence that ends a caller's turn (phone calls).",
        min_value=200,
        max_value=3000,
    )
    early_transcription_ms: int = setting(
        "BRIDGE_EARLY_TRANSCRIPTION_MS",
        200,
        "Silence after which the cascaded agents start transcribing a turn that has not "
        "ended yet (the `local` agent prepares its whole answer), so the rest of the "
        "silence window hides that work. Speaking again voids it (one more request). 0 "
        "turns it off.",
        min_value=0,
        max_value=3000,
    )
    vad_start_ms: int = setting(
        "BRIDGE_VAD_START_MS",
        200,
        "Continuous speech needed to open a turn (and to barge in).",
        min_value=60,
        max_value=1000,
    )
    vad_mode: int = setting(
        "BRIDGE_VAD_MODE",
        2,
        "WebRTC VAD aggressiveness, 0 (lenient) to 3 (strict).",
        min_value=0,
        max_value=3,
    )
    max_turn_ms: int = setting(
        "BRIDGE_MAX_TURN_MS",
        30_000,
        "Longest user turn before it is committed anyway.",
        min_value=1000,
        max_value=120_000,
    )
    judge_interruptions: bool = setting(
        "BRIDGE_JUDGE_INTERRUPTIONS",
        True,
        "A sound over a reply stops it at once, then is judged: speech that goes on, or "
        'words that are not a backchannel, cut the reply; noise, a cough or an "uh-huh" '
        "let it go on from where the caller stopped hearing it. Off: every sound that "
        "opens a turn cuts the reply.",
    )
    interruption_window_ms: int = setting(
        "BRIDGE_INTERRUPTION_WINDOW_MS",
        700,
        "A sound over a reply still going on this long after it began is a real interruption.",
        min_value=300,
        max_value=3000,
    )
    interruption_end_ms: int = setting(
        "BRIDGE_INTERRUPTION_END_MS",
        300,
        "Quiet that ends a sound over a reply (then judged by its voice and words); longer "
        "than the pauses inside a sentence.",
        min_value=100,
        max_value=1000,
    )
    backchannels: str = setting(
        "BRIDGE_BACKCHANNELS",
        ", ".join(DEFAULT_BACKCHANNELS),
        "What callers say over a reply that is not an interruption, comma-separated (a "
        "persona's `backchannels` list replaces it).",
    )
    keypad_gap_ms: int = setting(
        "BRIDGE_KEYPAD_GAP_MS",
        1000,
        "A keypad entry ends this long after its last key, or at `#`; the LLM agents then "
        'answer it as the caller\'s turn ("[keypad: 1]"), cutting off a reply.',
        min_value=200,
        max_value=10_000,
    )
