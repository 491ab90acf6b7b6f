"""The cascade's speech providers beyond OpenAI: Deepgram, Cloudflare Workers AI, ElevenLabs,
and each stage's backup."""

from __future__ import annotations

from dataclasses import dataclass

from bridge.settings.fields import setting

STT_PROVIDERS = ("openai", "deepgram", "cloudflare", "local")
TTS_PROVIDERS = ("openai", "deepgram", "cloudflare", "elevenlabs", "local")


@dataclass(frozen=True)
class SpeechSettings:
    stt_fallback: str = setting(
        "BRIDGE_STT_FALLBACK",
        "",
        "Backup speech-to-text provider (same names as `BRIDGE_STT`, with its own settings): "
        "a call whose recogniser fails after its retries switches to it. Empty: none.",
        choices=("", *STT_PROVIDERS),
    )
    tts_fallback: str = setting(
        "BRIDGE_TTS_FALLBACK",
        "",
        "Backup text-to-speech provider (same names as `BRIDGE_TTS`): a call whose speech "
        "fails after its retries switches to it. Empty: none.",
        choices=("", *TTS_PROVIDERS),
    )
    chat_fallback_base_url: str = setting(
        "BRIDGE_CHAT_FALLBACK_BASE_URL",
        "",
        "Backup OpenAI-compatible chat server (e.g. Workers AI's `…/ai/v1`, or Ollama's): a "
        "call whose chat server fails after its retries switches to it. Empty: none.",
    )
    chat_fallback_api_key: str = setting(
        "BRIDGE_CHAT_FALLBACK_API_KEY",
        "",
        "API key of the backup chat server.",
        secret=True,
    )
    chat_fallback_model: str = setting(
        "BRIDGE_CHAT_FALLBACK_MODEL",
        "",
        "Chat model on the backup chat server. Empty: `BRIDGE_OPENAI_MODEL`.",
    )
    deepgram_api_key: str = setting(
        "BRIDGE_DEEPGRAM_API_KEY",
        "",
        "Deepgram API key (`deepgram` speech-to-text and text-to-speech).",
        aliases=("DEEPGRAM_API_KEY",),
        secret=True,
    )
    deepgram_url: str = setting(
        "BRIDGE_DEEPGRAM_URL",
        "wss://api.deepgram.com",
        "Scheme, host and port Deepgram is reached at (a proxy, a test server); the paths "
        "and queries stay Deepgram's.",
    )
    deepgram_stt_model: str = setting(
        "BRIDGE_DEEPGRAM_STT_MODEL",
        "nova-3",
        "Recogniser of the `deepgram` and `cloudflare` speech-to-text: `nova-3` (μ-law passes "
        "through on phones; ends turns on `speech_final`/`UtteranceEnd`) or `flux` (its own "
        "turn detection, with eager end of turn).",
        choices=("nova-3", "flux"),
    )
    deepgram_stt_language: str = setting(
        "BRIDGE_DEEPGRAM_STT_LANGUAGE",
        "en",
        "Language of Nova-3 recognition (Flux is English only).",
    )
    deepgram_tts_voice: str = setting(
        "BRIDGE_DEEPGRAM_TTS_VOICE",
        "aura-2-thalia-en",
        "Aura voice of the `deepgram` text-to-speech (through Cloudflare, the part between "
        "`aura-2-` and `-en` is the `speaker`); a persona's `voice` overrides it.",
    )
    cloudflare_account_id: str = setting(
        "BRIDGE_CLOUDFLARE_ACCOUNT_ID",
        "",
        "Cloudflare account id (`cloudflare` stages: Workers AI through AI Gateway).",
    )
    cloudflare_gateway_id: str = setting(
        "BRIDGE_CLOUDFLARE_GATEWAY_ID",
        "",
        "AI Gateway id the `cloudflare` stages go through.",
    )
    cloudflare_api_token: str = setting(
        "BRIDGE_CLOUDFLARE_API_TOKEN",
        "",
        "Cloudflare API token, sent as `cf-aig-authorization` (an authenticated gateway).",
        secret=True,
    )
    cloudflare_url: str = setting(
        "BRIDGE_CLOUDFLARE_URL",
        "wss://gateway.ai.cloudflare.com",
        "Scheme, host and port of AI Gateway (a test server); the paths stay Cloudflare's.",
    )
    elevenlabs_api_key: str = setting(
        "BRIDGE_ELEVENLABS_API_KEY",
        "",
        "ElevenLabs API key (`elevenlabs` text-to-speech).",
        aliases=("ELEVENLABS_API_KEY",),
        secret=True,
    )
    elevenlabs_voice_id: str = setting(
        "BRIDGE_ELEVENLABS_VOICE_ID",
        "",
        "ElevenLabs voice id; a persona's `voice` overrides it. Required with `elevenlabs`.",
    )
    elevenlabs_model: str = setting(
        "BRIDGE_ELEVENLABS_MODEL",
        "eleven_flash_v2_5",
        "ElevenLabs model (`eleven_flash_v2_5` answers fastest).",
    )
    elevenlabs_url: str = setting(
        "BRIDGE_ELEVENLABS_URL",
        "wss://api.elevenlabs.io",
        "Scheme, host and port ElevenLabs is reached at (a test server); the paths stay "
        "ElevenLabs'.",
    )
