"""The ``bridge`` argument parser: every command is there, every emulator option documents
its default."""

from __future__ import annotations

import argparse

import pytest

from bridge.cli import build_parser


def subcommand(name: str) -> argparse.ArgumentParser:
    parser = build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    found: argparse.ArgumentParser = sub.choices[name]
    return found


def test_every_command_is_registered() -> None:
    (sub,) = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    assert set(sub.choices) == {
        "serve",
        "call",
        "toy",
        "xiaozhi",
        "dial",
        "talk-link",
        "calls",
        "settings",
    }


@pytest.mark.parametrize("command", ["call", "toy", "xiaozhi"])
def test_emulator_options_show_their_defaults(command: str) -> None:
    parser = subcommand(command)
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        text = action.help or ""
        shown = "%(default)s" in text or "(default: " in text or action.required
        assert shown, f"{command} {action.option_strings}: {text!r}"
        if action.default not in (None, "", False) and not action.required:
            assert "%(default)s" in text, action.option_strings
    help_text = parser.format_help()
    assert "%(default)" not in help_text


def test_call_defaults_let_the_greeting_finish() -> None:
    args = build_parser().parse_args(["call", "--wav", "q.wav", "--out", "r.wav"])
    assert args.barge_in is False
    assert args.quiet_s < args.greeting_wait_s < args.timeout_s
    barging = build_parser().parse_args(["call", "--wav", "q", "--out", "r", "--barge-in"])
    assert barging.barge_in is True
