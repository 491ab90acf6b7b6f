"""Settings -> the options objects of every part: the one place that copies fields across.

Each part (a transport, the pipeline, an agent, admission, the toy gate) takes an options
object of its own and knows nothing of :class:`~bridge.settings.Settings`; this module is the
only code that reads a setting and hands it on, so a new setting is wired in one place.
"""

from __future__ import annotations

from bridge.ops.admission import Admission, ClientAddress, TokenBuckets
from bridge.settings import Settings
from bridge.toys.credentials import DeviceAuthenticator, DeviceSettings
from bridge.toys.failure_limits import Backoff, FailureLimiter
from bridge.toys.gate import DeviceGate
from bridge.twilio.rest import TwilioRest
from bridge.twilio.transfer import transferrer
from pipeline.agents.cascade.config import CascadeConfig
from pipeline.agents.persona import Persona, PersonaBook
from pipeline.agents.providers.openai.chat import ChatOptions
from pipeline.agents.providers.openai.config import Endpoint
from pipeline.agents.providers.openai.stt import TranscriptionOptions
from pipeline.agents.providers.openai.tts import SpeechOptions
from pipeline.agents.realtime.config import RealtimeConfig, realtime_url
from pipeline.endpointing import EndpointerConfig
from pipeline.interruptions import InterruptionConfig
from pipeline.session_config import SessionConfig
from transports.esp32.port import Esp32Options
from transports.twilio.binding import StreamTokens
from transports.twilio.port import CallCompleter, TwilioOptions


def session_configs(settings: Settings) -> dict[str, SessionConfig]:
    """Per transport: phones and toys differ in their silence window, limits and apology."""

    def endpointer(silence_ms: int) -> EndpointerConfig:
        return EndpointerConfig(
            silence_ms=silence_ms,
            speech_start_ms=settings.vad_start_ms,
            vad_mode=settings.vad_mode,
            max_turn_ms=settings.max_turn_ms,
            tentative_ms=settings.early_transcription_ms,
        )

    interruptions = InterruptionConfig(
        judge=settings.judge_interruptions,
        window_ms=settings.interruption_window_ms,
        end_silence_ms=settings.interruption_end_ms,
        backchannels=tuple(p.strip() for p in settings.backchannels.split(",") if p.strip()),
    )
    return {
        "twilio": SessionConfig(
            endpointer=endpointer(settings.vad_silence_ms),
            interruptions=interruptions,
            idle_timeout_s=settings.call_idle_timeout_s,
            max_duration_s=settings.max_call_s,
            keypad_gap_s=settings.keypad_gap_ms / 1000,
        ),
        "esp32": SessionConfig(
            endpointer=endpointer(settings.esp32_silence_ms),
            interruptions=interruptions,
            idle_timeout_s=settings.esp32_idle_timeout_s,
            max_duration_s=settings.esp32_max_session_s,
            spoken_apology=False,
        ),
        # a xiaozhi device is a toy: its silence window and session limit, no apology
        "xiaozhi": SessionConfig(
            endpointer=endpointer(settings.esp32_silence_ms),
            interruptions=interruptions,
            idle_timeout_s=settings.xiaozhi_idle_timeout_s,
            max_duration_s=settings.esp32_max_session_s,
            spoken_apology=False,
        ),
        # a talk page is a phone call in a browser: the same turns, limits and apology
        "browser": SessionConfig(
            endpointer=endpointer(settings.vad_silence_ms),
            interruptions=interruptions,
            idle_timeout_s=settings.call_idle_timeout_s,
            max_duration_s=settings.max_call_s,
        ),
    }


def twilio_options(settings: Settings) -> TwilioOptions:
    complete_call: CallCompleter | None = None
    if settings.twilio_after_stream != "end":
        complete_call = TwilioRest.from_settings(settings).complete_call
    tokens = None
    if settings.twilio_auth_token:
        tokens = StreamTokens.from_auth_tokens(
            settings.twilio_auth_tokens, settings.twilio_stream_token_ttl_s
        )
    return TwilioOptions(
        chunk_ms=settings.twilio_chunk_ms,
        lead_ms=settings.twilio_lead_ms,
        start_timeout_s=settings.start_timeout_s,
        stream_tokens=tokens,
        complete_call=complete_call,
        transfer_call=transferrer(settings),
    )


def esp32_options(settings: Settings) -> Esp32Options:
    return Esp32Options(
        frame_ms=settings.esp32_frame_ms,
        lead_ms=settings.esp32_lead_ms,
        upstream_rate_hz=settings.esp32_upstream_rate_hz,
        greeting_timeout_s=settings.esp32_commit_timeout_s,
        commit_timeout_s=settings.esp32_commit_timeout_s,
        packet_timeout_s=settings.esp32_packet_timeout_s,
        opus_complexity=settings.esp32_opus_complexity,
    )


def admission(settings: Settings) -> Admission:
    return Admission(
        limits={"twilio": settings.max_twilio_calls, "esp32": settings.max_toy_sessions},
        max_total=settings.max_calls,
        rate=TokenBuckets(settings.rate_limit_per_s, settings.rate_limit_burst),
        client_address=ClientAddress(settings.trust_forwarded),
    )


def device_gate(settings: Settings) -> DeviceGate:
    authenticator = DeviceAuthenticator(
        jwt_secret=settings.esp32_jwt_secret or None,
        audience=settings.esp32_jwt_audience or None,
        devices_file=settings.esp32_devices_file or None,
        allow_insecure_dev=not settings.production,
        require_mac=settings.esp32_require_mac,
        default_settings=DeviceSettings(settings.esp32_volume, settings.esp32_pitch_factor),
    )
    return DeviceGate(authenticator, FailureLimiter(), Backoff())


def persona_book(settings: Settings) -> PersonaBook:
    """The personas file over the default persona from settings; raises PersonaError early."""
    # BRIDGE_OPENAI_VOICE names an OpenAI voice: Aura and ElevenLabs keep their own default
    # (BRIDGE_DEEPGRAM_TTS_VOICE, BRIDGE_ELEVENLABS_VOICE_ID) unless a persona names one
    openai_voices = settings.agent == "openai-realtime" or settings.tts == "openai"
    default = Persona(
        system_prompt=settings.system_prompt,
        first_message=settings.first_message,
        voice=settings.openai_voice if openai_voices else "",
    )
    return PersonaBook.load(settings.personas_file or None, default)


def cascade_config(settings: Settings) -> CascadeConfig:
    return CascadeConfig(
        turn_deadline_s=settings.openai_turn_deadline_s,
        request_timeout_s=settings.openai_request_timeout_s,
        farewell=settings.farewell_message,
    )


def openai_endpoints(settings: Settings) -> dict[str, Endpoint]:
    """Each OpenAI stage's server and key, falling back to the shared ones."""

    def endpoint(base_url: str, api_key: str) -> Endpoint:
        return Endpoint(
            base_url=base_url or settings.openai_base_url,
            api_key=api_key or settings.openai_api_key,
        )

    return {
        "transcription": endpoint(settings.openai_stt_base_url, settings.openai_stt_api_key),
        "chat": endpoint(settings.openai_chat_base_url, settings.openai_chat_api_key),
        "speech": endpoint(settings.openai_tts_base_url, settings.openai_tts_api_key),
    }


def openai_transcription(settings: Settings, endpoint: Endpoint) -> TranscriptionOptions:
    return TranscriptionOptions(
        endpoint, model=settings.openai_stt_model, language=settings.openai_stt_language
    )


def openai_chat(settings: Settings, endpoint: Endpoint) -> ChatOptions:
    return ChatOptions(endpoint, model=settings.openai_model)


def openai_speech(settings: Settings, endpoint: Endpoint) -> SpeechOptions:
    return SpeechOptions(endpoint, model=settings.openai_tts_model, voice=settings.openai_voice)


def realtime_config(settings: Settings) -> RealtimeConfig:
    return RealtimeConfig(
        url=settings.openai_realtime_url or realtime_url(settings.openai_base_url),
        api_key=settings.openai_api_key,
        model=settings.openai_realtime_model,
        turn_detection=settings.openai_realtime_turn_detection,
        silence_ms=settings.openai_realtime_silence_ms,
        transcribe_model=settings.openai_realtime_transcribe_model,
        reconnect_deadline_s=settings.openai_realtime_reconnect_s,
    )


def security_warnings(settings: Settings, devices: DeviceGate) -> list[str]:
    """What an operator must know before exposing this configuration to the internet."""
    found = []
    if not settings.twilio_auth_token:
        found.append(
            "TWILIO_AUTH_TOKEN is not set: Twilio requests (/twiml, /stream) are NOT "
            "authenticated; anyone can reach the agent"
        )
    if devices.authenticator.insecure_dev:
        found.append(
            "no toy credentials: toys are accepted WITHOUT authentication from private "
            "and loopback addresses"
        )
    return found
