"""The README's settings table is generated from the settings declaration: keep them equal."""

from __future__ import annotations

from pathlib import Path

from bridge.settings import Settings, SettingsError

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_settings_table_matches_the_code() -> None:
    text = README.read_text()
    start = text.index("<!-- settings-table:start -->") + len("<!-- settings-table:start -->")
    end = text.index("<!-- settings-table:end -->")
    assert text[start:end].strip() == Settings.markdown_table(), (
        "README settings table is stale: run `bridge settings --markdown`"
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
