"""``${NAME}`` references in a tool's URL and headers, and keeping their values out of sight.

A personas file is checked into a repository, so API keys in it are written as
``${ORDERS_API_KEY}`` and read from the environment when the bridge starts. A reference to a
variable that is not set fails start-up with the variable's name: a tool that would answer
401 on every call is worse than a bridge that refuses to start. Every value expanded is
remembered so that :meth:`Secrets.redact` can take it back out of anything about to be
logged or recorded (a URL in an error, a header echoed by a server).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from pipeline.tools.config import ToolConfigError

REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class Secrets:
    """Expands ``${NAME}`` from ``environ`` and redacts what it expanded."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ
        #: value -> the reference it came from
        self._values: dict[str, str] = {}

    def expand(self, template: str) -> str:
        """``template`` with every ``${NAME}`` replaced by its value; raises
        :class:`ToolConfigError` naming the first variable that is not set."""

        def value(match: re.Match[str]) -> str:
            name = match.group(1)
            found = self._environ.get(name)
            if found is None:
                raise ToolConfigError(
                    f"environment variable {name} is not set (referenced as ${{{name}}})"
                )
            if found:
                self._values[found] = f"${{{name}}}"
            return found

        return REFERENCE.sub(value, template)

    def redact(self, text: str) -> str:
        """``text`` with every expanded value put back as its ``${NAME}``, longest first (a
        value that contains another must be replaced whole)."""
        for value in sorted(self._values, key=len, reverse=True):
            if value in text:
                text = text.replace(value, self._values[value])
        return text
