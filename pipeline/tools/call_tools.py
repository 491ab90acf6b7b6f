"""Tools a call's far end brings with it (a xiaozhi device's own MCP tools), for that call only.

A persona's tools are known when the call starts; a device's are listed by the device
after the session has opened, and may be listed again. So the transport hands the session
a :class:`CallTools` source (on :class:`~pipeline.agents.base.CallInfo`), and the call's
toolbox asks it for its tools each time the model is offered them: a device whose list has
not arrived yet simply offers nothing this turn. The pipeline never learns what is behind
the source (no transport is imported here).

Names: a device's tool is called ``self.audio_speaker.set_volume``, and function names in
the OpenAI APIs allow only ``[A-Za-z0-9_-]{1,64}``. :func:`function_name` maps a name to
one the model may use (dots and other characters become ``_``, long names are cut and made
unique); the source keeps the original to call the device with.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Collection, Sequence
from typing import Protocol

from pipeline.tools.base import Tool

#: the longest function name the OpenAI APIs accept
MAX_FUNCTION_NAME_CHARS = 64
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


class CallTools(Protocol):
    """A source of one call's own tools (``spec.name`` already a safe function name)."""

    def tools(self) -> Sequence[Tool]:
        """The tools as they are now (empty until the far end has listed them)."""
        ...


def function_name(name: str, taken: Collection[str] = ()) -> str:
    """``name`` as a function name the model may call, different from every name in
    ``taken``: unsafe characters become ``_``; a name too long or already taken keeps its
    start and gets a short hash of the original (so the same name maps the same way)."""
    safe = _UNSAFE.sub("_", name) or "tool"
    if len(safe) <= MAX_FUNCTION_NAME_CHARS and safe not in taken:
        return safe
    digest = hashlib.sha256(name.encode()).hexdigest()
    for extra in range(len(digest) - 8 + 1):
        suffix = "_" + digest[extra : extra + 8]
        candidate = safe[: MAX_FUNCTION_NAME_CHARS - len(suffix)] + suffix
        if candidate not in taken:
            return candidate
    raise ValueError(f"no free function name for {name!r}")  # 57 taken hashes of one name
