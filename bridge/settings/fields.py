"""How a setting is declared, parsed from text and documented.

Every setting is one dataclass field made by :func:`setting`, carrying its variable name,
bounds and description as metadata; parsing, validation errors and the README table all read
that metadata, so the documentation cannot drift from the code.
"""

from __future__ import annotations

import dataclasses
from dataclasses import field
from typing import Any


class SettingsError(ValueError):
    """Raised with every problem found, one per line, so an operator fixes them in one go."""


def setting(
    env: str,
    default: Any,
    doc: str,
    *,
    min_value: float | None = None,
    max_value: float | None = None,
    choices: tuple[str, ...] | None = None,
    aliases: tuple[str, ...] = (),
    secret: bool = False,
) -> Any:
    meta = {
        "env": env,
        "doc": doc,
        "min": min_value,
        "max": max_value,
        "choices": choices,
        "aliases": aliases,
        "secret": secret,
    }
    return field(default=default, metadata=meta)


def markdown_row(f: dataclasses.Field[Any]) -> str:
    """One line of the README's settings table."""
    meta = f.metadata
    names = " / ".join(f"`{n}`" for n in (meta["env"], *meta["aliases"]))
    default = "*(empty)*" if f.default in ("", None) else f"`{f.default}`"
    extra = []
    if meta["choices"]:
        extra.append("one of " + ", ".join(f"`{c}`" for c in meta["choices"]))
    if meta["min"] is not None:
        extra.append(f"{_num(meta['min'])}–{_num(meta['max'])}")
    doc = meta["doc"] + (f" ({'; '.join(extra)})" if extra else "")
    return f"| {names} | {default} | {doc} |"


def _num(value: float | None) -> str:
    return (
        f"{value:,.0f}".replace(",", " ")
        if value is not None and value == int(value)
        else f"{value}"
    )


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def parse(f: dataclasses.Field[Any], raw: str) -> Any:
    meta = f.metadata
    kind: Any = type(f.default)
    value: Any
    if kind is bool:
        low = raw.lower()
        if low not in _TRUE | _FALSE:
            raise ValueError(f"expected true/false, got {raw!r}")
        value = low in _TRUE
    elif kind in (int, float):
        try:
            value = kind(raw)
        except ValueError:
            raise ValueError(f"expected a number, got {raw!r}") from None
        if meta["choices"] and raw not in meta["choices"]:
            raise ValueError(f"{raw!r} is not one of {', '.join(meta['choices'])}")
        lo, hi = meta["min"], meta["max"]
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise ValueError(f"{value} is outside {_num(lo)}–{_num(hi)}")
    else:
        value = raw
        if meta["choices"] and value not in meta["choices"]:
            raise ValueError(f"{value!r} is not one of {', '.join(meta['choices'])}")
    return value
