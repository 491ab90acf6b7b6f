"""ESP32 toys (the Elato protocol): credentials, audio and watchdogs."""

from __future__ import annotations

from dataclasses import dataclass

from bridge.settings.fields import setting


@dataclass(frozen=True)
class ToysSettings:
    esp32_jwt_secret: str = setting(
        "BRIDGE_ESP32_JWT_SECRET",
        "",
        "HS256 secret of the toys' Elato-style JWTs (at least 32 random bytes).",
        aliases=("JWT_SECRET_KEY",),
        secret=True,
    )
    esp32_jwt_audience: str = setting(
        "BRIDGE_ESP32_JWT_AUDIENCE", "authenticated", "Required `aud` when a token has one."
    )
    esp32_devices_file: str = setting(
        "BRIDGE_ESP32_DEVICES_FILE",
        "",
        "JSON file of per-device tokens, settings, MAC bindings and revocations "
        "(schema in bridge/toys/credentials/devices_file.py).",
    )
    esp32_require_mac: bool = setting(
        "BRIDGE_ESP32_REQUIRE_MAC", False, "Reject toys that send no `X-Device-Mac`."
    )
    esp32_upstream_rate_hz: int = setting(
        "BRIDGE_ESP32_UPSTREAM_RATE_HZ",
        16000,
        "Microphone sample rate of the toys (24000 for firmware before 2025-09-20).",
        choices=("16000", "24000"),
    )
    esp32_frame_ms: int = setting(
        "BRIDGE_ESP32_FRAME_MS",
        120,
        "Opus frame per binary message.",
        choices=("20", "40", "60", "120"),
    )
    esp32_opus_complexity: int = setting(
        "BRIDGE_ESP32_OPUS_COMPLEXITY",
        5,
        "libopus encoder complexity: CPU per toy against quality (10 is libopus's default).",
        min_value=0,
        max_value=10,
    )
    esp32_lead_ms: int = setting(
        "BRIDGE_ESP32_LEAD_MS",
        500,
        "How far ahead of real time audio is sent to a toy.",
        min_value=100,
        max_value=1000,
    )
    esp32_silence_ms: int = setting(
        "BRIDGE_ESP32_SILENCE_MS",
        1000,
        "Trailing silence that ends a child's turn.",
        min_value=500,
        max_value=2000,
    )
    esp32_idle_timeout_s: float = setting(
        "BRIDGE_ESP32_IDLE_TIMEOUT_S",
        300.0,
        "Send a toy to sleep after this long without the child speaking (0: never).",
        min_value=0,
        max_value=86400,
    )
    esp32_max_session_s: float = setting(
        "BRIDGE_ESP32_MAX_SESSION_S",
        1800.0,
        "Send a toy to sleep after this long in one session (0: never).",
        min_value=0,
        max_value=86400,
    )
    esp32_volume: int = setting(
        "BRIDGE_ESP32_VOLUME",
        70,
        "Default `volume_control` for toys without their own.",
        min_value=0,
        max_value=100,
    )
    esp32_pitch_factor: float = setting(
        "BRIDGE_ESP32_PITCH_FACTOR",
        1.0,
        "Default `pitch_factor` for toys without their own.",
        min_value=0.5,
        max_value=2.0,
    )
    esp32_commit_timeout_s: float = setting(
        "BRIDGE_ESP32_COMMIT_TIMEOUT_S",
        15.0,
        "Watchdog: AUDIO.COMMITTED (or accept, for the greeting) without a response -> "
        "RESPONSE.ERROR.",
        min_value=1,
        max_value=120,
    )
    esp32_packet_timeout_s: float = setting(
        "BRIDGE_ESP32_PACKET_TIMEOUT_S",
        10.0,
        "Watchdog: an open response without a new packet -> RESPONSE.ERROR.",
        min_value=1,
        max_value=120,
    )
    esp32_root_alias: bool = setting(
        "BRIDGE_ESP32_ROOT_ALIAS",
        False,
        "Also serve the toy WebSocket at `/` (DEV/Deno firmware builds).",
    )
    xiaozhi_lead_ms: int = setting(
        "BRIDGE_XIAOZHI_LEAD_MS",
        400,
        "How far ahead of real time audio is sent to a xiaozhi device (it holds ~2.4 s).",
        min_value=100,
        max_value=2000,
    )
    xiaozhi_idle_timeout_s: float = setting(
        "BRIDGE_XIAOZHI_IDLE_TIMEOUT_S",
        110.0,
        "End a xiaozhi session after this long without the user speaking (0: never); the "
        "device itself gives up after 120 s without a message.",
        min_value=0,
        max_value=86400,
    )
