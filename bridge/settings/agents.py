"""Which agent answers, and how each one is reached."""

from __future__ import annotations

from dataclasses import dataclass

from bridge.settings.fields import setting
from bridge.settings.speech import STT_PROVIDERS, TTS_PROVIDERS


@dataclass(frozen=True)
class AgentsSettings:
    agent: str = setting(
        "BRIDGE_AGENT",
        "local",
        "Voice agent behind every call: `local` (offline speech recognition, rule-based "
        "dialogue and neural speech; the `local` extra, else it falls back to `echo`), "
        "`openai` (speech to text, chat and text to speech), `openai-realtime` (OpenAI "
        "Realtime speech to speech), `backend` (any voice agent server that speaks Twilio Media "
        "Streams, at `BRIDGE_BACKEND_URL`) or `echo` (plays each utterance back, for line "
        "tests).",
        choices=("echo", "local", "openai", "openai-realtime", "backend"),
    )
    backend_url: str = setting(
        "BRIDGE_BACKEND_URL",
        "",
        "WebSocket URL of a Twilio-ready voice agent (`wss://host/stream`) for "
        "`BRIDGE_AGENT=backend`: every call, phone or toy, reaches it as a Twilio Media Stream.",
    )
    backend_headers: str = setting(
        "BRIDGE_BACKEND_HEADERS",
        "",
        'HTTP headers sent with each backend handshake, as a JSON object (e.g. `{"Authorization": '
        '"Bearer …"}`).',
        secret=True,
    )
    backend_reconnects: int = setting(
        "BRIDGE_BACKEND_RECONNECTS",
        3,
        "Connection attempts a call may make after its first when the backend refuses (other "
        "than 401/403) or drops it; then the caller hears an apology and the call ends.",
        min_value=0,
        max_value=20,
    )
    stt: str = setting(
        "BRIDGE_STT",
        "openai",
        "Speech-to-text stage of the cascaded agent (`BRIDGE_AGENT=openai`): `openai`, "
        "`deepgram` (streaming, with its turn detection), `cloudflare` (the same models "
        "through Workers AI) or `local`; a persona may choose another (`stt`).",
        choices=STT_PROVIDERS,
    )
    tts: str = setting(
        "BRIDGE_TTS",
        "openai",
        "Text-to-speech stage of the cascaded agent: `openai`, `deepgram` (Aura), "
        "`cloudflare` (Aura through Workers AI), `elevenlabs` or `local`; a persona may "
        "choose another (`tts`).",
        choices=TTS_PROVIDERS,
    )
    openai_api_key: str = setting(
        "BRIDGE_OPENAI_API_KEY",
        "",
        "API key for the `openai` and `openai-realtime` agents.",
        aliases=("OPENAI_API_KEY",),
        secret=True,
    )
    openai_base_url: str = setting(
        "BRIDGE_OPENAI_BASE_URL",
        "https://api.openai.com/v1",
        "Base URL of the OpenAI API, or of an OpenAI-compatible server (every stage's default).",
        aliases=("OPENAI_BASE_URL",),
    )
    openai_model: str = setting(
        "BRIDGE_OPENAI_MODEL",
        "gpt-4o-mini",
        "Chat model of the `openai` agent.",
        aliases=("ELATO_OPENAI_MODEL",),
    )
    system_prompt: str = setting(
        "BRIDGE_SYSTEM_PROMPT",
        "You are a friendly, concise voice assistant on a phone line or in a toy. Answer in one "
        "to three short spoken sentences, without lists, markdown or emoji. When the caller "
        "says goodbye or wants to end, say a short goodbye and call the end_call tool.",
        "System prompt of the LLM agents (the default persona).",
        aliases=("ELATO_OPENAI_SYSTEM_PROMPT",),
    )
    first_message: str = setting(
        "BRIDGE_FIRST_MESSAGE",
        "Hello! How can I help you today?",
        "What the LLM agents say when a call connects (empty: wait for the caller).",
        aliases=("ELATO_OPENAI_FIRST_MESSAGE",),
    )
    openai_voice: str = setting(
        "BRIDGE_OPENAI_VOICE",
        "alloy",
        "Voice of the OpenAI speech stage and of the Realtime agent (the default persona).",
    )
    openai_realtime_model: str = setting(
        "BRIDGE_OPENAI_REALTIME_MODEL",
        "gpt-realtime",
        "Model of the `openai-realtime` agent.",
    )
    openai_realtime_url: str = setting(
        "BRIDGE_OPENAI_REALTIME_URL",
        "",
        "Realtime WebSocket URL. Empty: derived from `BRIDGE_OPENAI_BASE_URL` "
        "(`https://host/v1` -> `wss://host/v1/realtime`).",
    )
    openai_realtime_turn_detection: str = setting(
        "BRIDGE_OPENAI_REALTIME_TURN_DETECTION",
        "server_vad",
        "Realtime turn detection: `server_vad` (ends a turn after silence) or `semantic_vad` "
        "(waits for a finished thought: fewer cut-offs, slower replies).",
        choices=("server_vad", "semantic_vad"),
    )
    openai_realtime_silence_ms: int = setting(
        "BRIDGE_OPENAI_REALTIME_SILENCE_MS",
        500,
        "Trailing silence that ends the caller's turn with `server_vad`.",
        min_value=200,
        max_value=3000,
    )
    openai_realtime_transcribe_model: str = setting(
        "BRIDGE_OPENAI_REALTIME_TRANSCRIBE_MODEL",
        "gpt-4o-mini-transcribe",
        "Model that transcribes the caller for call records (empty: no user transcripts).",
    )
    openai_realtime_reconnect_s: float = setting(
        "BRIDGE_OPENAI_REALTIME_RECONNECT_S",
        10.0,
        "How long a refused or dropped Realtime connection is retried before the call "
        "apologises and ends.",
        min_value=0,
        max_value=120,
    )
    openai_stt_model: str = setting(
        "BRIDGE_OPENAI_STT_MODEL",
        "gpt-4o-mini-transcribe",
        "Transcription model of the `openai` agent (e.g. `whisper-1`).",
    )
    openai_stt_language: str = setting(
        "BRIDGE_OPENAI_STT_LANGUAGE",
        "",
        "ISO-639-1 language hint for transcription (e.g. `en`). Empty: detected.",
    )
    openai_tts_model: str = setting(
        "BRIDGE_OPENAI_TTS_MODEL",
        "gpt-4o-mini-tts",
        "Speech model of the `openai` agent (e.g. `tts-1`).",
    )
    openai_stt_base_url: str = setting(
        "BRIDGE_OPENAI_STT_BASE_URL",
        "",
        "Base URL of the transcription stage (a Whisper server). Empty: `BRIDGE_OPENAI_BASE_URL`.",
    )
    openai_stt_api_key: str = setting(
        "BRIDGE_OPENAI_STT_API_KEY",
        "",
        "API key of the transcription stage. Empty: `BRIDGE_OPENAI_API_KEY`.",
        secret=True,
    )
    openai_chat_base_url: str = setting(
        "BRIDGE_OPENAI_CHAT_BASE_URL",
        "",
        "Base URL of the chat stage (e.g. Ollama's `http://localhost:11434/v1`). "
        "Empty: `BRIDGE_OPENAI_BASE_URL`.",
    )
    openai_chat_api_key: str = setting(
        "BRIDGE_OPENAI_CHAT_API_KEY",
        "",
        "API key of the chat stage. Empty: `BRIDGE_OPENAI_API_KEY`.",
        secret=True,
    )
    openai_tts_base_url: str = setting(
        "BRIDGE_OPENAI_TTS_BASE_URL",
        "",
        "Base URL of the speech stage. Empty: `BRIDGE_OPENAI_BASE_URL`.",
    )
    openai_tts_api_key: str = setting(
        "BRIDGE_OPENAI_TTS_API_KEY",
        "",
        "API key of the speech stage. Empty: `BRIDGE_OPENAI_API_KEY`.",
        secret=True,
    )
    openai_turn_deadline_s: float = setting(
        "BRIDGE_OPENAI_TURN_DEADLINE_S",
        8.0,
        "Longest silence a turn of the `openai` agent may cause while failed requests are "
        "retried; then the caller hears an apology (a toy gets RESPONSE.ERROR).",
        min_value=1,
        max_value=60,
    )
    openai_request_timeout_s: float = setting(
        "BRIDGE_OPENAI_REQUEST_TIMEOUT_S",
        5.0,
        "Connect/read timeout of one request of the `openai` agent (a hung request is retried).",
        min_value=0.2,
        max_value=60,
    )
    farewell_message: str = setting(
        "BRIDGE_FAREWELL_MESSAGE",
        "I have to go now. Goodbye!",
        "What the LLM agents say when the bridge ends a call (idle or too long).",
    )
    personas_file: str = setting(
        "BRIDGE_PERSONAS_FILE",
        "",
        "TOML file of personas (system prompt, first message, voice) chosen per Twilio number "
        'or device; see README "Personas". Empty: one persona from the settings above.',
    )
    local_voice: str = setting(
        "BRIDGE_LOCAL_VOICE",
        "piper",
        "Voice of the `local` agent: `piper` (neural; falls back to espeak-ng if it cannot "
        "load) or `espeak` (espeak-ng, robotic but tiny).",
        choices=("piper", "espeak"),
    )
    local_phrases_file: str = setting(
        "BRIDGE_LOCAL_PHRASES_FILE",
        "",
        "TOML file overriding what the `local` agent says (`greeting`, `help`, `time`, `date`, "
        "`not_understood`, `goodbye`, `hello_again`, `repeat_what`).",
    )
    timezone: str = setting(
        "BRIDGE_TIMEZONE", "UTC", "IANA time zone the local agent tells the time in."
    )
