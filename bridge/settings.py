"""One settings object, read from the environment (and an optional ``.env``), validated once.

Every setting is declared once below with its variable name, default, bounds and a one-line
description; parsing, validation errors and the README table (``bridge settings --markdown``)
all come from that declaration, so the documentation cannot drift from the code.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dotenv import dotenv_values


class SettingsError(ValueError):
    """Raised with every problem found, one per line, so an operator fixes them in one go."""


def _setting(
    env: str,
    default: Any,
    doc: str,
    *,
    min_value: float | None = None,
    max_value: float | None = None,
    choices: tuple[str, ...] | None = None,
    aliases: tuple[str, ...] = (),
    secret: bool = False,
) -> Any:
    meta = {
        "env": env,
        "doc": doc,
        "min": min_value,
        "max": max_value,
        "choices": choices,
        "aliases": aliases,
        "secret": secret,
    }
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class Settings:
    host: str = _setting("BRIDGE_HOST", "0.0.0.0", "Interface the server listens on.")
    port: int = _setting("BRIDGE_PORT", 8080, "TCP port.", min_value=1, max_value=65535)
    public_host: str = _setting(
        "BRIDGE_PUBLIC_HOST",
        "",
        "Public host name Twilio reaches (e.g. `voice.example.com`); used for the `wss://` "
        "stream URL. Empty: taken from the request (forwarded headers when trusted).",
    )
    agent: str = _setting(
        "BRIDGE_AGENT",
        "local",
        "Voice agent behind every call: `local` (offline speech recognition, rule-based "
        "dialogue and neural speech; the `local` extra, else it falls back to `echo`), "
        "`openai` (speech to text, chat and text to speech), `openai-realtime` (OpenAI "
        "Realtime speech to speech) or `echo` (plays each utterance back, for line tests).",
        choices=("echo", "local", "openai", "openai-realtime"),
    )
    openai_api_key: str = _setting(
        "BRIDGE_OPENAI_API_KEY",
        "",
        "API key for the `openai` and `openai-realtime` agents.",
        aliases=("OPENAI_API_KEY",),
        secret=True,
    )
    openai_base_url: str = _setting(
        "BRIDGE_OPENAI_BASE_URL",
        "https://api.openai.com/v1",
        "Base URL of the OpenAI API, or of an OpenAI-compatible server (every stage's default).",
        aliases=("OPENAI_BASE_URL",),
    )
    openai_model: str = _setting(
        "BRIDGE_OPENAI_MODEL",
        "gpt-4o-mini",
        "Chat model of the `openai` agent.",
        aliases=("ELATO_OPENAI_MODEL",),
    )
    system_prompt: str = _setting(
        "BRIDGE_SYSTEM_PROMPT",
        "You are a friendly, concise voice assistant on a phone line or in a toy. Answer in one "
        "to three short spoken sentences, without lists, markdown or emoji. When the caller "
        "says goodbye or wants to end, say a short goodbye and call the end_call tool.",
        "System prompt of the LLM agents (the default persona).",
        aliases=("ELATO_OPENAI_SYSTEM_PROMPT",),
    )
    first_message: str = _setting(
        "BRIDGE_FIRST_MESSAGE",
        "Hello! How can I help you today?",
        "What the LLM agents say when a call connects (empty: wait for the caller).",
        aliases=("ELATO_OPENAI_FIRST_MESSAGE",),
    )
    openai_voice: str = _setting(
        "BRIDGE_OPENAI_VOICE",
        "alloy",
        "Voice of the OpenAI speech stage and of the Realtime agent (the default persona).",
    )
    openai_realtime_model: str = _setting(
        "BRIDGE_OPENAI_REALTIME_MODEL",
        "gpt-realtime",
        "Model of the `openai-realtime` agent.",
    )
    openai_realtime_url: str = _setting(
        "BRIDGE_OPENAI_REALTIME_URL",
        "",
        "Realtime WebSocket URL. Empty: derived from `BRIDGE_OPENAI_BASE_URL` "
        "(`https://host/v1` -> `wss://host/v1/realtime`).",
    )
    openai_realtime_turn_detection: str = _setting(
        "BRIDGE_OPENAI_REALTIME_TURN_DETECTION",
        "server_vad",
        "Realtime turn detection: `server_vad` (ends a turn after silence) or `semantic_vad` "
        "(waits for a finished thought: fewer cut-offs, slower replies).",
        choices=("server_vad", "semantic_vad"),
    )
    openai_realtime_silence_ms: int = _setting(
        "BRIDGE_OPENAI_REALTIME_SILENCE_MS",
        500,
        "Trailing silence that ends the caller's turn with `server_vad`.",
        min_value=200,
        max_value=3000,
    )
    openai_realtime_transcribe_model: str = _setting(
        "BRIDGE_OPENAI_REALTIME_TRANSCRIBE_MODEL",
        "gpt-4o-mini-transcribe",
        "Model that transcribes the caller for call records (empty: no user transcripts).",
    )
    openai_realtime_reconnect_s: float = _setting(
        "BRIDGE_OPENAI_REALTIME_RECONNECT_S",
        10.0,
        "How long a refused or dropped Realtime connection is retried before the call "
        "apologises and ends.",
        min_value=0,
        max_value=120,
    )
    openai_stt_model: str = _setting(
        "BRIDGE_OPENAI_STT_MODEL",
        "gpt-4o-mini-transcribe",
        "Transcription model of the `openai` agent (e.g. `whisper-1`).",
    )
    openai_stt_language: str = _setting(
        "BRIDGE_OPENAI_STT_LANGUAGE",
        "",
        "ISO-639-1 language hint for transcription (e.g. `en`). Empty: detected.",
    )
    openai_tts_model: str = _setting(
        "BRIDGE_OPENAI_TTS_MODEL",
        "gpt-4o-mini-tts",
        "Speech model of the `openai` agent (e.g. `tts-1`).",
    )
    openai_stt_base_url: str = _setting(
        "BRIDGE_OPENAI_STT_BASE_URL",
        "",
        "Base URL of the transcription stage (a Whisper server). Empty: `BRIDGE_OPENAI_BASE_URL`.",
    )
    openai_stt_api_key: str = _setting(
        "BRIDGE_OPENAI_STT_API_KEY",
        "",
        "API key of the transcription stage. Empty: `BRIDGE_OPENAI_API_KEY`.",
        secret=True,
    )
    openai_chat_base_url: str = _setting(
        "BRIDGE_OPENAI_CHAT_BASE_URL",
        "",
        "Base URL of the chat stage (e.g. Ollama's `http://localhost:11434/v1`). "
        "Empty: `BRIDGE_OPENAI_BASE_URL`.",
    )
    openai_chat_api_key: str = _setting(
        "BRIDGE_OPENAI_CHAT_API_KEY",
        "",
        "API key of the chat stage. Empty: `BRIDGE_OPENAI_API_KEY`.",
        secret=True,
    )
    openai_tts_base_url: str = _setting(
        "BRIDGE_OPENAI_TTS_BASE_URL",
        "",
        "Base URL of the speech stage. Empty: `BRIDGE_OPENAI_BASE_URL`.",
    )
    openai_tts_api_key: str = _setting(
        "BRIDGE_OPENAI_TTS_API_KEY",
        "",
        "API key of the speech stage. Empty: `BRIDGE_OPENAI_API_KEY`.",
        secret=True,
    )
    openai_turn_deadline_s: float = _setting(
        "BRIDGE_OPENAI_TURN_DEADLINE_S",
        8.0,
        "Longest silence a turn of the `openai` agent may cause while failed requests are "
        "retried; then the caller hears an apology (a toy gets RESPONSE.ERROR).",
        min_value=1,
        max_value=60,
    )
    openai_request_timeout_s: float = _setting(
        "BRIDGE_OPENAI_REQUEST_TIMEOUT_S",
        5.0,
        "Connect/read timeout of one request of the `openai` agent (a hung request is retried).",
        min_value=0.2,
        max_value=60,
    )
    farewell_message: str = _setting(
        "BRIDGE_FAREWELL_MESSAGE",
        "I have to go now. Goodbye!",
        "What the LLM agents say when the bridge ends a call (idle or too long).",
    )
    personas_file: str = _setting(
        "BRIDGE_PERSONAS_FILE",
        "",
        "TOML file of personas (system prompt, first message, voice) chosen per Twilio number "
        'or device; see README "Personas". Empty: one persona from the settings above.',
    )
    local_voice: str = _setting(
        "BRIDGE_LOCAL_VOICE",
        "piper",
        "Voice of the `local` agent: `piper` (neural; falls back to espeak-ng if it cannot "
        "load) or `espeak` (espeak-ng, robotic but tiny).",
        choices=("piper", "espeak"),
    )
    local_phrases_file: str = _setting(
        "BRIDGE_LOCAL_PHRASES_FILE",
        "",
        "TOML file overriding what the `local` agent says (`greeting`, `help`, `time`, `date`, "
        "`not_understood`, `goodbye`, `hello_again`, `repeat_what`).",
    )
    timezone: str = _setting(
        "BRIDGE_TIMEZONE", "UTC", "IANA time zone the local agent tells the time in."
    )
    log_level: str = _setting(
        "BRIDGE_LOG_LEVEL",
        "INFO",
        "Log level.",
        choices=("DEBUG", "INFO", "WARNING", "ERROR"),
    )
    log_format: str = _setting(
        "BRIDGE_LOG_FORMAT",
        "json",
        "`json` (one object per line) or `text`.",
        choices=("json", "text"),
    )
    vad_silence_ms: int = _setting(
        "BRIDGE_VAD_SILENCE_MS",
        500,
        "Trailing silence that ends a caller's turn (phone calls).",
        min_value=200,
        max_value=3000,
    )
    early_transcription_ms: int = _setting(
        "BRIDGE_EARLY_TRANSCRIPTION_MS",
        200,
        "Silence after which the `openai` agent starts transcribing a turn that has not "
        "ended yet, so the rest of the silence window hides the transcription. Speaking "
        "again voids it (one more request). 0 turns it off.",
        min_value=0,
        max_value=3000,
    )
    vad_start_ms: int = _setting(
        "BRIDGE_VAD_START_MS",
        200,
        "Continuous speech needed to open a turn (and to barge in).",
        min_value=60,
        max_value=1000,
    )
    vad_mode: int = _setting(
        "BRIDGE_VAD_MODE",
        2,
        "WebRTC VAD aggressiveness, 0 (lenient) to 3 (strict).",
        min_value=0,
        max_value=3,
    )
    max_turn_ms: int = _setting(
        "BRIDGE_MAX_TURN_MS",
        30_000,
        "Longest user turn before it is committed anyway.",
        min_value=1000,
        max_value=120_000,
    )
    call_idle_timeout_s: float = _setting(
        "BRIDGE_CALL_IDLE_TIMEOUT_S",
        300.0,
        "End a phone call politely after this long without the caller speaking (0: never).",
        min_value=0,
        max_value=86400,
    )
    max_call_s: float = _setting(
        "BRIDGE_MAX_CALL_S",
        3600.0,
        "End a phone call politely after this long (0: never).",
        min_value=0,
        max_value=86400,
    )
    twilio_chunk_ms: int = _setting(
        "BRIDGE_TWILIO_CHUNK_MS",
        40,
        "Outbound μ-law chunk per `media` message.",
        min_value=20,
        max_value=100,
    )
    twilio_lead_ms: int = _setting(
        "BRIDGE_TWILIO_LEAD_MS",
        400,
        "How far ahead of real time audio is sent to Twilio.",
        min_value=100,
        max_value=2000,
    )
    start_timeout_s: float = _setting(
        "BRIDGE_START_TIMEOUT_S",
        5.0,
        "Time a new stream has to send `start`.",
        min_value=0.5,
        max_value=60,
    )
    max_message_bytes: int = _setting(
        "BRIDGE_MAX_MESSAGE_BYTES",
        65536,
        "Largest inbound WebSocket message (larger closes 1009).",
        min_value=1024,
        max_value=1 << 20,
    )
    ws_impl: str = _setting(
        "BRIDGE_WS_IMPL",
        "batched",
        "WebSocket implementation: `batched` (uvicorn's sans-I/O one with batched flow "
        "control, see bridge/wsprotocol.py) or uvicorn's stock ones.",
        choices=("batched", "websockets-sansio"),
    )
    esp32_jwt_secret: str = _setting(
        "BRIDGE_ESP32_JWT_SECRET",
        "",
        "HS256 secret of the toys' Elato-style JWTs (at least 32 random bytes).",
        aliases=("JWT_SECRET_KEY",),
        secret=True,
    )
    esp32_jwt_audience: str = _setting(
        "BRIDGE_ESP32_JWT_AUDIENCE", "authenticated", "Required `aud` when a token has one."
    )
    esp32_devices_file: str = _setting(
        "BRIDGE_ESP32_DEVICES_FILE",
        "",
        "JSON file of per-device tokens, settings, MAC bindings and revocations "
        "(schema in bridge/device_auth.py).",
    )
    esp32_require_mac: bool = _setting(
        "BRIDGE_ESP32_REQUIRE_MAC", False, "Reject toys that send no `X-Device-Mac`."
    )
    esp32_upstream_rate_hz: int = _setting(
        "BRIDGE_ESP32_UPSTREAM_RATE_HZ",
        16000,
        "Microphone sample rate of the toys (24000 for firmware before 2025-09-20).",
        choices=("16000", "24000"),
    )
    esp32_frame_ms: int = _setting(
        "BRIDGE_ESP32_FRAME_MS",
        120,
        "Opus frame per binary message.",
        choices=("20", "40", "60", "120"),
    )
    esp32_opus_complexity: int = _setting(
        "BRIDGE_ESP32_OPUS_COMPLEXITY",
        5,
        "libopus encoder complexity: CPU per toy against quality (10 is libopus's default).",
        min_value=0,
        max_value=10,
    )
    esp32_lead_ms: int = _setting(
        "BRIDGE_ESP32_LEAD_MS",
        500,
        "How far ahead of real time audio is sent to a toy.",
        min_value=100,
        max_value=1000,
    )
    esp32_silence_ms: int = _setting(
        "BRIDGE_ESP32_SILENCE_MS",
        1000,
        "Trailing silence that ends a child's turn.",
        min_value=500,
        max_value=2000,
    )
    esp32_idle_timeout_s: float = _setting(
        "BRIDGE_ESP32_IDLE_TIMEOUT_S",
        300.0,
        "Send a toy to sleep after this long without the child speaking (0: never).",
        min_value=0,
        max_value=86400,
    )
    esp32_max_session_s: float = _setting(
        "BRIDGE_ESP32_MAX_SESSION_S",
        1800.0,
        "Send a toy to sleep after this long in one session (0: never).",
        min_value=0,
        max_value=86400,
    )
    esp32_volume: int = _setting(
        "BRIDGE_ESP32_VOLUME",
        70,
        "Default `volume_control` for toys without their own.",
        min_value=0,
        max_value=100,
    )
    esp32_pitch_factor: float = _setting(
        "BRIDGE_ESP32_PITCH_FACTOR",
        1.0,
        "Default `pitch_factor` for toys without their own.",
        min_value=0.5,
        max_value=2.0,
    )
    esp32_commit_timeout_s: float = _setting(
        "BRIDGE_ESP32_COMMIT_TIMEOUT_S",
        15.0,
        "Watchdog: AUDIO.COMMITTED (or accept, for the greeting) without a response -> "
        "RESPONSE.ERROR.",
        min_value=1,
        max_value=120,
    )
    esp32_packet_timeout_s: float = _setting(
        "BRIDGE_ESP32_PACKET_TIMEOUT_S",
        10.0,
        "Watchdog: an open response without a new packet -> RESPONSE.ERROR.",
        min_value=1,
        max_value=120,
    )
    ws_ping_interval_s: float = _setting(
        "BRIDGE_WS_PING_INTERVAL_S",
        20.0,
        "Server WebSocket ping interval (toys send none; Twilio needs none).",
        min_value=1,
        max_value=600,
    )
    ws_ping_timeout_s: float = _setting(
        "BRIDGE_WS_PING_TIMEOUT_S",
        30.0,
        "Pong deadline; must exceed the ping interval plus the toy lead (spec TE12).",
        min_value=1,
        max_value=600,
    )
    esp32_root_alias: bool = _setting(
        "BRIDGE_ESP32_ROOT_ALIAS",
        False,
        "Also serve the toy WebSocket at `/` (DEV/Deno firmware builds).",
    )
    trust_forwarded: bool = _setting(
        "BRIDGE_TRUST_FORWARDED",
        False,
        "Trust `X-Forwarded-Proto`/`X-Forwarded-Host`/`X-Forwarded-For` from the reverse proxy "
        "in front of us (the client address is the last `X-Forwarded-For` entry).",
    )
    max_calls: int = _setting(
        "BRIDGE_MAX_CALLS",
        300,
        "Most concurrent calls and toy sessions together; more get busy TwiML, 1013 or 503.",
        min_value=1,
        max_value=100_000,
    )
    max_twilio_calls: int = _setting(
        "BRIDGE_MAX_TWILIO_CALLS",
        300,
        "Most concurrent phone calls (`/twiml` answers busy, `/stream` closes 1013).",
        min_value=1,
        max_value=100_000,
    )
    max_toy_sessions: int = _setting(
        "BRIDGE_MAX_TOY_SESSIONS",
        200,
        "Most concurrent toy sessions (more are refused with HTTP 503 before the upgrade).",
        min_value=1,
        max_value=100_000,
    )
    rate_limit_per_s: float = _setting(
        "BRIDGE_RATE_LIMIT_PER_S",
        10.0,
        "New webhooks and WebSocket upgrades per second per client IP, sustained (0: off). "
        "Twilio connects from a few shared addresses: keep it generous.",
        min_value=0,
        max_value=10_000,
    )
    rate_limit_burst: int = _setting(
        "BRIDGE_RATE_LIMIT_BURST",
        50,
        "Requests a client IP may make at once before `BRIDGE_RATE_LIMIT_PER_S` applies.",
        min_value=1,
        max_value=100_000,
    )
    drain_timeout_s: float = _setting(
        "BRIDGE_DRAIN_TIMEOUT_S",
        30.0,
        "On SIGTERM, how long live calls may go on before they are ended politely.",
        min_value=0,
        max_value=86_400,
    )
    env: str = _setting(
        "BRIDGE_ENV",
        "development",
        "`production` refuses to start without Twilio and toy credentials and never admits "
        "unauthenticated toys; `development` runs without them (with loud warnings).",
        choices=("development", "production"),
    )
    twilio_auth_token: str = _setting(
        "TWILIO_AUTH_TOKEN",
        "",
        "Twilio auth token: validates `X-Twilio-Signature` on `/twiml` and `/stream`, keys the "
        "per-call stream tokens, and (with `TWILIO_ACCOUNT_SID`) authenticates REST calls. "
        "Empty: Twilio requests are NOT authenticated.",
        secret=True,
    )
    twilio_auth_token_secondary: str = _setting(
        "TWILIO_AUTH_TOKEN_SECONDARY",
        "",
        "Second auth token accepted during a token rotation (signatures and stream tokens).",
        secret=True,
    )
    twilio_stream_token_ttl_s: float = _setting(
        "BRIDGE_TWILIO_STREAM_TOKEN_TTL_S",
        120.0,
        "Lifetime of the per-call token `/twiml` gives the `<Stream>` (Twilio connects within "
        "seconds).",
        min_value=5,
        max_value=3600,
    )
    twilio_after_stream: str = _setting(
        "BRIDGE_TWILIO_AFTER_STREAM",
        "end",
        "What the TwiML does after `</Connect>`: `end` (nothing: closing the stream ends the "
        "call) or `apology` (a spoken apology, so a dropped stream is not dead air; agent "
        "hang-ups then end the call through the REST API, which needs REST credentials).",
        choices=("end", "apology"),
    )
    twilio_account_sid: str = _setting(
        "TWILIO_ACCOUNT_SID", "", "Twilio account SID (`AC…`) for REST calls."
    )
    twilio_api_key_sid: str = _setting(
        "TWILIO_API_KEY_SID",
        "",
        "Twilio API key SID (`SK…`): REST calls use it instead of the auth token.",
    )
    twilio_api_key_secret: str = _setting(
        "TWILIO_API_KEY_SECRET", "", "Secret of `TWILIO_API_KEY_SID`.", secret=True
    )
    twilio_from: str = _setting(
        "BRIDGE_TWILIO_FROM", "", "Caller ID (a Twilio number, E.164) for `bridge dial`."
    )
    twilio_api_url: str = _setting(
        "BRIDGE_TWILIO_API_URL",
        "",
        "Base URL replacing `https://api.twilio.com` (a REST proxy, or a fake in tests). "
        "Empty: Twilio's own.",
    )

    records_url: str = _setting(
        "BRIDGE_RECORDS_URL",
        "sqlite:///data/calls.db",
        "Where call records go: `sqlite:///FILE` (relative; `sqlite:////abs/path`), "
        "`postgresql://user:pass@host/db` for several instances, or `none`.",
    )
    recordings_dir: str = _setting(
        "BRIDGE_RECORDINGS_DIR",
        "",
        "Directory for one stereo WAV per call (caller left, agent right). Empty: no recordings.",
    )

    @property
    def uvicorn_ws(self) -> str:
        """The ``ws`` argument for uvicorn."""
        if self.ws_impl == "batched":
            return "bridge.server.wsprotocol:BatchedWebSocketProtocol"
        return self.ws_impl

    @classmethod
    def fields(cls) -> tuple[dataclasses.Field[Any], ...]:
        return dataclasses.fields(cls)

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, dotenv_path: str | Path | None = ".env"
    ) -> Settings:
        """Read the environment, with ``.env`` values as fallbacks; raise on any bad value."""
        env: dict[str, str] = {}
        if dotenv_path is not None and Path(dotenv_path).is_file():
            env.update({k: v for k, v in dotenv_values(dotenv_path).items() if v is not None})
        env.update(os.environ if environ is None else environ)
        values: dict[str, Any] = {}
        problems: list[str] = []
        for f in cls.fields():
            meta = f.metadata
            raw = next((env[n] for n in (meta["env"], *meta["aliases"]) if n in env), None)
            if raw is None:
                continue
            try:
                values[f.name] = _parse(f, raw.strip())
            except ValueError as exc:
                problems.append(f"{meta['env']}: {exc}")
        if problems:
            raise SettingsError("invalid settings:\n  " + "\n  ".join(problems))
        settings = cls(**values)
        settings.check()
        return settings

    @property
    def production(self) -> bool:
        return self.env == "production"

    @property
    def twilio_auth_tokens(self) -> list[str]:
        """The auth token and the secondary one (set while rotating): either may have signed."""
        return [self.twilio_auth_token, self.twilio_auth_token_secondary]

    @property
    def twilio_rest_configured(self) -> bool:
        """Credentials for the REST API: an API key pair or the auth token, with the account."""
        key_pair = bool(self.twilio_api_key_sid and self.twilio_api_key_secret)
        return bool(self.twilio_account_sid) and (key_pair or bool(self.twilio_auth_token))

    def problems(self) -> list[str]:
        """Combinations of values that cannot work, each with the fix in the message."""
        found: list[str] = []
        if self.twilio_auth_token_secondary and not self.twilio_auth_token:
            found.append("TWILIO_AUTH_TOKEN_SECONDARY is set without TWILIO_AUTH_TOKEN")
        if bool(self.twilio_api_key_sid) != bool(self.twilio_api_key_secret):
            found.append("TWILIO_API_KEY_SID and TWILIO_API_KEY_SECRET must be set together")
        if self.twilio_api_key_sid and not self.twilio_account_sid:
            found.append("TWILIO_API_KEY_SID needs TWILIO_ACCOUNT_SID (the account it belongs to)")
        if self.twilio_api_url and not self.twilio_api_url.startswith(("http://", "https://")):
            found.append("BRIDGE_TWILIO_API_URL must be an http:// or https:// URL")
        if self.twilio_after_stream != "end" and not self.twilio_rest_configured:
            found.append(
                f"BRIDGE_TWILIO_AFTER_STREAM={self.twilio_after_stream} needs REST credentials "
                "(TWILIO_ACCOUNT_SID with TWILIO_AUTH_TOKEN or an API key pair): without "
                "them an agent hang-up would run the apology instead of ending the call"
            )
        if self.production:
            if not self.twilio_auth_token:
                found.append(
                    "BRIDGE_ENV=production needs TWILIO_AUTH_TOKEN: without it anyone can "
                    "open /twiml and /stream and talk to the agent at your expense"
                )
            if not (self.esp32_jwt_secret or self.esp32_devices_file):
                found.append(
                    "BRIDGE_ENV=production needs BRIDGE_ESP32_JWT_SECRET or "
                    "BRIDGE_ESP32_DEVICES_FILE (toy credentials; a devices file with no "
                    "devices serves no toys)"
                )
        return found

    def check(self) -> None:
        """Raise :class:`SettingsError` listing every problem of :meth:`problems`."""
        found = self.problems()
        if found:
            raise SettingsError("invalid settings:\n  " + "\n  ".join(found))

    @classmethod
    def markdown_table(cls) -> str:
        rows = ["| Variable | Default | Meaning |", "|---|---|---|"]
        for f in cls.fields():
            meta = f.metadata
            names = " / ".join(f"`{n}`" for n in (meta["env"], *meta["aliases"]))
            default = "*(empty)*" if f.default in ("", None) else f"`{f.default}`"
            extra = []
            if meta["choices"]:
                extra.append("one of " + ", ".join(f"`{c}`" for c in meta["choices"]))
            if meta["min"] is not None:
                extra.append(f"{_num(meta['min'])}–{_num(meta['max'])}")
            doc = meta["doc"] + (f" ({'; '.join(extra)})" if extra else "")
            rows.append(f"| {names} | {default} | {doc} |")
        return "\n".join(rows)

    def redacted(self) -> dict[str, Any]:
        """The settings as a dict with secrets masked, for logs and diagnostics."""
        out: dict[str, Any] = {}
        for f in self.fields():
            value = getattr(self, f.name)
            out[f.name] = "***" if f.metadata["secret"] and value else value
        return out


def _num(value: float | None) -> str:
    return (
        f"{value:,.0f}".replace(",", " ")
        if value is not None and value == int(value)
        else f"{value}"
    )


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _parse(f: dataclasses.Field[Any], raw: str) -> Any:
    meta = f.metadata
    kind: Any = type(f.default)
    value: Any
    if kind is bool:
        low = raw.lower()
        if low not in _TRUE | _FALSE:
            raise ValueError(f"expected true/false, got {raw!r}")
        value = low in _TRUE
    elif kind in (int, float):
        try:
            value = kind(raw)
        except ValueError:
            raise ValueError(f"expected a number, got {raw!r}") from None
        if meta["choices"] and raw not in meta["choices"]:
            raise ValueError(f"{raw!r} is not one of {', '.join(meta['choices'])}")
        lo, hi = meta["min"], meta["max"]
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise ValueError(f"{value} is outside {_num(lo)}–{_num(hi)}")
    else:
        value = raw
        if meta["choices"] and value not in meta["choices"]:
            raise ValueError(f"{value!r} is not one of {', '.join(meta['choices'])}")
    return value
