"""Turn-taking: when a caller's turn starts and ends."""

from __future__ import annotations

from dataclasses import dataclass

from bridge.settings.fields import setting


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
