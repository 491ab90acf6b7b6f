"""Rewrite the settings tables of README.md and DEPLOYMENT.md from bridge/settings.py.

Run by ``make docs``; tests/bridge/test_docs.py fails when a table is stale.
"""

from __future__ import annotations

from pathlib import Path

from bridge.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
DOCS = (ROOT / "README.md", ROOT / "DEPLOYMENT.md")
START, END = "<!-- settings-table:start -->", "<!-- settings-table:end -->"


def settings_table_of(text: str) -> str:
    return text.split(START, 1)[1].split(END, 1)[0].strip()


def main() -> None:
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        head, rest = text.split(START, 1)
        _, tail = rest.split(END, 1)
        table = Settings.markdown_table()
        doc.write_text(f"{head}{START}\n{table}\n{END}{tail}", encoding="utf-8")


if __name__ == "__main__":
    main()
