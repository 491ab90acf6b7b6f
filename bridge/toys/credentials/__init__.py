"""Who is this toy? Authentication of ``/ws/esp32`` upgrades, decided before the 101.

Why before the upgrade, and why cheap: a rejected device retries every 1000 ms forever (spec
C10), so a rejection must cost one HMAC and a few dict lookups — never an agent, never a
provider call — and must be an HTTP answer, never accept-then-close (C9).

There are three ways in — a per-device token from the devices file, an HS256 JWT, and an
opt-in insecure-dev mode for private addresses — described in :mod:`.authenticator`.

The token is never taken from a query string, never logged and never put in an exception
message: logs get :func:`token_fingerprint` (8 hex chars of its SHA-256) instead (ES4).
``X-Device-Mac`` and ``X-Wifi-Rssi`` are untrusted: they are validated, used for binding, revocation
and logs, and never as a credential (ES5).

The package, one idea per module:

* :mod:`.values` — what callers see: :class:`DeviceIdentity`, :class:`DeviceSettings`,
  :class:`DeviceAuthError`, and the token, MAC and RSSI helpers.
* :mod:`.devices_file` — the devices file's format and its strict parser (unknown or duplicate
  keys are errors), producing one immutable registry snapshot.
* :mod:`.handshake` — reading the upgrade request: headers, Bearer token, source address.
* :mod:`.authenticator` — :class:`DeviceAuthenticator`: JWT verification, MAC binding,
  revocation and insecure-dev.
"""

from bridge.toys.credentials.authenticator import (
    CLOCK_LEEWAY_S,
    DEFAULT_AUDIENCE,
    INSECURE_DEV_SUB_PREFIX,
    JWT_ALGORITHM,
    LOGGED_HEADER_CHARS,
    MIN_JWT_SECRET_BYTES,
    DeviceAuthenticator,
)
from bridge.toys.credentials.devices_file import MIN_DEVICE_TOKEN_CHARS
from bridge.toys.credentials.handshake import MAX_TOKEN_CHARS, QUERY_TOKEN_PARAMS
from bridge.toys.credentials.values import (
    DEFAULT_PITCH_FACTOR,
    DEFAULT_VOLUME,
    FINGERPRINT_HEX_CHARS,
    HTTP_UNAUTHORIZED,
    METHOD_DEVICE_TOKEN,
    METHOD_INSECURE_DEV,
    METHOD_JWT,
    PITCH_FACTOR_MAX,
    PITCH_FACTOR_MIN,
    RSSI_MAX_DBM,
    RSSI_MIN_DBM,
    VOLUME_MAX,
    VOLUME_MIN,
    DeviceAuthError,
    DeviceIdentity,
    DeviceSettings,
    normalize_mac,
    parse_rssi,
    token_fingerprint,
)

__all__ = [
    "CLOCK_LEEWAY_S",
    "DEFAULT_AUDIENCE",
    "DEFAULT_PITCH_FACTOR",
    "DEFAULT_VOLUME",
    "FINGERPRINT_HEX_CHARS",
    "HTTP_UNAUTHORIZED",
    "INSECURE_DEV_SUB_PREFIX",
    "JWT_ALGORITHM",
    "LOGGED_HEADER_CHARS",
    "MAX_TOKEN_CHARS",
    "METHOD_DEVICE_TOKEN",
    "METHOD_INSECURE_DEV",
    "METHOD_JWT",
    "MIN_DEVICE_TOKEN_CHARS",
    "MIN_JWT_SECRET_BYTES",
    "PITCH_FACTOR_MAX",
    "PITCH_FACTOR_MIN",
    "QUERY_TOKEN_PARAMS",
    "RSSI_MAX_DBM",
    "RSSI_MIN_DBM",
    "VOLUME_MAX",
    "VOLUME_MIN",
    "DeviceAuthError",
    "DeviceAuthenticator",
    "DeviceIdentity",
    "DeviceSettings",
    "normalize_mac",
    "parse_rssi",
    "token_fingerprint",
]
