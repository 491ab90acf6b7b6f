"""``bridge calls`` and ``bridge calls show``: read the call records."""

from __future__ import annotations

import argparse
import sys

from bridge.cli.common import SubParsers
from bridge.settings import Settings, SettingsError

DEFAULT_LIMIT = 20


def register(sub: SubParsers) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--url", help="records database (default BRIDGE_RECORDS_URL)")
    common.add_argument("--json", action="store_true", help="JSON instead of text")
    calls = sub.add_parser("calls", parents=[common], help="list recent call records")
    calls.add_argument(
        "--limit", type=int, default=DEFAULT_LIMIT, help="how many calls (newest first)"
    )
    calls.set_defaults(func=calls_command, action="list")
    calls_sub = calls.add_subparsers(dest="action")
    calls_show = calls_sub.add_parser(
        "show", parents=[common], help="one call, turn by turn, with its tool calls"
    )
    calls_show.add_argument("call_id")


def calls_command(args: argparse.Namespace) -> int:
    from bridge.call_records import report
    from bridge.call_records.store import open_store
    from bridge.call_records.url import parse_records_url

    try:
        url = args.url if args.url is not None else Settings.from_env().records_url
        target = parse_records_url(url)
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        return 2
    if target is None:
        print("call records are off (BRIDGE_RECORDS_URL=none)", file=sys.stderr)
        return 1
    try:
        store = open_store(target, create=False)
    except Exception as exc:
        print(f"cannot open the call records ({target.describe()}): {exc}", file=sys.stderr)
        return 1
    try:
        if args.action == "show":
            found = store.call(args.call_id)
            if found is None:
                print(f"no call {args.call_id!r}", file=sys.stderr)
                return 1
            print(report.call_json(found) if args.json else report.call_text(found))
        else:
            calls = store.recent_calls(args.limit)
            print(report.calls_json(calls) if args.json else report.calls_table(calls))
    finally:
        store.close()
    return 0
