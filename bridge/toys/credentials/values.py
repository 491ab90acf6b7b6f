"""What authentication hands out: the identity, its settings, the refusal, and header parsers.

These are the values the rest of the bridge sees (the gate, the app, the toy session), kept
apart from how they are decided so that importing them pulls in no JWT or file parsing.
``X-Device-Mac`` and ``X-Wifi-Rssi`` are untrusted input: :func:`normalize_mac` and
:func:`parse_rssi` turn anything malformed into None rather than raising, and the identity
uses them for binding, revocation and logs, never as a credential (ES5).
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass

HTTP_UNAUTHORIZED = 401

METHOD_JWT = "jwt"
METHOD_DEVICE_TOKEN = "device-token"
METHOD_INSECURE_DEV = "insecure-dev"

FINGERPRINT_HEX_CHARS = 8

DEFAULT_VOLUME = 70
VOLUME_MIN, VOLUME_MAX = 0, 100
DEFAULT_PITCH_FACTOR = 1.0
PITCH_FACTOR_MIN, PITCH_FACTOR_MAX = 0.5, 2.0
RSSI_MIN_DBM, RSSI_MAX_DBM = -127, 0

_MAC_RE = re.compile(r"[0-9A-Fa-f]{2}([:-]?)(?:[0-9A-Fa-f]{2}\1){4}[0-9A-Fa-f]{2}")
_RSSI_RE = re.compile(r"[+-]?[0-9]{1,4}")  # ASCII digits only: int() would take "٣" or "1_0"


def _clamp_volume(volume: int) -> int:
    return min(max(int(volume), VOLUME_MIN), VOLUME_MAX)


def _clamp_pitch_factor(pitch_factor: float) -> float:
    if math.isnan(pitch_factor):
        return DEFAULT_PITCH_FACTOR
    return min(max(float(pitch_factor), PITCH_FACTOR_MIN), PITCH_FACTOR_MAX)


@dataclass(frozen=True, slots=True)
class DeviceSettings:
    """What the first ``auth`` frame tells the toy; clamped here so no caller can send junk."""

    volume: int = DEFAULT_VOLUME  # 0..100
    pitch_factor: float = DEFAULT_PITCH_FACTOR  # 0.5..2.0
    is_ota: bool = False
    persona: str | None = None  # optional persona name for the agent

    def __post_init__(self) -> None:
        object.__setattr__(self, "volume", _clamp_volume(self.volume))
        object.__setattr__(self, "pitch_factor", _clamp_pitch_factor(self.pitch_factor))


@dataclass(frozen=True, slots=True)
class DeviceIdentity:
    """An authenticated toy. Safe to log: it holds a token fingerprint, never the token."""

    sub: str  # JWT sub, or the device id from the devices file, or "dev-…" in insecure-dev
    email: str | None
    mac: str | None  # normalised "AA:BB:CC:DD:EE:FF" when X-Device-Mac was valid
    rssi_dbm: int | None  # X-Wifi-Rssi when an int in [-127, 0]
    method: str  # METHOD_JWT | METHOD_DEVICE_TOKEN | METHOD_INSECURE_DEV
    settings: DeviceSettings
    token_fingerprint: str  # 8 hex chars of sha256(token); "" in insecure-dev mode

    @property
    def session_key(self) -> str:
        """One live session per key (C11): ``sub`` plus the MAC when the toy sent one."""
        return f"{self.sub}|{self.mac}" if self.mac else self.sub


class DeviceAuthError(Exception):
    """A refused upgrade. ``reason`` is short and loggable: it never contains a token or secret."""

    def __init__(
        self,
        reason: str,
        *,
        status: int = HTTP_UNAUTHORIZED,
        token_fingerprint: str | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status  # HTTP status to answer before the upgrade
        self.token_fingerprint = token_fingerprint


def token_fingerprint(token: str) -> str:
    """A log-safe handle for a token: enough to correlate lines, useless to an attacker."""
    digest = hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()
    return digest[:FINGERPRINT_HEX_CHARS]


def normalize_mac(value: str | None) -> str | None:
    """``"AA:BB:CC:DD:EE:FF"`` for a MAC written with ``:``, ``-`` or no separator, else None."""
    if value is None:
        return None
    candidate = value.strip()
    if _MAC_RE.fullmatch(candidate) is None:
        return None
    hex_digits = candidate.replace(":", "").replace("-", "").upper()
    return ":".join(hex_digits[i : i + 2] for i in range(0, len(hex_digits), 2))


def parse_rssi(value: str | None) -> int | None:
    """``X-Wifi-Rssi`` as dBm when it is a plain integer in [-127, 0]; anything else is ignored."""
    if value is None:
        return None
    candidate = value.strip()
    if _RSSI_RE.fullmatch(candidate) is None:
        return None
    rssi_dbm = int(candidate)
    return rssi_dbm if RSSI_MIN_DBM <= rssi_dbm <= RSSI_MAX_DBM else None
