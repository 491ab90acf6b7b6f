"""``${NAME}`` expansion from the environment, and taking the values back out of text."""

from __future__ import annotations

import pytest

from pipeline.tools.config import ToolConfigError
from pipeline.tools.secrets import Secrets


def test_expands_every_reference() -> None:
    secrets = Secrets({"KEY": "sk-123", "HOST": "api.example.com"})
    assert (
        secrets.expand("https://${HOST}/v1?key=${KEY}") == "https://api.example.com/v1?key=sk-123"
    )
    assert secrets.expand("no references, {braces} and $HOME stay") == (
        "no references, {braces} and $HOME stay"
    )


def test_a_missing_variable_fails_naming_it() -> None:
    secrets = Secrets({"KEY": "x"})
    with pytest.raises(ToolConfigError, match="ORDERS_API_KEY"):
        secrets.expand("Bearer ${ORDERS_API_KEY}")


def test_redacts_what_it_expanded_longest_first() -> None:
    secrets = Secrets({"SHORT": "abc", "LONG": "abcdef", "UNUSED": "zzz", "EMPTY": ""})
    secrets.expand("${SHORT} ${LONG} ${EMPTY}")
    assert secrets.redact("key abcdef, then abc, zzz") == "key ${LONG}, then ${SHORT}, zzz"
    # an empty value is never "found" everywhere
    assert secrets.redact("plain text") == "plain text"


def test_redacts_nothing_before_expanding() -> None:
    secrets = Secrets({"KEY": "sk-123"})
    assert secrets.redact("sk-123") == "sk-123"
