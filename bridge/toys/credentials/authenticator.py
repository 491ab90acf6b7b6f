"""The decision itself: which credential a handshake carries, and whether it is still welcome.

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

After the credential come the MAC binding (C8) and revocation (C7), checked on every upgrade. A
revoked MAC matches both the ``X-Device-Mac`` header and the MAC bound to the identity, so a revoked
toy cannot get back in by leaving the header out. :meth:`DeviceAuthenticator.reload` re-reads the
devices file; if the new file is bad it raises and the previous registry stays in force.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from jwt.types import Options as JwtOptions

from bridge.toys.credentials.devices_file import _DeviceEntry, _load_registry, _Registry
from bridge.toys.credentials.handshake import _bearer_token, _Handshake, is_private_source
from bridge.toys.credentials.values import (
    METHOD_DEVICE_TOKEN,
    METHOD_INSECURE_DEV,
    METHOD_JWT,
    DeviceAuthError,
    DeviceIdentity,
    DeviceSettings,
    normalize_mac,
    parse_rssi,
    token_fingerprint,
)

# The package's name, not this module's, so log lines and per-logger level settings keep the
# name they had before the split.
log = logging.getLogger("bridge.toys.credentials")

JWT_ALGORITHM = "HS256"
DEFAULT_AUDIENCE = "authenticated"  # what the Elato backend mints (spec [TOKEN])
CLOCK_LEEWAY_S = 30.0  # tolerated skew for exp / nbf / iat between the minting host and us
MIN_JWT_SECRET_BYTES = 32  # ES2: the HS256 secret is at least 32 random bytes
INSECURE_DEV_SUB_PREFIX = "dev-"
LOGGED_HEADER_CHARS = 40  # untrusted header values are truncated before they reach a log line

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


def _numeric_claim(claims: Mapping[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None and name not in claims:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise DeviceAuthError(f"token {name} claim is not a number")
    return float(value)


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

    def registered_sub(self, raw_mac: str | None) -> str | None:
        """The devices file's identity bound to this MAC (a device id or a user), unless
        revoked: who a provisioning request (xiaozhi OTA) may be given a token for."""
        mac = normalize_mac(raw_mac)
        registry = self._registry
        if mac is None or mac in registry.revoked_macs:
            return None
        bound = [d.device_id for d in registry.devices_by_digest.values() if d.mac == mac]
        bound += [sub for sub, user in registry.users.items() if user.mac == mac]
        subs = [sub for sub in bound if sub not in registry.revoked_subs]
        return subs[0] if subs else None

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
        if not is_private_source(client_ip):
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
