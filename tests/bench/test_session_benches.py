"""The per-session load benches still speak their transports: one emulated client of each
kind against a real ``bridge serve`` gets its speech echoed, with no failure and no warning
from the server (the figures themselves are the benches' business, not a test's)."""

from __future__ import annotations

import math
import os

import pytest

from bench.browser_load import PAGES
from bench.sessions import SessionBench, run_level
from bench.toy_load import TOYS
from bench.xiaozhi_load import DEVICES


@pytest.mark.parametrize("bench", [TOYS, PAGES, DEVICES], ids=lambda b: b.noun)
async def test_one_client_is_answered(bench: SessionBench) -> None:
    core = min(os.sched_getaffinity(0))
    result = await run_level(bench, 1, seconds=7.0, warmup_s=1.0, server_core=core)
    assert result.replies >= 1 and result.reply_audio_pct > 0
    assert not math.isnan(result.p50_ms) and result.p50_ms < 2000
    assert result.failed == 0 and result.errors == 0 and result.gaps == 0
    assert result.server_warnings == 0
    assert result.cpu_ms_per_session_s > 0 and result.sessions_per_core > 0
