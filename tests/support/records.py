"""Stores for the call-record tests: a SQLite file, or a private schema in PostgreSQL.

PostgreSQL comes from ``BRIDGE_TEST_POSTGRES_URL`` (``make test`` sets it from
scripts/postgres.sh), else from that script's default address. When neither answers, the
PostgreSQL cases skip, except under ``CI=true`` (or with the variable set), where they fail.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest

from bridge.call_records.model import CallDetail
from bridge.call_records.store import open_store
from bridge.call_records.url import parse_records_url
from pipeline.agents.base import AgentOutput
from tests.fakes.agents import TONE_SPEC, ToneAgent, tone_pcm

#: where scripts/postgres.sh puts its server
DEFAULT_POSTGRES_URL = "postgresql://bridge_test:bridge_test@127.0.0.1:54329/bridge_test"


def postgres_base_url() -> str:
    configured = os.environ.get("BRIDGE_TEST_POSTGRES_URL", "")
    url = configured or DEFAULT_POSTGRES_URL
    try:
        psycopg.connect(url, connect_timeout=3).close()
    except psycopg.Error as exc:
        message = f"no PostgreSQL at {url}: {exc}"
        if configured or os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message + " (run scripts/postgres.sh)")
    return url


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A URL whose connections see only a fresh schema of their own (search_path)."""
    base = postgres_base_url()
    schema = f"test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(base, autocommit=True) as db:
        db.execute(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in base else "?"
    yield f"{base}{sep}options={quote(f'-c search_path={schema}')}"
    with psycopg.connect(base, autocommit=True) as db:
        db.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'records' / 'calls.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


def read_call(url: str, call_id: str) -> CallDetail | None:
    target = parse_records_url(url)
    assert target is not None
    store = open_store(target, create=False)
    try:
        return store.call(call_id)
    finally:
        store.close()


def wait_for_call(
    url: str, call_id: str, *, ended: bool = True, timeout_s: float = 15.0
) -> CallDetail:
    """The call's record once the writer thread has put it there (it writes asynchronously)."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = None
        try:
            found = read_call(url, call_id)
        except Exception:
            if time.monotonic() > deadline:
                raise
        if found is not None and (not ended or found.summary.call.ended_at_s is not None):
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"no {'ended ' if ended else ''}record of {call_id}: {found}")
        time.sleep(0.05)


class TranscriptAgent(ToneAgent):
    """A tone agent that also reports what it 'heard' and 'said', like an STT/TTS agent, and
    answers keypad entries (each one a turn of its own, recorded with its digits)."""

    uses_keypad = True

    async def respond(self, turn_id: int, utterance: bytes, out: AgentOutput) -> None:
        n = len(self.utterances) + 1
        out.transcript(turn_id, "user", f"question {n}")
        out.transcript(turn_id, "assistant", f"answer {n}")
        await super().respond(turn_id, utterance, out)

    async def keypad(self, turn_id: int, digits: str, out: AgentOutput) -> None:
        out.transcript(turn_id, "assistant", f"you pressed {digits}")
        pcm = tone_pcm(self.reply_ms)
        step = TONE_SPEC.bytes_for_ms(100)
        for i in range(0, len(pcm), step):
            await out.audio(turn_id, pcm[i : i + step])
