"""Short-lived tokens for the talk page: whoever holds one may talk to the agent for a while.

A token is ``<claims>.<signature>``, both base64url: the claims are JSON (``exp``, the Unix
time it expires; ``name``, whom it was minted for, for logs and records; ``persona``, a
persona it fixes, or empty), the signature their HMAC-SHA256 under ``BRIDGE_TALK_SECRET``.
No state on the server: any instance with the secret checks any token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass


class TokenError(ValueError):
    """The token is malformed, forged or expired (the reason says which, for the log)."""


@dataclass(frozen=True, slots=True)
class TalkClaims:
    expires_at_s: float
    name: str = ""
    persona: str = ""


class TalkTokens:
    def __init__(self, secret: str) -> None:
        if len(secret) < 16:
            raise ValueError("BRIDGE_TALK_SECRET must be at least 16 characters")
        self._key = secret.encode()

    def mint(self, now_s: float, ttl_s: float, name: str = "", persona: str = "") -> str:
        claims = {"exp": int(now_s + ttl_s), "name": name, "persona": persona}
        body = _b64(json.dumps(claims, separators=(",", ":")).encode())
        return f"{body}.{_b64(self._sign(body))}"

    def verify(self, token: str, now_s: float) -> TalkClaims:
        body, _, signature = token.partition(".")
        if not body or not signature or len(token) > 1024:
            raise TokenError("malformed token")
        try:
            given = base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))
        except ValueError as exc:
            raise TokenError("malformed token") from exc
        if not hmac.compare_digest(given, self._sign(body)):
            raise TokenError("bad signature")
        try:
            claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
            expires_at_s = float(claims["exp"])
            name, persona = str(claims.get("name", "")), str(claims.get("persona", ""))
        except (ValueError, KeyError, TypeError) as exc:
            raise TokenError("malformed claims") from exc
        if now_s >= expires_at_s:
            raise TokenError("expired token")
        return TalkClaims(expires_at_s, name, persona)

    def _sign(self, body: str) -> bytes:
        return hmac.new(self._key, body.encode(), hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")
