"""What a caller wants, from what a recogniser heard: tolerant of paraphrase and mishearing.

A recogniser's text is not what the caller said: punctuation and contractions vary ("what's
the time", "what is the time"), small words go missing ("what time it is"), and a word can
come out misspelt or split ("good bye", "helo"). So an intent is found from cue words, not
from whole sentences: each word heard is compared with the cues, exactly for short words and
by similarity for longer ones, and the first intent (in a fixed order) with a cue wins.

The order settles questions that name two things: "goodbye" beats everything (the caller is
leaving), the time beats the date ("what time is it today"), and both beat "help" (a
misheard "tell me the time" is "help me the time"). Ending the call is the one costly
mistake, so its cues are matched exactly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from difflib import SequenceMatcher

_CONTRACTIONS = {
    "what's": "what is",
    "whats": "what is",
    "it's": "it is",
    "that's": "that is",
    "thats": "that is",
    "i'm": "i am",
    "you're": "you are",
    "o'clock": "oclock",
}
_WORD = re.compile(r"[a-z']+")
#: below this many letters a word must match a cue exactly ("day" is not "they")
_FUZZY_MIN_LETTERS = 4
_FUZZY_RATIO = 0.8


@dataclass(frozen=True, slots=True)
class IntentCues:
    name: str
    #: single words that name the intent
    words: frozenset[str]
    #: word sequences that name it together ("hang up"), matched as a run of words
    phrases: tuple[tuple[str, ...], ...] = ()
    #: compare by similarity as well as exactly
    fuzzy: bool = True


#: checked in this order: the first with a cue in the text wins
INTENTS: tuple[IntentCues, ...] = (
    IntentCues(
        "goodbye",
        frozenset({"goodbye", "bye", "farewell", "goodnight"}),
        (("good", "bye"), ("hang", "up"), ("that", "is", "all"), ("see", "you")),
        fuzzy=False,
    ),
    IntentCues("time", frozenset({"time", "clock", "oclock", "hour"})),
    IntentCues("date", frozenset({"date", "day", "today", "weekday"})),
    IntentCues(
        "help",
        frozenset({"help", "options"}),
        (("what", "can", "you", "do"), ("what", "do", "you", "do")),
    ),
    IntentCues(
        "greeting",
        frozenset({"hello", "hi", "hey", "howdy", "morning", "afternoon", "evening"}),
    ),
    IntentCues("thanks", frozenset({"thanks", "thank"})),
)

#: "repeat after me ..." and the ways a recogniser writes it ("read it after me", "what is
#: it after me"): a few words at most, then "after me" early in the turn, then the words
_REPEAT = re.compile(
    r"^\W*(?:[\w']+\W+){0,4}?after\s+me\b[\s,.:;!?-]*(.*)", re.IGNORECASE | re.DOTALL
)


def normalise(text: str) -> list[str]:
    """Lower-case words without punctuation, contractions spelt out."""
    words: list[str] = []
    for word in _WORD.findall(text.lower().replace("-", " ")):
        words.extend(_CONTRACTIONS.get(word, word).split())
    return words


def _similar(word: str, cue: str) -> bool:
    if word == cue:
        return True
    if len(word) < _FUZZY_MIN_LETTERS or len(cue) < _FUZZY_MIN_LETTERS:
        return False
    return SequenceMatcher(None, word, cue).ratio() >= _FUZZY_RATIO


def _has_phrase(words: list[str], phrase: tuple[str, ...]) -> bool:
    span = len(phrase)
    return any(tuple(words[i : i + span]) == phrase for i in range(len(words) - span + 1))


def _names(cues: IntentCues, words: list[str]) -> bool:
    if any(_has_phrase(words, phrase) for phrase in cues.phrases):
        return True
    if not cues.fuzzy:
        return any(word in cues.words for word in words)
    return any(_similar(word, cue) for word in words for cue in cues.words)


def repeat_request(text: str) -> str | None:
    """The words to repeat if ``text`` asks for it ("" if none were said); else None."""
    found = _REPEAT.search(text)
    if found is None:
        return None
    return found.group(1).strip().rstrip(".!?,;: ").strip()


def intent_of(text: str) -> str | None:
    """The intent ``text`` names, or None."""
    words = normalise(text)
    for cues in INTENTS:
        if _names(cues, words):
            return cues.name
    return None


def meaning(text: str) -> str | None:
    """What the dialogue acts on in ``text``: "repeat" for "repeat after me ...", else its
    intent, or None (it answers "Sorry, I didn't catch that")."""
    return "repeat" if repeat_request(text) is not None else intent_of(text)


def understood(text: str) -> bool:
    """Whether the dialogue has an answer for ``text``: the recogniser's test for a reading
    worth acting on."""
    return meaning(text) is not None


def guessable(text: str) -> bool:
    """:func:`understood`, but not a goodbye: a reading the recogniser was not sure of (its
    second reading) may be answered, but must not end the call ("Hello there." read as
    "Hello, goodbye.")."""
    return meaning(text) not in (None, "goodbye")
