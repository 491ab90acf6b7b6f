"""Reading Twilio's callback fields, and finding a transfer's target again."""

from __future__ import annotations

import pytest

from bridge.twilio.callbacks import (
    BadField,
    address_of,
    call_sid_of,
    duration_of,
    persona_of,
    target_of,
    word_of,
)
from pipeline.agents.persona import Persona, PersonaBook
from pipeline.tools.base import TransferTarget

SID = "CA" + "0123456789abcdef" * 2
BILLING = TransferTarget("billing", "+15551230002", "Billing")
SHOP = Persona(name="shop", transfer=(BILLING,))
BOOK = PersonaBook(Persona(), {"shop": SHOP}, numbers={"+15550002222": "shop"})


def test_call_sid() -> None:
    assert call_sid_of({"CallSid": SID}) == SID
    assert call_sid_of({}, required=False) == ""
    for form, message in [({}, "CallSid missing"), ({"CallSid": "CA12"}, "malformed")]:
        with pytest.raises(BadField, match=message):
            call_sid_of(form)
    with pytest.raises(BadField, match="malformed"):
        call_sid_of({"CallSid": "CA12"}, required=False)


@pytest.mark.parametrize("value", ["", "x" * 41, "Completed", "in progress", "a;b", "é"])
def test_status_words_are_lower_case_tokens(value: str) -> None:
    with pytest.raises(BadField, match="CallStatus"):
        word_of({"CallStatus": value}, "CallStatus")


def test_status_words_accepted() -> None:
    for value in ("in-progress", "no-answer", "machine_end_beep", "human"):
        assert word_of({"W": value}, "W") == value


@pytest.mark.parametrize(
    ("value", "expected"), [("", None), ("0", 0.0), ("42", 42.0), ("1.5", 1.5)]
)
def test_duration(value: str, expected: float | None) -> None:
    assert duration_of({"CallDuration": value} if value else {}) == expected


@pytest.mark.parametrize("value", ["soon", "nan", "inf", "-1", "1e9"])
def test_bad_durations(value: str) -> None:
    with pytest.raises(BadField, match="CallDuration"):
        duration_of({"CallDuration": value})


def test_addresses() -> None:
    assert address_of({"From": "client:alice"}, "From") == "client:alice"
    assert address_of({}, "To") == ""
    with pytest.raises(BadField, match="To too long"):
        address_of({"To": "1" * 257}, "To")


def test_the_persona_is_found_the_way_the_session_found_it() -> None:
    assert persona_of(BOOK, "shop", "+19999999999") is SHOP
    assert persona_of(BOOK, "", "+15550002222") is SHOP  # by the called number
    assert persona_of(BOOK, "ghost", "+15550002222") is SHOP  # unknown name: as for_call
    assert persona_of(BOOK, "", "+19999999999") is BOOK.default
    assert target_of(SHOP, "billing") is BILLING
    assert target_of(SHOP, "sales") is None
    assert target_of(BOOK.default, "billing") is None
