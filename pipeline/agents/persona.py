"""Who the agent is on a given line: system prompt, first message and voice, per route.

One bridge often serves several phone numbers and toys that should not sound alike (a help
line, a pirate toy). Personas live in one TOML file (``BRIDGE_PERSONAS_FILE``)::

    [personas.pirate]
    system_prompt = "You are a friendly pirate. Answer in one or two short sentences."
    first_message = "Ahoy! What be yer question?"
    voice = "ash"
    stt = "openai"          # the cascade's stages for this persona (default: settings)
    tts = "openai"
    backchannels = ["aye", "arr", "yeah"]   # "uh-huh"s that don't cut the agent off
    filler = "Arr, let me look."            # said while a slow tool works
    voicemail = "Ahoy, call us back!"       # left on an answering machine (outbound calls)
    handoff = "Passing ye to the captain."  # said before a transfer, if the model did not
    # [[personas.pirate.tools]], [[personas.pirate.mcp]], [[personas.pirate.transfer]]:
    # see pipeline/tools/config.py

    [numbers]              # the Twilio number called (the webhook's ``To``)
    "+15551230001" = "pirate"

    [devices]              # a toy's device id (the devices file's ``id``, a JWT's ``sub``)
    "toy-42" = "pirate"

A call picks, in order: an explicit ``persona`` parameter (a TwiML ``<Parameter>``, or the
devices file's ``persona``), then the called number, then the device, then the default built
from settings. Fields a persona leaves out are inherited from the default, so a persona can
change only the voice; but a persona that names its own ``tts`` and no ``voice`` gets that
stage's configured voice, not the default's (a voice belongs to one provider). Unknown names
fail at start-up, not on the first call.
"""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.agents.base import CallInfo
from pipeline.tools.base import TransferTarget
from pipeline.tools.config import (
    HttpToolConfig,
    McpServerConfig,
    ToolConfigError,
    http_tools,
    mcp_servers,
    transfer_targets,
)

_FIELDS = (
    "system_prompt",
    "first_message",
    "voice",
    "stt",
    "tts",
    "filler",
    "voicemail",
    "handoff",
)
_LISTS = ("backchannels",)
#: arrays of tables, each parsed by ``pipeline/tools/config.py``
_TOOLS = {"tools": http_tools, "mcp": mcp_servers, "transfer": transfer_targets}


class PersonaError(ValueError):
    """The personas file is unreadable or inconsistent (raised at start-up)."""


@dataclass(frozen=True, slots=True)
class Persona:
    name: str = "default"
    system_prompt: str = ""
    #: spoken when the call connects; empty: the agent waits for the caller
    first_message: str = ""
    #: a voice name understood by the agent's speech stage (e.g. an OpenAI voice)
    voice: str = ""
    #: the cascade's speech-to-text and text-to-speech providers (empty: the settings')
    stt: str = ""
    tts: str = ""
    #: what callers say over a reply that is not an interruption ("uh-huh", "aye"); empty:
    #: the bridge's default list (``BRIDGE_BACKCHANNELS``)
    backchannels: tuple[str, ...] = ()
    #: said when a tool has not answered after about a second (no dead air); empty: none
    filler: str = ""
    #: left on an answering machine of an outbound call, after the beep; empty: hang up
    voicemail: str = ""
    #: said before a transfer when the model said nothing itself
    handoff: str = ""
    #: HTTP tools, MCP servers and transfer destinations the LLM agents are offered
    tools: tuple[HttpToolConfig, ...] = ()
    mcp: tuple[McpServerConfig, ...] = ()
    transfer: tuple[TransferTarget, ...] = ()


@dataclass(frozen=True, slots=True)
class PersonaBook:
    default: Persona
    personas: Mapping[str, Persona] = dataclasses.field(default_factory=dict)
    numbers: Mapping[str, str] = dataclasses.field(default_factory=dict)
    devices: Mapping[str, str] = dataclasses.field(default_factory=dict)

    @classmethod
    def load(cls, path: str | Path | None, default: Persona) -> PersonaBook:
        """Read ``path`` (None or empty: only the default) and check every reference."""
        if not path:
            return cls(default)
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise PersonaError(f"personas file {path}: {exc}") from exc
        return cls.from_dict(data, default, where=str(path))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], default: Persona, where: str = "") -> PersonaBook:
        personas: dict[str, Persona] = {}
        for name, entry in _table(data, "personas", where).items():
            if not isinstance(entry, Mapping):
                raise PersonaError(f"{where}: personas.{name} must be a table")
            unknown = set(entry) - set(_FIELDS) - set(_LISTS) - set(_TOOLS)
            if unknown:
                raise PersonaError(f"{where}: personas.{name}: unknown keys {sorted(unknown)}")
            values = {k: entry.get(k, getattr(default, k)) for k in _FIELDS}
            if "tts" in entry and "voice" not in entry:
                values["voice"] = ""  # the default's voice is for the default's speech stage
            for key, value in values.items():
                if not isinstance(value, str):
                    raise PersonaError(f"{where}: personas.{name}.{key} must be a string")
            lists = {k: entry.get(k, getattr(default, k)) for k in _LISTS}
            for key, value in lists.items():
                if not isinstance(value, list | tuple) or not all(
                    isinstance(v, str) for v in value
                ):
                    raise PersonaError(f"{where}: personas.{name}.{key} must be a list of strings")
                lists[key] = tuple(value)
            tools: dict[str, Any] = {}
            for key, parse in _TOOLS.items():
                try:
                    tools[key] = (
                        parse(entry[key], f"{where}: personas.{name}.{key}")
                        if key in entry
                        else getattr(default, key)
                    )
                except ToolConfigError as exc:
                    raise PersonaError(str(exc)) from exc
            personas[name] = Persona(name=name, **values, **lists, **tools)
        routes = {kind: _table(data, kind, where) for kind in ("numbers", "devices")}
        for kind, table in routes.items():
            for key, name in table.items():
                if name not in personas:
                    raise PersonaError(f"{where}: {kind}.{key} names unknown persona {name!r}")
        return cls(default, personas, routes["numbers"], routes["devices"])

    def for_call(self, call: CallInfo) -> Persona:
        name = (
            call.params.get("persona")
            or self.numbers.get(call.callee)
            or self.devices.get(call.params.get("sub", call.caller))
        )
        if name and name in self.personas:
            return self.personas[name]
        return self.default


def _table(data: Mapping[str, Any], key: str, where: str) -> dict[str, Any]:
    table = data.get(key, {})
    if not isinstance(table, Mapping):
        raise PersonaError(f"{where}: [{key}] must be a table")
    return dict(table)
