"""Start-up heap settling (bridge/ops/heap.py), in a fresh interpreter: freezing is process-wide."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

PROGRAM = """
import gc
from bridge.app import create_app
from bridge.ops.heap import settle
from bridge.settings import Settings

app = create_app(Settings.from_env())
garbage = [[]]
garbage[0].append(garbage)  # a cycle nobody can reach: settle() must not keep it forever
del garbage
frozen = settle()
assert frozen == gc.get_freeze_count() > 10_000, frozen
assert gc.collect() == 0  # nothing left to find: the cycle was collected, not frozen
print("ok", frozen)
"""


def test_settle_collects_then_freezes_the_start_up_heap(tmp_path: Path) -> None:
    env = {"PYTHONPATH": str(ROOT), "BRIDGE_AGENT": "echo", "BRIDGE_RECORDS_URL": "none"}
    done = subprocess.run(
        [sys.executable, "-c", PROGRAM],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("ok ")
