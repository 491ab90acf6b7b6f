"""Intents from what a recogniser writes: paraphrases, contractions and mishearings."""

from __future__ import annotations

import pytest

from pipeline.agents.local.intents import (
    guessable,
    intent_of,
    normalise,
    repeat_request,
    understood,
)


@pytest.mark.parametrize(
    ("heard", "intent"),
    [
        ("What's the time?", "time"),
        ("Tell me the time.", "time"),
        ("what time it is", "time"),
        ("Could you tell me the hour?", "time"),
        ("What time is it today?", "time"),  # the time beats the date
        ("What day is it?", "date"),
        ("What's the date today?", "date"),
        ("Which weekday is it?", "date"),
        ("Help me the time, please.", "time"),  # a misheard "tell me": not help
        ("Help.", "help"),
        ("What can you do?", "help"),
        ("Bye!", "goodbye"),
        ("Thank you, goodbye.", "goodbye"),
        ("Good bye then.", "goodbye"),
        ("OK, that's all.", "goodbye"),
        ("Bye-bye, hi.", "goodbye"),  # leaving beats greeting
        ("Hello there.", "greeting"),
        ("Helo!", "greeting"),  # misspelt by the recogniser: similar enough
        ("Good morning.", "greeting"),
        ("Thank you.", "thanks"),
        ("Purple elephants.", None),
        ("", None),
    ],
)
def test_intents(heard: str, intent: str | None) -> None:
    assert intent_of(heard) == intent


@pytest.mark.parametrize("heard", ["I'd like to buy a car.", "Goodness me.", "Byte order."])
def test_ending_the_call_needs_an_exact_cue(heard: str) -> None:
    assert intent_of(heard) != "goodbye"


@pytest.mark.parametrize(
    ("heard", "words"),
    [
        ("Repeat after me, the purple elephant dances.", "the purple elephant dances"),
        ("Can you repeat after me? I like green apples!", "I like green apples"),
        ("Can you read it after me? Purple elephant dancing.", "Purple elephant dancing"),
        ("repeat after me", ""),
        ("What time is it?", None),
        ("I went there after lunch, after me.", None),  # not at the start of the turn
    ],
)
def test_repeat_requests(heard: str, words: str | None) -> None:
    assert repeat_request(heard) == words


def test_normalise_spells_out_contractions() -> None:
    assert normalise("What's the time? It's 3 o'clock!") == [
        "what",
        "is",
        "the",
        "time",
        "it",
        "is",
        "oclock",
    ]


@pytest.mark.parametrize(
    ("heard", "is_understood", "is_guessable"),
    [
        ("What day is it?", True, True),
        ("Thank you.", True, True),
        ("Hello, goodbye.", True, False),  # a guess must not end the call
        ("Repeat after me, goodbye.", True, True),  # repeating it ends nothing
        ("The long air.", False, False),
        ("", False, False),
    ],
)
def test_what_a_second_reading_may_be(heard: str, is_understood: bool, is_guessable: bool) -> None:
    assert understood(heard) is is_understood
    assert guessable(heard) is is_guessable
