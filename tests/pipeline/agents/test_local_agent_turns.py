"""The offline agent's turns: recognition starts in the caller's pause (``prepare``) and the
committed turn takes that result; speech after the pause voids it. Real recogniser, real
voices, a recording output instead of a call."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from pipeline.agents.local.agent import LocalAgent
from pipeline.agents.local.dialogue import RECOGNIZER_PROMPT, Dialogue
from pipeline.agents.local.espeak import EspeakSpeaker
from pipeline.agents.local.hearing import Recognizer
from pipeline.agents.local.intents import guessable, understood
from pipeline.tasks import TaskSet
from pipeline.tools.base import ToolCallRecord, TransferFailed, TransferTarget
from tests.support.voices import espeak_speech

AFTERNOON = datetime(2026, 11, 21, 15, 10, tzinfo=ZoneInfo("UTC"))


class CountingRecognizer(Recognizer):
    """The real recogniser, counting what it was asked to hear."""

    def __init__(self) -> None:
        super().__init__(RECOGNIZER_PROMPT)
        self.heard: list[bytes] = []

    def transcribe(self, pcm16_16k: bytes, *args: Any, **kwargs: Any) -> str:
        self.heard.append(pcm16_16k)
        return super().transcribe(pcm16_16k, *args, **kwargs)


class RecordingOutput:
    """What the agent did to its call: transcripts, audio bytes per turn, hang-ups."""

    def __init__(self) -> None:
        self.tasks = TaskSet("test")
        self.transcripts: list[tuple[int, str, str]] = []
        #: the size of each piece of audio, in the order the agent sent them
        self.pieces: dict[int, list[int]] = {}
        self.hung_up: list[str] = []
        self.captions: list[tuple[int, str]] = []
        self._turns = 0

    @property
    def audio_bytes(self) -> dict[int, int]:
        return {turn_id: sum(sizes) for turn_id, sizes in self.pieces.items()}

    def begin_turn(self) -> int:
        self._turns += 1
        return self._turns

    async def audio(self, turn_id: int, pcm: bytes) -> None:
        self.pieces.setdefault(turn_id, []).append(len(pcm))

    def end_turn(self, turn_id: int) -> None:
        pass

    def commit_turn(self, words: str | None = None) -> int | None:
        raise AssertionError("the local agent's turns come from the endpointer")

    def user_speech_started(self) -> None:
        pass

    def judging_sound(self) -> bool:
        return False

    def interrupt(self) -> None:
        pass

    def caption(self, turn_id: int, text: str) -> None:
        self.captions.append((turn_id, text))

    async def played(self, turn_id: int, position_ms: float | None = None) -> None:
        pass

    def transcript(self, turn_id: int, role: str, text: str) -> None:
        self.transcripts.append((turn_id, role, text))

    def hang_up(self, reason: str) -> None:
        self.hung_up.append(reason)

    def tool_call(self, record: ToolCallRecord) -> None:
        pass

    async def transfer(self, target: TransferTarget) -> None:
        raise TransferFailed("no transfers here")

    async def fail_turn(self, turn_id: int, kind: str) -> None:
        raise AssertionError(f"turn {turn_id} failed: {kind}")


@pytest.fixture(scope="module")
def recognizer() -> CountingRecognizer:
    recognizer = CountingRecognizer()
    recognizer.load()
    return recognizer


def agent(recognizer: Recognizer) -> LocalAgent:
    return LocalAgent(EspeakSpeaker.shared(), recognizer, Dialogue(clock=lambda: AFTERNOON))


async def test_the_pause_starts_recognition_and_the_turn_takes_it(
    recognizer: CountingRecognizer,
) -> None:
    question = espeak_speech("What's the time?", "en-gb-scotland+f3", 16000)
    local, out = agent(recognizer), RecordingOutput()
    await local.start(out)
    recognizer.heard.clear()
    local.prepare(2, question)
    await local.respond(2, question, out)
    assert recognizer.heard == [question]  # heard once: in the pause
    assert (2, "assistant", "It's 3:10 in the afternoon.") in out.transcripts
    # prepared in the pause: "It's 3:10" alone, the caller hears it while the rest is made
    first, rest = out.pieces[2]
    assert 0 < first < 0.7 * (first + rest)
    await local.close()


async def test_speech_after_the_pause_voids_the_early_result(
    recognizer: CountingRecognizer,
) -> None:
    first = espeak_speech("Hello there.", "en-029+m3", 16000)
    longer = first + espeak_speech("What day is it today?", "en-gb-x-rp", 16000)
    local, out = agent(recognizer), RecordingOutput()
    await local.start(out)
    recognizer.heard.clear()
    local.prepare(2, first)
    await local.respond(2, longer, out)  # the caller went on: the committed turn is longer
    assert recognizer.heard[-1] == longer
    assert (2, "assistant", "Today is Saturday, November 21, 2026.") in out.transcripts
    await local.close()


async def test_goodbye_hangs_up_after_the_reply(recognizer: CountingRecognizer) -> None:
    local, out = agent(recognizer), RecordingOutput()
    await local.start(out)
    await local.respond(2, espeak_speech("Thank you, goodbye.", "en-us", 16000), out)
    assert out.hung_up and out.audio_bytes.get(2, 0) > 0
    await local.close()


async def test_a_burst_without_words_gets_no_reply(recognizer: CountingRecognizer) -> None:
    """A cough-like burst (250 ms of shaped noise) that the recogniser hears no words in:
    no "Sorry, I didn't catch that", nothing in the records."""
    rng = np.random.default_rng(0)
    burst = np.convolve(rng.normal(0, 12000, 4000) * np.hanning(4000), np.ones(4) / 4, "same")
    noise = np.concatenate([np.zeros(4800), burst, np.zeros(3200)]).clip(-32768, 32767)
    pcm = noise.astype(np.int16).tobytes()
    assert recognizer.transcribe(pcm, understood, guessable) == ""  # as the agent asks
    local, out = agent(recognizer), RecordingOutput()
    await local.start(out)
    local.prepare(2, pcm)
    await local.respond(2, pcm, out)
    assert 2 not in out.pieces and not [t for t in out.transcripts if t[0] == 2]
    await local.close()


async def test_typed_text_is_answered_without_hearing(recognizer: CountingRecognizer) -> None:
    """A device's typed turn: the dialogue answers the words as they are (no recognition),
    both transcripts are reported, and each spoken piece is captioned before its audio."""
    local, out = agent(recognizer), RecordingOutput()
    await local.start(out)
    recognizer.heard.clear()
    await local.typed(2, "What's the time?", out)
    assert recognizer.heard == []
    assert (2, "user", "What's the time?") in out.transcripts
    assert (2, "assistant", "It's 3:10 in the afternoon.") in out.transcripts
    captions = [text for turn, text in out.captions if turn == 2]
    assert " ".join(captions).replace("  ", " ") == "It's 3:10 in the afternoon."
    assert len(captions) == len(out.pieces[2])
    await local.close()
