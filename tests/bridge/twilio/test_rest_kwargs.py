"""What an outbound call asks Twilio for, as ``calls.create`` keyword arguments."""

from __future__ import annotations

import pytest

from bridge.twilio.paths import public_url
from bridge.twilio.rest import call_create_kwargs


def test_a_call_with_status_callbacks_and_amd() -> None:
    kwargs = call_create_kwargs(
        "+15551234567",
        "+15550009999",
        url="https://voice.example.com/twiml",
        status_callback="https://voice.example.com/twilio/status",
        amd_callback="https://voice.example.com/twilio/amd",
    )
    assert kwargs == {
        "to": "+15551234567",
        "from_": "+15550009999",
        "url": "https://voice.example.com/twiml",
        "status_callback": "https://voice.example.com/twilio/status",
        "status_callback_event": ["initiated", "ringing", "answered", "completed"],
        "status_callback_method": "POST",
        "machine_detection": "DetectMessageEnd",
        "async_amd": "true",
        "async_amd_status_callback": "https://voice.example.com/twilio/amd",
        "async_amd_status_callback_method": "POST",
    }


def test_a_bare_call_asks_for_nothing_more() -> None:
    kwargs = call_create_kwargs("+15551234567", "+15550009999", twiml="<Response/>")
    assert kwargs == {"to": "+15551234567", "from_": "+15550009999", "twiml": "<Response/>"}


def test_only_the_final_status_when_asked() -> None:
    kwargs = call_create_kwargs(
        "+1",
        "+2",
        url="https://h/twiml",
        status_callback="https://h/s",
        status_events=["completed"],
    )
    assert kwargs["status_callback_event"] == ["completed"]
    assert "machine_detection" not in kwargs


@pytest.mark.parametrize("documents", [{}, {"url": "https://h/twiml", "twiml": "<Response/>"}])
def test_exactly_one_of_url_and_twiml(documents: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="exactly one"):
        call_create_kwargs("+1", "+2", **documents)


def test_public_urls() -> None:
    assert public_url("h.example", "/twilio/status") == "https://h.example/twilio/status"
    assert public_url("h.example", "/x", {"a": "b c"}) == "https://h.example/x?a=b+c"
