"""The offline agent's memory of sentences it has spoken, over the real espeak-ng voice."""

from __future__ import annotations

import threading

from pipeline.agents.local.espeak import EspeakSpeaker
from pipeline.agents.local.speech_cache import CachedSpeaker
from pipeline.agents.local.voice import Speaker


class Counting(Speaker):
    """The real espeak voice, counting what it is asked to synthesise."""

    def __init__(self) -> None:
        self.inner = EspeakSpeaker.shared()
        self.asked: list[str] = []

    @property
    def rate_hz(self) -> int:
        return self.inner.rate_hz

    def load(self) -> None:
        self.inner.load()

    def synthesize(self, text: str) -> bytes:
        self.asked.append(text)
        return self.inner.synthesize(text)


def test_a_sentence_is_synthesised_once_and_replayed_the_same() -> None:
    voice = Counting()
    cached = CachedSpeaker(voice)
    first = cached.synthesize("Sorry, I didn't catch that.")
    assert cached.synthesize("Sorry, I didn't catch that.") == first
    assert cached.synthesize("Hello again!") != first
    assert voice.asked == ["Sorry, I didn't catch that.", "Hello again!"]
    assert (cached.hits, cached.misses) == (1, 2)
    assert cached.rate_hz == voice.rate_hz


def test_the_least_recently_used_sentences_go_first_within_the_budget() -> None:
    voice = Counting()
    one = len(voice.synthesize("One."))
    cached = CachedSpeaker(voice, budget_bytes=int(2.5 * one))  # about two short words
    for word in ("One.", "Two.", "One.", "Three."):  # "Two." is now the oldest
        cached.synthesize(word)
    voice.asked.clear()
    cached.synthesize("One.")
    cached.synthesize("Two.")
    assert voice.asked == ["Two."]


def test_speech_longer_than_the_budget_is_spoken_not_kept() -> None:
    voice = Counting()
    cached = CachedSpeaker(voice, budget_bytes=1000)
    assert cached.synthesize("A sentence far longer than a thousand bytes of audio.")
    cached.synthesize("A sentence far longer than a thousand bytes of audio.")
    assert len(voice.asked) == 2


def test_calls_share_it_from_many_threads() -> None:
    voice = Counting()
    cached = CachedSpeaker(voice)
    results: list[bytes] = []

    def speak() -> None:
        for _ in range(5):
            results.append(cached.synthesize("Goodbye! Thanks for calling."))

    threads = [threading.Thread(target=speak) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 20 and len(set(results)) <= len(voice.asked) <= 4
    assert cached.hits + cached.misses == 20
