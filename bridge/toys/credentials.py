"""Who is this toy? Authentication of ``/ws/esp32`` upgrades, decided before the 101.

Why before the upgrade, and why cheap: a rejected device retries every 1000 ms forever (spec
C10), so a rejection must cost one HMAC and a few dict lookups — never an agent, never a
provider call — and must be an HTTP answer, never accept-then-close (C9).

Three ways in, tried in this order (spec §2.3, §8):

* ``device-token``: a per-device secret from the devices file, sent as ``Authorization: Bearer``.
  Tokens are stored as SHA-256 digests, so the lookup is one dict access plus a constant-time
  compare, and the file's secrets do not linger in memory as plain text.
* ``jwt``: an Elato-style HS256 JWT. The algorithm is pinned to HS256 (``none``, HS512, RS256 …
  are refused), ``sub`` is required and is the identity, ``email`` is optional, ``aud`` — when
  present — must name the configured audience, and ``exp`` — when present — is enforced. A missing
  ``exp`` is accepted because firmware tokens never expire; revocation (below) replaces expiry.
* ``insecure-dev``: only when no credential at all is configured and the operator opted in;
  accepts private and loopback source addresses only (ES9).

The token is never taken from a query string, never logged and never put in an exception
message: logs get :func:`token_fingerprint` (8 hex chars of its SHA-256) instead (ES4).
``X-Device-Mac`` and ``X-Wifi-Rssi`` are untrusted: they are validated, used for binding, revocation
and logs, and never as a credential (ES5).

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

Settings missing from an entry come from the authenticator's ``default_settings``. A revoked MAC
matches both the ``X-Device-Mac`` header and the MAC bound to the identity, so a revoked toy
cannot get back in by leaving the header out. :meth:`DeviceAuthenticator.reload` re-reads the file;
if the new file is bad it raises and the previous registry stays in force.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import math
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import unquote_plus

import jwt
from jwt.types import Options as JwtOptions

log = logging.getLogger("bridge.toys.credentials")

HTTP_UNAUTHORIZED = 401
HTTP_TOO_MANY_REQUESTS = 429

METHOD_JWT = "jwt"
METHOD_DEVICE_TOKEN = "device-token"
METHOD_INSECURE_DEV = "insecure-dev"

JWT_ALGORITHM = "HS256"
DEFAULT_AUDIENCE = "authenticated"  # what the Elato backend mints (spec [TOKEN])
CLOCK_LEEWAY_S = 30.0  # tolerated skew for exp / nbf / iat between the minting host and us
MIN_JWT_SECRET_BYTES = 32  # ES2: the HS256 secret is at least 32 random bytes
MIN_DEVICE_TOKEN_CHARS = 16
MAX_TOKEN_CHARS = 8192  # longer Bearer values are refused before any hashing or parsing
FINGERPRINT_HEX_CHARS = 8

DEFAULT_VOLUME = 70
VOLUME_MIN, VOLUME_MAX = 0, 100
DEFAULT_PITCH_FACTOR = 1.0
PITCH_FACTOR_MIN, PITCH_FACTOR_MAX = 0.5, 2.0
RSSI_MIN_DBM, RSSI_MAX_DBM = -127, 0
INSECURE_DEV_SUB_PREFIX = "dev-"

QUERY_TOKEN_PARAMS = frozenset({"token", "access_token", "jwt", "auth"})
LOGGED_HEADER_CHARS = 40  # untrusted header values are truncated before they reach a log line

_AUTHORIZATION = "authorization"
_MAC_HEADER = "x-device-mac"
_RSSI_HEADER = "x-wifi-rssi"
_READ_HEADERS = (_AUTHORIZATION, _MAC_HEADER, _RSSI_HEADER)

_MAC_RE = re.compile(r"[0-9A-Fa-f]{2}([:-]?)(?:[0-9A-Fa-f]{2}\1){4}[0-9A-Fa-f]{2}")
_RSSI_RE = re.compile(r"[+-]?[0-9]{1,4}")  # ASCII digits only: int() would take "٣" or "1_0"
_VISIBLE_ASCII_RE = re.compile(r"[\x21-\x7e]+")  # what survives a Bearer header intact

# Time claims and aud are checked here against the injectable clock; PyJWT checks the
# algorithm allow-list and the signature.
_JWT_OPTIONS: JwtOptions = {
    "verify_signature": True,
    "verify_exp": False,
    "verify_nbf": False,
    "verify_iat": False,
    "verify_aud": False,
    "verify_sub": False,
    "require": [],
}

_TOP_KEYS = frozenset({"devices", "users", "revoked"})
_SETTINGS_KEYS = frozenset({"volume", "pitch_factor", "is_ota", "persona"})
_USER_KEYS = _SETTINGS_KEYS | {"mac"}
_DEVICE_KEYS = _USER_KEYS | {"id", "token"}
_REVOKED_KEYS = frozenset({"subs", "macs"})


# ----------------------------------------------------------------------------- public values


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


# ----------------------------------------------------------------------------- devices file


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


# ----------------------------------------------------------------------------- request parsing


@dataclass(frozen=True, slots=True)
class _Handshake:
    """The three handshake headers we read; repeated headers are joined with ", " as HTTP does."""

    authorization: str | None
    mac: str | None
    rssi: str | None

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> _Handshake:
        values: dict[str, list[str]] = {name: [] for name in _READ_HEADERS}
        for name, value in headers.items():
            bucket = values.get(name.lower())
            if bucket is not None and value not in bucket:
                bucket.append(value)
        joined = {name: ", ".join(found) if found else None for name, found in values.items()}
        return cls(joined[_AUTHORIZATION], joined[_MAC_HEADER], joined[_RSSI_HEADER])


def _has_query_token(query_string: str) -> bool:
    for pair in query_string.split("&"):
        name = unquote_plus(pair.partition("=")[0]).strip().lower()
        if name in QUERY_TOKEN_PARAMS:
            return True
    return False


def _bearer_token(authorization: str | None, query_string: str) -> str:
    """The token from ``Authorization: Bearer <token>``; the query string is never a source."""
    if authorization is None:
        if _has_query_token(query_string):
            raise DeviceAuthError("token in query string is not accepted; use Authorization")
        raise DeviceAuthError("missing Authorization header")
    parts = authorization.split()
    if len(parts) != 2 or parts[0].lower() != "bearer":
        raise DeviceAuthError("Authorization is not a Bearer token")
    if len(parts[1]) > MAX_TOKEN_CHARS:
        raise DeviceAuthError("token too long")
    return parts[1]


def _is_private_source(client_ip: str) -> bool:
    try:
        address = ipaddress.ip_address(client_ip.strip())
    except ValueError:
        return False
    # Python 3.11 calls every IPv4-mapped IPv6 address private (::ffff:8.8.8.8 included).
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_private or address.is_loopback


def _numeric_claim(claims: Mapping[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None and name not in claims:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise DeviceAuthError(f"token {name} claim is not a number")
    return float(value)


# ----------------------------------------------------------------------------- authenticator


@dataclass(frozen=True, slots=True)
class _Verified:
    """A credential that checked out, before the MAC and revocation rules."""

    sub: str
    email: str | None
    method: str
    bound_mac: str | None
    settings: DeviceSettings


def _jwt_key(jwt_secret: str | None) -> bytes | None:
    if not jwt_secret:
        return None
    key = jwt_secret.encode("utf-8")
    if len(key) < MIN_JWT_SECRET_BYTES:
        raise ValueError(f"the ESP32 JWT secret must be at least {MIN_JWT_SECRET_BYTES} bytes")
    return key


class DeviceAuthenticator:
    """Decides, before the 101, whether a toy may open ``/ws/esp32`` and who it is.

    Pure and synchronous (one HMAC, a few dict lookups), so the route can call it inline. Rate
    limiting is the caller's job (``bridge.toys.failure_limits.FailureLimiter``, checked first).
    An empty ``jwt_secret`` or ``devices_file`` counts as unset, matching the settings defaults.
    Insecure-dev mode is decided once, at construction, from ``allow_insecure_dev`` and whether
    any credential exists then; reloads can only leave it, never enter it.
    """

    def __init__(
        self,
        *,
        jwt_secret: str | None,
        audience: str | None = None,
        devices_file: str | Path | None = None,
        allow_insecure_dev: bool = False,
        require_mac: bool = False,
        clock: Callable[[], float] = time.time,
        default_settings: DeviceSettings | None = None,
    ) -> None:
        if audience == "":
            raise ValueError("the ESP32 JWT audience must not be empty")
        self._jwt_key = _jwt_key(jwt_secret)
        self._audience = audience if audience is not None else DEFAULT_AUDIENCE
        self._devices_path = Path(devices_file) if devices_file else None
        self._require_mac = require_mac
        self._clock = clock
        self._defaults = default_settings if default_settings is not None else DeviceSettings()
        self._registry = _Registry()
        self.reload()
        # Decided once, at startup: a later reload that empties the devices file must not
        # open the door to unauthenticated toys (fail closed).
        self._insecure_dev = allow_insecure_dev and not self.configured
        self._log_mode(allow_insecure_dev)

    @property
    def insecure_dev(self) -> bool:
        """True when toys are admitted without credentials (private addresses only)."""
        return self._insecure_dev

    @property
    def configured(self) -> bool:
        """True when a JWT secret or at least one device token gives real credentials."""
        return self._jwt_key is not None or bool(self._registry.devices_by_digest)

    def reload(self) -> None:
        """Re-read the devices file so revocations and new toys apply without a restart.

        On a bad file this raises ValueError and keeps the previous registry in force.
        """
        if self._devices_path is not None:
            self._registry = _load_registry(self._devices_path, self._defaults)

    def authenticate(
        self, headers: Mapping[str, str], query_string: str = "", client_ip: str = ""
    ) -> DeviceIdentity:
        """The identity of the toy behind this handshake, or DeviceAuthError (401)."""
        registry = self._registry  # one snapshot for the whole decision, even across a reload
        handshake = _Handshake.from_headers(headers)
        rssi_dbm = parse_rssi(handshake.rssi)
        if not self._jwt_key and not registry.devices_by_digest:
            return self._authenticate_insecure_dev(handshake, client_ip, rssi_dbm, registry)
        token = _bearer_token(handshake.authorization, query_string)
        fingerprint = token_fingerprint(token)
        try:
            verified = self._verify_credential(token, registry)
            self._check_revoked_sub(verified.sub, registry)
            mac = self._resolve_mac(handshake.mac, verified.bound_mac)
            self._check_revoked_macs((mac, verified.bound_mac), registry)
        except DeviceAuthError as exc:
            exc.token_fingerprint = fingerprint
            raise
        return DeviceIdentity(
            sub=verified.sub,
            email=verified.email,
            mac=mac,
            rssi_dbm=rssi_dbm,
            method=verified.method,
            settings=verified.settings,
            token_fingerprint=fingerprint,
        )

    # -- credentials -------------------------------------------------------------------------

    def _verify_credential(self, token: str, registry: _Registry) -> _Verified:
        """A device token first (one dict lookup), then the JWT."""
        device = self._find_device(token, registry)
        if device is not None:
            return _Verified(
                device.device_id, None, METHOD_DEVICE_TOKEN, device.mac, device.settings
            )
        if self._jwt_key is None:
            raise DeviceAuthError("unknown device token")
        claims = self._decode_jwt(token)
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub.strip():
            raise DeviceAuthError("token has no sub")
        email = claims.get("email")
        user = registry.users.get(sub)
        return _Verified(
            sub,
            email if isinstance(email, str) else None,
            METHOD_JWT,
            user.mac if user else None,
            user.settings if user else self._defaults,
        )

    @staticmethod
    def _find_device(token: str, registry: _Registry) -> _DeviceEntry | None:
        if not registry.devices_by_digest:
            return None
        digest = hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()
        device = registry.devices_by_digest.get(digest)
        if device is None or not hmac.compare_digest(device.token_digest, digest):
            return None
        return device

    def _decode_jwt(self, token: str) -> dict[str, Any]:
        """Signature and algorithm by PyJWT (HS256 only); time claims and aud against our clock."""
        assert self._jwt_key is not None
        try:
            claims = jwt.decode(
                token, self._jwt_key, algorithms=[JWT_ALGORITHM], options=_JWT_OPTIONS
            )
        except jwt.InvalidAlgorithmError:
            raise DeviceAuthError("token algorithm not allowed") from None
        except jwt.InvalidSignatureError:
            raise DeviceAuthError("invalid token signature") from None
        except jwt.PyJWTError:
            raise DeviceAuthError("malformed token") from None
        self._check_time_claims(claims)
        self._check_audience(claims)
        return claims

    def _check_time_claims(self, claims: Mapping[str, Any]) -> None:
        now_s = self._clock()
        exp_s = _numeric_claim(claims, "exp")  # absent: accepted, firmware tokens never expire
        if exp_s is not None and exp_s <= now_s - CLOCK_LEEWAY_S:
            raise DeviceAuthError("token expired")
        for name in ("nbf", "iat"):
            at_s = _numeric_claim(claims, name)
            if at_s is not None and at_s > now_s + CLOCK_LEEWAY_S:
                raise DeviceAuthError(f"token {name} is in the future")

    def _check_audience(self, claims: Mapping[str, Any]) -> None:
        """An absent aud is accepted; a present one must name us (a string, or a list with it)."""
        if "aud" not in claims:
            return
        aud = claims["aud"]
        if isinstance(aud, str):
            accepted = aud == self._audience
        elif isinstance(aud, list):
            accepted = all(isinstance(item, str) for item in aud) and self._audience in aud
        else:
            accepted = False
        if not accepted:
            raise DeviceAuthError("token audience mismatch")

    # -- MAC and revocation ------------------------------------------------------------------

    def _resolve_mac(self, raw_mac: str | None, bound_mac: str | None) -> str | None:
        """The validated MAC, after the binding rule (C8) and the require-MAC policy."""
        mac = normalize_mac(raw_mac)
        if raw_mac is not None and mac is None:
            if bound_mac is not None:
                raise DeviceAuthError("malformed X-Device-Mac")
            log.info("ignoring malformed X-Device-Mac %r", raw_mac[:LOGGED_HEADER_CHARS])
        if mac is None and self._require_mac:
            raise DeviceAuthError("X-Device-Mac required")
        if bound_mac is not None and mac is not None and mac != bound_mac:
            raise DeviceAuthError("X-Device-Mac does not match the registered MAC")
        return mac

    @staticmethod
    def _check_revoked_sub(sub: str, registry: _Registry) -> None:
        if sub in registry.revoked_subs:
            raise DeviceAuthError("identity revoked")

    @staticmethod
    def _check_revoked_macs(macs: Iterable[str | None], registry: _Registry) -> None:
        if any(mac in registry.revoked_macs for mac in macs if mac is not None):
            raise DeviceAuthError("device MAC revoked")

    # -- insecure-dev ------------------------------------------------------------------------

    def _authenticate_insecure_dev(
        self, handshake: _Handshake, client_ip: str, rssi_dbm: int | None, registry: _Registry
    ) -> DeviceIdentity:
        """No credentials configured: fail closed unless the operator opted in (ES2, ES9)."""
        if not self._insecure_dev:
            raise DeviceAuthError("no device credentials configured")
        if not _is_private_source(client_ip):
            raise DeviceAuthError("insecure-dev mode accepts private source addresses only")
        mac = self._resolve_mac(handshake.mac, None)
        sub = INSECURE_DEV_SUB_PREFIX + (mac or client_ip.strip())
        self._check_revoked_sub(sub, registry)
        self._check_revoked_macs((mac,), registry)
        return DeviceIdentity(
            sub=sub,
            email=None,
            mac=mac,
            rssi_dbm=rssi_dbm,
            method=METHOD_INSECURE_DEV,
            settings=self._defaults,
            token_fingerprint="",
        )

    def _log_mode(self, allow_insecure_dev: bool) -> None:
        if self._insecure_dev:
            log.warning(
                "ESP32 insecure-dev mode: toys are accepted WITHOUT a token from private "
                "and loopback addresses only; never use this in production"
            )
        elif not self.configured:
            log.warning("ESP32: no JWT secret and no device tokens; every toy will get 401")
        elif allow_insecure_dev:
            log.info("ESP32 credentials configured; the insecure-dev flag has no effect")
