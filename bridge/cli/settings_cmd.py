"""``bridge settings``: the effective settings (secrets redacted), or the README table."""

from __future__ import annotations

import argparse
import json
import sys

from bridge.cli.common import SubParsers
from bridge.settings import Settings, SettingsError


def register(sub: SubParsers) -> None:
    show = sub.add_parser("settings", help="print the effective settings")
    show.add_argument("--markdown", action="store_true", help="the README table of all settings")
    show.set_defaults(func=settings_command)


def settings_command(args: argparse.Namespace) -> int:
    if args.markdown:
        print(Settings.markdown_table())
        return 0
    try:
        print(json.dumps(Settings.from_env().redacted(), indent=2))
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        return 2
    return 0
