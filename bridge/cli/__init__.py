"""``bridge`` command line: serve the bridge, emulate a caller or a toy, read the call records,
print the settings table."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from bridge.cli import call, dial, records, serve, settings_cmd, talk, toy, xiaozhi

#: one module per command group, in the order ``bridge --help`` lists them
COMMANDS = (serve, call, toy, xiaozhi, dial, talk, records, settings_cmd)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bridge", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
