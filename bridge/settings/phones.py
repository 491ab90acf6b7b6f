"""Phone calls through Twilio: the stream, its security and the REST API."""

from __future__ import annotations

from dataclasses import dataclass

from bridge.settings.fields import setting


@dataclass(frozen=True)
class PhonesSettings:
    call_idle_timeout_s: float = setting(
        "BRIDGE_CALL_IDLE_TIMEOUT_S",
        300.0,
        "End a phone call politely after this long without the caller speaking (0: never).",
        min_value=0,
        max_value=86400,
    )
    max_call_s: float = setting(
        "BRIDGE_MAX_CALL_S",
        3600.0,
        "End a phone call politely after this long (0: never).",
        min_value=0,
        max_value=86400,
    )
    start_timeout_s: float = setting(
        "BRIDGE_START_TIMEOUT_S",
        5.0,
        "Time a new stream has to send `start`.",
        min_value=0.5,
        max_value=60,
    )
    twilio_chunk_ms: int = setting(
        "BRIDGE_TWILIO_CHUNK_MS",
        40,
        "Outbound μ-law chunk per `media` message.",
        min_value=20,
        max_value=100,
    )
    twilio_lead_ms: int = setting(
        "BRIDGE_TWILIO_LEAD_MS",
        400,
        "How far ahead of real time audio is sent to Twilio.",
        min_value=100,
        max_value=2000,
    )
    twilio_auth_token: str = setting(
        "TWILIO_AUTH_TOKEN",
        "",
        "Twilio auth token: validates `X-Twilio-Signature` on `/twiml` and `/stream`, keys the "
        "per-call stream tokens, and (with `TWILIO_ACCOUNT_SID`) authenticates REST calls. "
        "Empty: Twilio requests are NOT authenticated.",
        secret=True,
    )
    twilio_auth_token_secondary: str = setting(
        "TWILIO_AUTH_TOKEN_SECONDARY",
        "",
        "Second auth token accepted during a token rotation (signatures and stream tokens).",
        secret=True,
    )
    twilio_stream_token_ttl_s: float = setting(
        "BRIDGE_TWILIO_STREAM_TOKEN_TTL_S",
        120.0,
        "Lifetime of the per-call token `/twiml` gives the `<Stream>` (Twilio connects within "
        "seconds).",
        min_value=5,
        max_value=3600,
    )
    twilio_after_stream: str = setting(
        "BRIDGE_TWILIO_AFTER_STREAM",
        "end",
        "What the TwiML does after `</Connect>`: `end` (nothing: closing the stream ends the "
        "call) or `apology` (a spoken apology, so a dropped stream is not dead air; agent "
        "hang-ups then end the call through the REST API, which needs REST credentials).",
        choices=("end", "apology"),
    )
    twilio_account_sid: str = setting(
        "TWILIO_ACCOUNT_SID", "", "Twilio account SID (`AC…`) for REST calls."
    )
    twilio_api_key_sid: str = setting(
        "TWILIO_API_KEY_SID",
        "",
        "Twilio API key SID (`SK…`): REST calls use it instead of the auth token.",
    )
    twilio_api_key_secret: str = setting(
        "TWILIO_API_KEY_SECRET", "", "Secret of `TWILIO_API_KEY_SID`.", secret=True
    )
    twilio_from: str = setting(
        "BRIDGE_TWILIO_FROM", "", "Caller ID (a Twilio number, E.164) for `bridge dial`."
    )
    twilio_api_url: str = setting(
        "BRIDGE_TWILIO_API_URL",
        "",
        "Base URL replacing `https://api.twilio.com` (a REST proxy, or a fake in tests). "
        "Empty: Twilio's own.",
    )
