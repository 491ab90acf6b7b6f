"""The settings tables in README.md and DEPLOYMENT.md are generated from the settings
declaration: keep them equal."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.settings import Settings, SettingsError
from scripts.sync_settings_table import DOCS, settings_table_of

README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_settings_tables_match_the_code(doc: Path) -> None:
    assert settings_table_of(doc.read_text()) == Settings.markdown_table(), (
        f"{doc.name} settings table is stale: run `make docs`"
    )


def test_every_problem_is_reported_at_once() -> None:
    try:
        Settings.from_env(
            {"BRIDGE_PORT": "x", "BRIDGE_VAD_MODE": "9", "BRIDGE_TRUST_FORWARDED": "maybe"},
            dotenv_path=None,
        )
    except SettingsError as exc:
        lines = str(exc).splitlines()
        assert len(lines) == 4 and all(name in str(exc) for name in ("PORT", "VAD_MODE", "TRUST"))
    else:
        raise AssertionError("invalid settings were accepted")


def test_dotenv_is_a_fallback_under_the_environment(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text("BRIDGE_PORT=9000\nBRIDGE_VAD_SILENCE_MS=800\n")
    settings = Settings.from_env({"BRIDGE_PORT": "9100"}, dotenv_path=dotenv)
    assert settings.port == 9100 and settings.vad_silence_ms == 800
