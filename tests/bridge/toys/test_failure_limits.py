"""Failed-upgrade blocking (spec C10, checklist 6) and agent-start backoff (§7, checklist 22)."""

from __future__ import annotations

import pytest

from bridge.toys.failure_limits import (
    DEFAULT_BACKOFF_MAX_S,
    DEFAULT_BLOCK_S,
    DEFAULT_FAILURE_WINDOW_S,
    DEFAULT_MAX_FAILURES,
    Backoff,
    FailureLimiter,
)
from tests.support.clock import FakeClock

IP = "203.0.113.7"
OTHER_IP = "198.51.100.9"
MAC = "24:0A:C4:12:34:56"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def limiter(clock: FakeClock) -> FailureLimiter:
    return FailureLimiter(clock=clock)


def fail(limiter: FailureLimiter, times: int, *keys: str | None) -> None:
    for _ in range(times):
        limiter.record_failure(*keys)


# ----------------------------------------------------------------------------- FailureLimiter


def test_defaults_follow_the_spec() -> None:
    assert (DEFAULT_MAX_FAILURES, DEFAULT_FAILURE_WINDOW_S, DEFAULT_BLOCK_S) == (10, 60.0, 60.0)


def test_tenth_failure_blocks_so_the_eleventh_attempt_gets_429(
    limiter: FailureLimiter, clock: FakeClock
) -> None:
    for _ in range(DEFAULT_MAX_FAILURES - 1):
        assert not limiter.blocked(IP)
        limiter.record_failure(IP)
        clock.advance(1.0)
    assert not limiter.blocked(IP)
    limiter.record_failure(IP)
    assert limiter.blocked(IP)


def test_block_lifts_after_block_s(limiter: FailureLimiter, clock: FakeClock) -> None:
    fail(limiter, DEFAULT_MAX_FAILURES, IP)
    clock.advance(DEFAULT_BLOCK_S - 0.5)
    assert limiter.blocked(IP)
    clock.advance(0.5)
    assert not limiter.blocked(IP)


def test_after_a_block_a_key_needs_fresh_failures(
    limiter: FailureLimiter, clock: FakeClock
) -> None:
    fail(limiter, DEFAULT_MAX_FAILURES, IP)
    clock.advance(DEFAULT_BLOCK_S)
    fail(limiter, DEFAULT_MAX_FAILURES - 1, IP)
    assert not limiter.blocked(IP)
    limiter.record_failure(IP)
    assert limiter.blocked(IP)


def test_failures_while_blocked_do_not_extend_the_block(
    limiter: FailureLimiter, clock: FakeClock
) -> None:
    fail(limiter, DEFAULT_MAX_FAILURES, IP)
    for _ in range(int(DEFAULT_BLOCK_S) - 1):  # a toy retrying every second through its 429s
        clock.advance(1.0)
        limiter.record_failure(IP)
    clock.advance(1.0)
    assert not limiter.blocked(IP)


def test_failures_outside_the_window_do_not_count(
    limiter: FailureLimiter, clock: FakeClock
) -> None:
    fail(limiter, DEFAULT_MAX_FAILURES - 1, IP)  # all at t = 0
    clock.advance(DEFAULT_FAILURE_WINDOW_S)  # they leave the window
    limiter.record_failure(IP)
    assert not limiter.blocked(IP)


def test_window_slides(limiter: FailureLimiter, clock: FakeClock) -> None:
    for _ in range(DEFAULT_MAX_FAILURES - 1):  # t = 0, 10, …, 80: never 10 inside 60 s
        limiter.record_failure(IP)
        clock.advance(10.0)
    assert not limiter.blocked(IP)
    for _ in range(DEFAULT_MAX_FAILURES):  # 10 more, 5 s apart: the 6 oldest slide out
        limiter.record_failure(IP)
        clock.advance(5.0)
    assert limiter.blocked(IP)


def test_success_clears_the_failure_history(limiter: FailureLimiter) -> None:
    fail(limiter, DEFAULT_MAX_FAILURES - 1, IP)
    limiter.record_success(IP)
    assert len(limiter) == 0
    fail(limiter, DEFAULT_MAX_FAILURES - 1, IP)
    assert not limiter.blocked(IP)


def test_success_does_not_lift_a_block_in_force(limiter: FailureLimiter) -> None:
    fail(limiter, DEFAULT_MAX_FAILURES, IP)
    limiter.record_success(IP)
    assert limiter.blocked(IP)


def test_keys_are_independent(limiter: FailureLimiter) -> None:
    fail(limiter, DEFAULT_MAX_FAILURES, IP, MAC)
    assert limiter.blocked(IP)
    assert limiter.blocked(MAC)
    assert not limiter.blocked(OTHER_IP)
    assert not limiter.blocked(OTHER_IP, None)


def test_any_blocked_key_blocks(limiter: FailureLimiter) -> None:
    fail(limiter, DEFAULT_MAX_FAILURES, MAC)
    assert limiter.blocked(OTHER_IP, MAC)  # same toy, new IP
    assert not limiter.blocked(OTHER_IP)


def test_missing_keys_are_ignored(limiter: FailureLimiter) -> None:
    fail(limiter, DEFAULT_MAX_FAILURES * 2, None, "")
    assert len(limiter) == 0
    assert not limiter.blocked(None, "")
    assert not limiter.blocked()


def test_blocked_check_does_not_create_entries(limiter: FailureLimiter) -> None:
    assert not limiter.blocked(IP, MAC)
    assert len(limiter) == 0


def test_memory_stays_bounded_under_a_flood_of_distinct_keys(clock: FakeClock) -> None:
    max_keys = 1000
    limiter = FailureLimiter(max_keys=max_keys, clock=clock)
    for n in range(200_000):
        limiter.record_failure(f"10.{n >> 16}.{(n >> 8) & 255}.{n & 255}")
        assert len(limiter) <= max_keys
    assert len(limiter) == max_keys


def test_default_bound_holds_under_200k_distinct_keys(clock: FakeClock) -> None:
    limiter = FailureLimiter(clock=clock)
    for n in range(200_000):
        limiter.record_failure(f"key-{n}")
    assert len(limiter) == 100_000


def test_expired_keys_are_evicted_together_when_full(clock: FakeClock) -> None:
    limiter = FailureLimiter(max_keys=3, clock=clock)
    limiter.record_failure("old-1")
    limiter.record_failure("old-2")
    clock.advance(DEFAULT_FAILURE_WINDOW_S + 1)  # old-1 and old-2 have nothing left to remember
    limiter.record_failure("recent")
    limiter.record_failure("newcomer")  # full: every expired key goes, the live one stays
    assert len(limiter) == 2
    fail(limiter, DEFAULT_MAX_FAILURES - 1, "recent")
    assert limiter.blocked("recent")  # its first failure survived the eviction


def test_oldest_key_is_evicted_when_nothing_has_expired(clock: FakeClock) -> None:
    limiter = FailureLimiter(max_failures=2, max_keys=2, clock=clock)
    limiter.record_failure("a")
    limiter.record_failure("b")
    limiter.record_failure("a")  # a is blocked and now the most recently touched
    limiter.record_failure("c")  # evicts b
    assert limiter.blocked("a")
    assert len(limiter) == 2


def test_failure_limiter_rejects_nonsense_configuration() -> None:
    with pytest.raises(ValueError):
        FailureLimiter(max_failures=0)
    with pytest.raises(ValueError):
        FailureLimiter(window_s=0.0)
    with pytest.raises(ValueError):
        FailureLimiter(block_s=-1.0)
    with pytest.raises(ValueError):
        FailureLimiter(max_keys=0)


# ----------------------------------------------------------------------------- Backoff


@pytest.fixture
def backoff(clock: FakeClock) -> Backoff:
    return Backoff(clock=clock)


def test_backoff_doubles_from_1_s_to_a_60_s_cap(backoff: Backoff, clock: FakeClock) -> None:
    waits_s = []
    for _ in range(9):
        wait_s = backoff.failure("toy")
        waits_s.append(wait_s)
        clock.advance(wait_s + 1.0)  # the toy reconnects a second after the wait, fails again
    assert waits_s == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0, 60.0]


def test_blocked_for_counts_down(backoff: Backoff, clock: FakeClock) -> None:
    assert backoff.blocked_for("toy") == 0.0
    backoff.failure("toy")
    backoff.failure("toy")
    assert backoff.blocked_for("toy") == 2.0
    clock.advance(1.5)
    assert backoff.blocked_for("toy") == 0.5
    clock.advance(1.0)
    assert backoff.blocked_for("toy") == 0.0


def test_success_resets_the_backoff(backoff: Backoff, clock: FakeClock) -> None:
    for _ in range(4):
        backoff.failure("toy")
    backoff.success("toy")
    assert backoff.blocked_for("toy") == 0.0
    assert backoff.failure("toy") == 1.0


def test_backoff_keys_are_independent(backoff: Backoff) -> None:
    backoff.failure("toy-a")
    backoff.failure("toy-a")
    assert backoff.blocked_for("toy-b") == 0.0
    assert backoff.failure("toy-b") == 1.0


def test_a_quiet_key_starts_over(backoff: Backoff, clock: FakeClock) -> None:
    for _ in range(5):
        backoff.failure("toy")  # wait now 16 s
    clock.advance(16.0 + DEFAULT_BACKOFF_MAX_S)
    assert backoff.failure("toy") == 1.0


def test_backoff_never_overflows(backoff: Backoff) -> None:
    for _ in range(5000):
        wait_s = backoff.failure("toy")
    assert wait_s == DEFAULT_BACKOFF_MAX_S


def test_backoff_memory_is_bounded(clock: FakeClock) -> None:
    backoff = Backoff(max_keys=500, clock=clock)
    for n in range(200_000):
        backoff.failure(f"toy-{n}")
    assert len(backoff) == 500
    assert backoff.blocked_for("toy-199999") == 1.0


def test_backoff_rejects_nonsense_configuration() -> None:
    with pytest.raises(ValueError):
        Backoff(initial_s=0.0)
    with pytest.raises(ValueError):
        Backoff(initial_s=10.0, max_s=5.0)
    with pytest.raises(ValueError):
        Backoff(max_keys=0)
