"""``bridge talk-link``: a link to the talk page that lets its holder in for a while."""

from __future__ import annotations

import argparse
import sys
import time
from urllib.parse import urlencode

from bridge.cli.common import SubParsers, settings_or_none


def register(sub: SubParsers) -> None:
    link = sub.add_parser("talk-link", help="print a talk-page link with a short-lived token")
    link.add_argument("--name", default="", help="whom it is for (shown in logs and records)")
    link.add_argument("--persona", default="", help="fix the persona (the page cannot change it)")
    link.add_argument("--ttl", type=int, default=None, help="seconds (BRIDGE_TALK_TOKEN_TTL_S)")
    link.add_argument("--autostart", action="store_true", help="start talking on load (kiosks)")
    link.set_defaults(func=talk_link_command)


def talk_link_command(args: argparse.Namespace) -> int:
    from bridge.browser.route import TALK_PATH, talk_tokens

    settings = settings_or_none()
    if settings is None:
        return 2
    problems = []
    if not settings.talk_secret:
        problems.append("no BRIDGE_TALK_SECRET: tokens cannot be minted")
    if not settings.public_host:
        problems.append("no BRIDGE_PUBLIC_HOST: the link needs the bridge's public name")
    if args.persona and args.persona != "default":
        from bridge.wiring import persona_book

        if args.persona not in persona_book(settings).personas:
            problems.append(f"no persona {args.persona!r} in the personas file")
    if problems:
        print("bridge talk-link: " + "\n  ".join(problems), file=sys.stderr)
        return 2
    tokens = talk_tokens(settings.talk_secret)
    assert tokens is not None
    ttl_s = args.ttl if args.ttl is not None else settings.talk_token_ttl_s
    token = tokens.mint(time.time(), ttl_s, name=args.name, persona=args.persona)
    query = {"token": token, **({"autostart": "1"} if args.autostart else {})}
    print(f"https://{settings.public_host}{TALK_PATH}?{urlencode(query)}")
    return 0
