"""What a bench run's call records hold: its turns, call by call."""

from __future__ import annotations

from bridge.call_records.model import TurnRow
from bridge.call_records.store import open_store
from bridge.call_records.url import parse_records_url


def turns_by_call(records_url: str) -> dict[str, list[TurnRow]]:
    """Every call in the records at ``records_url``, with its turns."""
    target = parse_records_url(records_url)
    assert target is not None
    store = open_store(target, create=False)
    try:
        calls: dict[str, list[TurnRow]] = {}
        for summary in store.recent_calls(100_000):
            call = store.call(summary.call.call_id)
            calls[summary.call.call_id] = call.turns if call else []
        return calls
    finally:
        store.close()
