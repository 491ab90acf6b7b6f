"""Which providers serve the cascade's stages: settings, personas, credentials at start-up."""

from __future__ import annotations

import pytest

from bridge.settings import Settings, SettingsError
from bridge.stages import cascade_factory
from bridge.wiring import persona_book
from pipeline.agents.base import CallInfo
from pipeline.agents.cascade.agent import CascadeAgent
from pipeline.agents.persona import Persona, PersonaBook
from pipeline.audio import PCM16_8K

LOCAL_SERVER = {"BRIDGE_AGENT": "openai", "BRIDGE_OPENAI_BASE_URL": "http://127.0.0.1:9/v1"}


def settings(**env: str) -> Settings:
    return Settings.from_env({**LOCAL_SERVER, **env}, dotenv_path=None)


async def test_the_cascade_is_built_from_the_settings_stages() -> None:
    factory = cascade_factory(settings(), PersonaBook(Persona()))
    agent = factory.create(CallInfo("CA1", "twilio", PCM16_8K))
    assert isinstance(agent, CascadeAgent)
    assert agent.input_spec == PCM16_8K  # a phone's turns go at the line's rate
    await agent.close()
    await factory.aclose()


def test_a_persona_naming_an_unknown_provider_stops_start_up() -> None:
    book = PersonaBook.from_dict(
        {"personas": {"robot": {"tts": "nowhere"}}}, Persona(), where="personas.toml"
    )
    with pytest.raises(SettingsError, match="nowhere"):
        cascade_factory(settings(), book)


def test_a_stage_without_its_key_names_the_setting() -> None:
    missing = Settings.from_env({"BRIDGE_AGENT": "openai"}, dotenv_path=None)
    with pytest.raises(SettingsError, match="transcription, chat, speech"):
        cascade_factory(missing, PersonaBook(Persona()))


def test_deepgram_without_its_key_stops_start_up_naming_the_setting() -> None:
    with pytest.raises(SettingsError, match="BRIDGE_DEEPGRAM_API_KEY") as raised:
        cascade_factory(settings(BRIDGE_STT="deepgram"), PersonaBook(Persona()))
    assert "deepgram needs BRIDGE_DEEPGRAM_API_KEY" in str(raised.value)


def test_a_key_two_stages_share_is_asked_for_once() -> None:
    both = settings(BRIDGE_STT="deepgram", BRIDGE_TTS="deepgram")
    with pytest.raises(SettingsError) as raised:
        cascade_factory(both, PersonaBook(Persona()))
    assert str(raised.value).count("BRIDGE_DEEPGRAM_API_KEY") == 1


def test_cloudflare_without_its_gateway_names_every_missing_setting() -> None:
    with pytest.raises(SettingsError) as raised:
        cascade_factory(
            settings(BRIDGE_TTS="cloudflare", BRIDGE_CLOUDFLARE_ACCOUNT_ID="acct"),
            PersonaBook(Persona()),
        )
    message = str(raised.value)
    assert "BRIDGE_CLOUDFLARE_GATEWAY_ID" in message and "BRIDGE_CLOUDFLARE_API_TOKEN" in message
    assert "BRIDGE_CLOUDFLARE_ACCOUNT_ID" not in message


def test_a_backup_stage_is_checked_at_start_up_too() -> None:
    with pytest.raises(SettingsError) as raised:
        cascade_factory(settings(BRIDGE_TTS_FALLBACK="elevenlabs"), PersonaBook(Persona()))
    message = str(raised.value)
    assert "BRIDGE_ELEVENLABS_API_KEY" in message and "BRIDGE_ELEVENLABS_VOICE_ID" in message


@pytest.mark.parametrize(
    ("tts", "voice"), [("openai", "verse"), ("deepgram", ""), ("elevenlabs", "")]
)
def test_the_default_voice_is_the_openai_voice_only_for_openai_speech(tts: str, voice: str) -> None:
    """BRIDGE_OPENAI_VOICE is an OpenAI voice: Aura and ElevenLabs keep their own default
    (BRIDGE_DEEPGRAM_TTS_VOICE, BRIDGE_ELEVENLABS_VOICE_ID) instead of asking for it."""
    book = persona_book(settings(BRIDGE_TTS=tts, BRIDGE_OPENAI_VOICE="verse"))
    assert book.default.voice == voice


def test_a_persona_naming_its_own_speech_stage_does_not_inherit_the_default_voice() -> None:
    book = PersonaBook.from_dict(
        {
            "personas": {
                "aura": {"tts": "deepgram"},
                "aura_voiced": {"tts": "deepgram", "voice": "aura-2-luna-en"},
                "plain": {"first_message": "Hi."},
            }
        },
        Persona(voice="verse"),
    )
    assert book.personas["aura"].voice == ""  # Aura's configured voice, not "verse"
    assert book.personas["aura_voiced"].voice == "aura-2-luna-en"
    assert book.personas["plain"].voice == "verse"
