"""Pieces every ``bridge`` sub-command shares."""

from __future__ import annotations

import argparse
import sys
from typing import TypeAlias

from bridge.settings import Settings, SettingsError

#: the type of ``parser.add_subparsers()``, which each command module registers itself with
SubParsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def settings_or_none() -> Settings | None:
    """The settings, or None after printing every problem (the command then exits 2)."""
    try:
        return Settings.from_env()
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        return None
