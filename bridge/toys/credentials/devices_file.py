"""The devices file: per-device tokens, per-user settings and revocations, parsed strictly.

Devices file (JSON, UTF-8; every section optional; unknown or duplicate keys are errors so a typo
such as ``"revoke"`` cannot silently disable revocation)::

    {
      "devices": [                      # per-device tokens
        {"id": "toy-kitchen",           # required, non-empty, unique; becomes the identity's sub
         "token": "long-random-secret", # required, >= 16 visible ASCII chars, unique
         "mac": "24:0A:C4:12:34:56",    # optional MAC binding (":" / "-" / no separator)
         "volume": 60,                  # optional int, clamped to 0..100
         "pitch_factor": 1.0,           # optional number, clamped to 0.5..2.0
         "is_ota": false,               # optional bool
         "persona": "pirate"}           # optional string or null
      ],
      "users": {                        # per-JWT-sub settings and MAC binding
        "user-123": {"mac": "24:0A:C4:12:34:56", "volume": 80}   # same optional keys as above
      },
      "revoked": {                      # checked on every upgrade (C7)
        "subs": ["user-9", "toy-attic"],  # JWT subs and device ids
        "macs": ["AA:BB:CC:00:11:22"]
      }
    }

Settings missing from an entry come from the authenticator's ``default_settings``. Tokens are
stored as SHA-256 digests, so the lookup is one dict access plus a constant-time compare, and
the file's secrets do not linger in memory as plain text. The whole file is validated into one
immutable :class:`_Registry` or refused with a ValueError naming the file and the first problem
(never echoing a token), so a bad reload can leave the previous registry in force.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from bridge.toys.credentials.values import DeviceSettings, normalize_mac

MIN_DEVICE_TOKEN_CHARS = 16

_VISIBLE_ASCII_RE = re.compile(r"[\x21-\x7e]+")  # what survives a Bearer header intact

_TOP_KEYS = frozenset({"devices", "users", "revoked"})
_SETTINGS_KEYS = frozenset({"volume", "pitch_factor", "is_ota", "persona"})
_USER_KEYS = _SETTINGS_KEYS | {"mac"}
_DEVICE_KEYS = _USER_KEYS | {"id", "token"}
_REVOKED_KEYS = frozenset({"subs", "macs"})


@dataclass(frozen=True, slots=True)
class _DeviceEntry:
    device_id: str
    token_digest: bytes
    mac: str | None
    settings: DeviceSettings


@dataclass(frozen=True, slots=True)
class _UserEntry:
    mac: str | None
    settings: DeviceSettings


@dataclass(frozen=True, slots=True)
class _Registry:
    """One immutable snapshot of the devices file, swapped whole on reload."""

    devices_by_digest: Mapping[bytes, _DeviceEntry] = field(default_factory=dict)
    users: Mapping[str, _UserEntry] = field(default_factory=dict)
    revoked_subs: frozenset[str] = frozenset()
    revoked_macs: frozenset[str] = frozenset()


class _FileProblem(ValueError):
    """A problem inside the file; the loader prefixes the file name."""


def _fail(where: str, problem: str) -> NoReturn:
    raise _FileProblem(f"{where}: {problem}")


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            _fail("JSON", f"duplicate key {key!r}")
        result[key] = value
    return result


def _reject_constant(name: str) -> NoReturn:
    _fail("JSON", f"{name} is not a valid number")


def _expect_object(value: object, where: str, allowed: frozenset[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        _fail(where, "must be a JSON object")
    unknown = sorted(set(value) - allowed)
    if unknown:
        _fail(where, f"unknown key(s) {', '.join(map(repr, unknown))}")
    return value


def _expect_string_list(value: object, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
        _fail(where, "must be a list of non-empty strings")
    return value


def _parse_mac(value: object, where: str) -> str:
    mac = normalize_mac(value) if isinstance(value, str) else None
    if mac is None:
        _fail(where, "must be a MAC address such as 24:0A:C4:12:34:56")
    return mac


def _parse_optional_mac(entry: Mapping[str, Any], where: str) -> str | None:
    value = entry.get("mac")
    return None if value is None else _parse_mac(value, f"{where}.mac")


def _parse_settings(
    entry: Mapping[str, Any], where: str, defaults: DeviceSettings
) -> DeviceSettings:
    volume = entry.get("volume", defaults.volume)
    if isinstance(volume, bool) or not isinstance(volume, int):
        _fail(f"{where}.volume", "must be an integer")
    pitch_factor = entry.get("pitch_factor", defaults.pitch_factor)
    if isinstance(pitch_factor, bool) or not isinstance(pitch_factor, int | float):
        _fail(f"{where}.pitch_factor", "must be a number")
    is_ota = entry.get("is_ota", defaults.is_ota)
    if not isinstance(is_ota, bool):
        _fail(f"{where}.is_ota", "must be true or false")
    persona = entry.get("persona", defaults.persona)
    if persona is not None and not isinstance(persona, str):
        _fail(f"{where}.persona", "must be a string or null")
    return DeviceSettings(volume, float(pitch_factor), is_ota, persona)


def _parse_device_token(value: object, where: str) -> bytes:
    """The SHA-256 digest of a device token; the error never echoes the token."""
    if not isinstance(value, str) or _VISIBLE_ASCII_RE.fullmatch(value) is None:
        _fail(where, "must be a string of visible ASCII characters (no spaces)")
    if len(value) < MIN_DEVICE_TOKEN_CHARS:
        _fail(where, f"must be at least {MIN_DEVICE_TOKEN_CHARS} characters")
    return hashlib.sha256(value.encode("ascii")).digest()


def _parse_devices(value: object, defaults: DeviceSettings) -> dict[bytes, _DeviceEntry]:
    if not isinstance(value, list):
        _fail("devices", "must be a JSON array")
    devices: dict[bytes, _DeviceEntry] = {}
    seen_ids: set[str] = set()
    for index, raw in enumerate(value):
        where = f"devices[{index}]"
        entry = _expect_object(raw, where, _DEVICE_KEYS)
        device_id = entry.get("id")
        if not isinstance(device_id, str) or not device_id.strip():
            _fail(f"{where}.id", "must be a non-empty string")
        if device_id in seen_ids:
            _fail(f"{where}.id", f"duplicate device id {device_id!r}")
        digest = _parse_device_token(entry.get("token"), f"{where}.token")
        if digest in devices:
            _fail(f"{where}.token", "same token as another device")
        mac = _parse_optional_mac(entry, where)
        settings = _parse_settings(entry, where, defaults)
        seen_ids.add(device_id)
        devices[digest] = _DeviceEntry(device_id, digest, mac, settings)
    return devices


def _parse_users(value: object, defaults: DeviceSettings) -> dict[str, _UserEntry]:
    if not isinstance(value, dict):
        _fail("users", "must be a JSON object keyed by sub")
    users: dict[str, _UserEntry] = {}
    for sub, raw in value.items():
        where = f"users[{sub!r}]"
        if not sub.strip():
            _fail(where, "sub must be non-empty")
        entry = _expect_object(raw, where, _USER_KEYS)
        users[sub] = _UserEntry(
            _parse_optional_mac(entry, where), _parse_settings(entry, where, defaults)
        )
    return users


def _parse_revoked(value: object) -> tuple[frozenset[str], frozenset[str]]:
    section = _expect_object(value, "revoked", _REVOKED_KEYS)
    subs = _expect_string_list(section.get("subs", []), "revoked.subs")
    raw_macs = _expect_string_list(section.get("macs", []), "revoked.macs")
    macs = [_parse_mac(mac, f"revoked.macs[{i}]") for i, mac in enumerate(raw_macs)]
    return frozenset(subs), frozenset(macs)


def _read_json(path: Path) -> object:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise _FileProblem(f"not valid UTF-8 (byte {exc.start})") from None
    except OSError as exc:
        raise _FileProblem(f"cannot read it ({exc.strerror or type(exc).__name__})") from None
    try:
        return json.loads(
            text, object_pairs_hook=_reject_duplicate_keys, parse_constant=_reject_constant
        )
    except json.JSONDecodeError as exc:
        raise _FileProblem(f"invalid JSON ({exc})") from None


def _load_registry(path: Path, defaults: DeviceSettings) -> _Registry:
    """Parse and validate the whole file; ValueError names the file and the first problem."""
    try:
        document = _expect_object(_read_json(path), "top level", _TOP_KEYS)
        revoked_subs, revoked_macs = _parse_revoked(document.get("revoked", {}))
        return _Registry(
            devices_by_digest=_parse_devices(document.get("devices", []), defaults),
            users=_parse_users(document.get("users", {}), defaults),
            revoked_subs=revoked_subs,
            revoked_macs=revoked_macs,
        )
    except _FileProblem as exc:
        raise ValueError(f"devices file {path}: {exc}") from None
