"""Which providers serve the cascade's stages: settings, personas, credentials at start-up."""

from __future__ import annotations

import pytest

from bridge.settings import Settings, SettingsError
from bridge.stages import cascade_factory
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
