"""The call's phases: walk every (phase, request) pair of the table, and the ending helpers."""

from __future__ import annotations

import itertools

import pytest

from pipeline.lifecycle import LISTENING, TRANSITIONS, Ending, Phase, next_phase

ORDER = [Phase.LIVE, Phase.ENDING, Phase.HANGING_UP, Phase.CLOSING, Phase.CLOSED]


@pytest.mark.parametrize(("now", "wanted"), list(itertools.product(Phase, Phase)))
def test_a_request_only_ever_brings_the_end_sooner(now: Phase, wanted: Phase) -> None:
    after = next_phase(now, wanted)
    if after is None:
        # too late: the call is already as far along (or the request is not an ending)
        assert (now, wanted) not in TRANSITIONS
        assert ORDER.index(wanted) <= ORDER.index(now) or wanted is Phase.LIVE
    else:
        assert after is wanted
        assert ORDER.index(after) > ORDER.index(now)


def test_every_phase_can_still_be_torn_down() -> None:
    for phase in Phase:
        if phase is not Phase.CLOSED:
            assert next_phase(phase, Phase.CLOSED) is Phase.CLOSED


def test_the_caller_is_heard_until_the_port_closes() -> None:
    assert {Phase.LIVE, Phase.ENDING, Phase.HANGING_UP} == LISTENING


def test_endings_name_their_phase() -> None:
    assert Ending.politely("idle timeout").via is Phase.ENDING
    assert Ending.politely("drain", farewell=False, close_code=1001).close_code == 1001
    assert Ending.after_audio("goodbye").via is Phase.HANGING_UP
    failure = Ending.now("error", 1011, close_text="internal error")
    assert (failure.via, failure.reason, failure.wire_reason) == (
        Phase.CLOSING,
        "error",
        "internal error",
    )
    assert Ending.now("superseded", 4000).wire_reason == "superseded"
