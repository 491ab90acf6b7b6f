"""One settings object, read from the environment (and an optional ``.env``), validated once.

The settings are declared by concern, one module each (:mod:`.server`, :mod:`.agents`,
:mod:`.speech`, :mod:`.turns`, :mod:`.phones`, :mod:`.toys`, :mod:`.capacity`,
:mod:`.records`), and joined here into :class:`Settings`; :mod:`.fields` says how a
declaration becomes parsing, validation and the README table. Checks that span several
settings live here.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dotenv import dotenv_values

from bridge.settings.agents import AgentsSettings
from bridge.settings.browser import BrowserSettings
from bridge.settings.capacity import CapacitySettings
from bridge.settings.fields import SettingsError, markdown_row, parse
from bridge.settings.phones import PhonesSettings
from bridge.settings.records import RecordsSettings
from bridge.settings.server import ServerSettings
from bridge.settings.speech import SpeechSettings
from bridge.settings.toys import ToysSettings
from bridge.settings.turns import TurnsSettings

__all__ = ["Settings", "SettingsError"]


@dataclass(frozen=True)
class Settings(
    BrowserSettings,
    RecordsSettings,
    CapacitySettings,
    ToysSettings,
    PhonesSettings,
    TurnsSettings,
    SpeechSettings,
    AgentsSettings,
    ServerSettings,
):
    """Every setting; fields come in the order of the bases from last to first (server first)."""

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
                values[f.name] = parse(f, raw.strip())
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
        return "\n".join(rows + [markdown_row(f) for f in cls.fields()])

    def redacted(self) -> dict[str, Any]:
        """The settings as a dict with secrets masked, for logs and diagnostics."""
        out: dict[str, Any] = {}
        for f in self.fields():
            value = getattr(self, f.name)
            out[f.name] = "***" if f.metadata["secret"] and value else value
        return out
