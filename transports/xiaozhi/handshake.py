"""What a xiaozhi device says before the 101: its headers, or a browser's query parameters.

The firmware sends ``Authorization: Bearer <token>``, ``Protocol-Version``, ``Device-Id`` (its
MAC) and ``Client-Id`` (a UUID). A browser cannot set headers, so the same names are read from
the query string too (headers win). Everything here is untrusted and length-checked: the
values end up in logs and in the session's identity.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl

from transports.xiaozhi.framing import VERSIONS

MAX_ID_CHARS = 64
_ID_RE = re.compile(r"[\x21-\x7e]{1,64}")  # visible ASCII: a MAC, a UUID, a browser's name


class HandshakeError(ValueError):
    """The upgrade must be refused with HTTP ``status``."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Handshake:
    device_id: str
    client_id: str
    #: the raw ``Authorization`` value (``Bearer …``), or None
    authorization: str | None
    protocol_version: int


def parse_handshake(headers: Mapping[str, str], query_string: str = "") -> Handshake:
    """The four handshake fields; :class:`HandshakeError` (400) when one is unusable."""
    lowered = {name.lower(): value for name, value in headers.items()}
    query = {name.lower(): value for name, value in parse_qsl(query_string)}

    def field(name: str) -> str | None:
        value = lowered.get(name)
        return value if value is not None else query.get(name)

    device_id = _identifier(field("device-id"), "Device-Id")
    client_id = _identifier(field("client-id"), "Client-Id")
    raw_version = (field("protocol-version") or "1").strip()
    if not raw_version.isdigit() or int(raw_version) not in VERSIONS:
        raise HandshakeError(400, "Protocol-Version must be 1, 2 or 3")
    authorization = field("authorization")
    if authorization is not None and " " not in authorization.strip():
        authorization = f"Bearer {authorization.strip()}"  # a query token comes bare
    return Handshake(device_id, client_id, authorization, int(raw_version))


def _identifier(value: str | None, name: str) -> str:
    if value is None or value == "":
        return ""
    value = value.strip()
    if _ID_RE.fullmatch(value) is None:
        raise HandshakeError(400, f"malformed {name}")
    return value
