"""What the upgrade request says: the three headers we read, the Bearer token, the source address.

The token is taken from ``Authorization: Bearer`` only, never from a query string: URLs are what
access logs and proxies record, so a token found there is refused rather than used. Nothing here
decides who the toy is; it only reads the request, cheaply, before any hashing or crypto.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote_plus

from bridge.toys.credentials.values import DeviceAuthError

MAX_TOKEN_CHARS = 8192  # longer Bearer values are refused before any hashing or parsing
QUERY_TOKEN_PARAMS = frozenset({"token", "access_token", "jwt", "auth"})

_AUTHORIZATION = "authorization"
_MAC_HEADER = "x-device-mac"
_RSSI_HEADER = "x-wifi-rssi"
_READ_HEADERS = (_AUTHORIZATION, _MAC_HEADER, _RSSI_HEADER)


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


def is_private_source(client_ip: str) -> bool:
    """A private or loopback address: development admits such peers without credentials."""
    try:
        address = ipaddress.ip_address(client_ip.strip())
    except ValueError:
        return False
    # Python 3.11 calls every IPv4-mapped IPv6 address private (::ffff:8.8.8.8 included).
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_private or address.is_loopback
