"""The talk page: who may open it."""

from __future__ import annotations

from dataclasses import dataclass

from bridge.settings.fields import setting


@dataclass(frozen=True)
class BrowserSettings:
    talk_secret: str = setting(
        "BRIDGE_TALK_SECRET",
        "",
        "Signs the short-lived tokens of the talk page (`/talk?token=…`, minted by `bridge "
        "talk-link`). Empty: the page opens only from private addresses, and not at all in "
        "production.",
        secret=True,
    )
    talk_token_ttl_s: int = setting(
        "BRIDGE_TALK_TOKEN_TTL_S",
        900,
        "How long a talk-page token minted by `bridge talk-link` lets its holder connect.",
        min_value=30,
        max_value=7 * 86_400,
    )
