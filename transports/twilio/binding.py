"""Per-call stream tokens: tie a Media Stream to the webhook request that asked for it.

Why: the ``/stream`` upgrade is signed by Twilio, but the signature covers only the URL, which
is the same for every call. A captured upgrade (headers and all) could therefore be replayed to
open a stream that claims any CallSid. The voice webhook (``/twiml``, whose signature covers
the CallSid) puts a short-lived token into the ``<Stream>``'s ``<Parameter>``s; Twilio hands it
back in ``start.customParameters``, and the stream is served only when the token was minted
for exactly ``start.callSid`` and has not expired.

Token: ``v1.<expiry, unix seconds>.<base64url HMAC-SHA256 over "v1|<CallSid>|<expiry>">``.
The HMAC key is derived from the Twilio auth token (never the token itself, so a leaked stream
token says nothing usable about the auth token). During a rotation tokens are minted with the
primary token's key and accepted under either key.

Pure: no sockets, no clock (callers pass ``now_s``), no asyncio.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass

#: the ``<Parameter name>`` carrying the token
PARAMETER = "bridge_stream_token"
VERSION = "v1"
_KEY_LABEL = b"voice-bridge twilio stream token v1"
#: longest value looked at: a real token is ~60 characters
MAX_TOKEN_CHARS = 256


class BindingError(Exception):
    """The token does not bind this stream to its call; ``reason`` is safe to log."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def derive_key(auth_token: str) -> bytes:
    return hmac.new(auth_token.encode("utf-8"), _KEY_LABEL, hashlib.sha256).digest()


def _mac(key: bytes, call_sid: str, expiry_s: int) -> str:
    message = f"{VERSION}|{call_sid}|{expiry_s}".encode()
    digest = hmac.new(key, message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


@dataclass(frozen=True)
class StreamTokens:
    """Mints and checks stream tokens with keys derived from the Twilio auth token(s)."""

    keys: tuple[bytes, ...]
    ttl_s: float

    @classmethod
    def from_auth_tokens(cls, auth_tokens: Sequence[str], ttl_s: float) -> StreamTokens:
        """The first token mints; every non-empty one verifies."""
        keys = tuple(derive_key(token) for token in auth_tokens if token)
        if not keys:
            raise ValueError("stream tokens need at least one auth token")
        return cls(keys, ttl_s)

    def mint(self, call_sid: str, now_s: float) -> str:
        expiry_s = int(now_s + self.ttl_s)
        return f"{VERSION}.{expiry_s}.{_mac(self.keys[0], call_sid, expiry_s)}"

    def verify(self, token: str | None, call_sid: str, now_s: float) -> None:
        """Return when ``token`` was minted by us for ``call_sid`` and is unexpired; else raise."""
        if not token:
            raise BindingError("no stream token in customParameters")
        if len(token) > MAX_TOKEN_CHARS or not token.isascii():
            raise BindingError("malformed stream token")
        parts = token.split(".")
        if len(parts) != 3 or parts[0] != VERSION or not parts[1].isdigit():
            raise BindingError("malformed stream token")
        expiry_s = int(parts[1])
        expected = (_mac(key, call_sid, expiry_s) for key in self.keys)
        if not any(hmac.compare_digest(mac, parts[2]) for mac in expected):
            # a forged token and one minted for another call look the same, by design
            raise BindingError("stream token was not issued for this CallSid")
        if now_s > expiry_s:
            raise BindingError(f"stream token expired {now_s - expiry_s:.0f} s ago")
