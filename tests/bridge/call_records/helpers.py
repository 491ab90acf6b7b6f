"""Opening a store by URL, writing rows through it, and a stand-in for a live call."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, cast

from bridge.call_records.model import CallDetail, Row, ToolCallRow
from bridge.call_records.store import RecordStore, open_store
from bridge.call_records.url import parse_records_url
from pipeline.agents.base import CallInfo
from pipeline.audio import PCM16_16K
from pipeline.observers import ObservedCall, SessionStats


@contextmanager
def opened(url: str, *, create: bool = True) -> Iterator[RecordStore]:
    target = parse_records_url(url)
    assert target is not None
    store = open_store(target, create=create)
    try:
        yield store
    finally:
        store.close()


def write(url: str, *batches: list[Row]) -> None:
    """Each batch in a transaction of its own, in order (as the writer thread would)."""
    with opened(url) as store:
        for batch in batches:
            store.write(batch)


def detail(url: str, call_id: str) -> CallDetail:
    with opened(url, create=False) as store:
        found = store.call(call_id)
    assert found is not None, f"no call {call_id}"
    return found


class FakeCall:
    """What CallRecorder reads of a session: its info, its stats and how it ended."""

    def __init__(self, call_id: str = "CA1", transport: str = "twilio") -> None:
        self.call = CallInfo(
            call_id, transport, PCM16_16K, caller="********1111", callee="+15550002222"
        )
        self.stats = SessionStats()
        self.end_reason = ""

    @property
    def observed(self) -> ObservedCall:
        """This, typed as the hooks take it (it has no port, log or taps: none are used)."""
        return cast(ObservedCall, self)


def tool_row(call_id: str, *values: Any, **named: Any) -> ToolCallRow:
    """A tool call row written call id first, as its table's key reads."""
    return ToolCallRow(*values, **{**named, "call_id": call_id})
