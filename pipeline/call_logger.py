"""A call's logger: its context on every line, merged with each line's own ``extra``."""

from __future__ import annotations

import logging
from typing import Any


class CallLog(logging.LoggerAdapter):  # type: ignore[type-arg]
    """The call's context (call_id, transport) on every line, merged with a line's own
    ``extra`` (e.g. turn_id); the stock adapter drops the latter before Python 3.13."""

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        kwargs["extra"] = {**(self.extra or {}), **kwargs.get("extra", {})}
        return msg, kwargs

    @classmethod
    def of(cls, logger: logging.Logger, call_id: str, transport: str) -> CallLog:
        return cls(logger, {"call_id": call_id, "transport": transport})
