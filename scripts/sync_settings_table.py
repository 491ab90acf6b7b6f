"""Rewrite README.md's settings table from bridge/settings.py (``make docs``)."""

from __future__ import annotations

from pathlib import Path

from bridge.settings import Settings

START, END = "<!-- settings-table:start -->", "<!-- settings-table:end -->"


def main() -> None:
    readme = Path(__file__).resolve().parent.parent / "README.md"
    text = readme.read_text(encoding="utf-8")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    readme.write_text(f"{head}{START}\n{Settings.markdown_table()}\n{END}{tail}", encoding="utf-8")


if __name__ == "__main__":
    main()
