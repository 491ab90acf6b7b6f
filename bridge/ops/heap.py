"""Keep the start-up heap out of the garbage collector's way.

By the time the bridge serves, it holds ~110 000 long-lived objects (modules, the openai
library's models, agent tables). Python's full (generation 2) collection walks all of them:
64 ms on this machine, during which no call's audio is paced and no turn moves on. Full
collections come back every time enough new objects survive, so a busy server would stall
every few minutes. Freezing what exists once start-up is done (after one collection, so no
garbage is kept forever) leaves only the objects created since for the collector to walk.
"""

from __future__ import annotations

import gc
import logging
import time

log = logging.getLogger("bridge.ops.heap")


def settle() -> int:
    """Collect start-up garbage, then freeze every survivor; returns how many were frozen."""
    started = time.perf_counter()
    gc.collect()
    gc.freeze()
    frozen = gc.get_freeze_count()
    log.info(
        "start-up heap settled: %d objects frozen out of the garbage collector "
        "(one full collection took %.0f ms)",
        frozen,
        (time.perf_counter() - started) * 1000,
    )
    return frozen
