"""Telling a real interruption from a cough, a door or an "uh-huh" (pure: no I/O, no clock).

When the caller's sound starts while the agent speaks, the session stops playback at once and
opens a :class:`Judge` for it. The judge follows the sound frame by frame (the endpointer's
VAD decisions) until one of two things happens:

* the sound **goes on**: speech still heard ``window_ms`` after the sound began is a real
  interruption (no backchannel lasts that long; "Mm-hmm." is about 600 ms);
* the sound **ends** (``end_silence_ms`` of quiet, longer than the pauses inside a sentence):
  then :func:`verdict_of` decides from what the burst was. Without enough voiced audio it was
  not speech (a cough, a line click, a burst of noise); with an agent that can hear words,
  words that are not all backchannels make it real; otherwise it was a backchannel. An agent
  without a recogniser goes by the sound alone: a short voiced sound is what backchannels
  are, once ``short_speech_end_ms`` of quiet shows it was not the first word of a sentence.

A false interruption resumes the reply from where the caller stopped hearing it; a real one
cancels the turn as a barge-in always did.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum

from pipeline.endpointing import FRAME_MS

#: what callers say to show they are listening, not to take the turn (per persona, or the
#: ``BRIDGE_BACKCHANNELS`` setting)
DEFAULT_BACKCHANNELS = (
    "uh huh",
    "mm hmm",
    "mhm",
    "hmm",
    "mm",
    "yeah",
    "yep",
    "yup",
    "yes",
    "okay",
    "ok",
    "right",
    "sure",
    "alright",
    "all right",
    "i see",
    "got it",
    "oh",
)


@dataclass(frozen=True, slots=True)
class InterruptionConfig:
    #: False: any sound that opens a turn while the agent speaks cuts the reply (no judging)
    judge: bool = True
    #: sound still going this long after it began is a real interruption
    window_ms: int = 700
    #: quiet that ends a burst: longer than the pauses inside a sentence ("Hello, | I ..."
    #: pauses 220 ms in tests/fixtures/hello_16k.wav)
    end_silence_ms: int = 300
    #: quiet that ends a voiced sound when no recogniser can tell "Wait, | stop" from "uh-huh"
    #: (piper pauses 300 ms after "Wait,"): only this long a pause says the caller is done
    short_speech_end_ms: int = 500
    #: voiced audio a burst needs to count as speech at all
    min_voiced_ms: int = 60
    #: longest wait for the recogniser's words; past it the caller gets the turn
    words_timeout_ms: int = 1500
    backchannels: tuple[str, ...] = DEFAULT_BACKCHANNELS


class Verdict(Enum):
    REAL = "real"
    #: not an interruption: the reply goes on
    FALSE = "false"


class Sound(Enum):
    GOING_ON = "going on"
    ENDED = "ended"


class Judge:
    """Follows one sound from its start (frame numbers of the endpointer's clock)."""

    def __init__(self, config: InterruptionConfig, started_frame: int) -> None:
        self.started_frame = started_frame
        self._window_frames = config.window_ms // FRAME_MS
        self._end_frames = max(1, config.end_silence_ms // FRAME_MS)

    def step(self, frames: int, last_speech_frame: int, end_ms: int = 0) -> Sound | None:
        """After ``frames`` frames in all, the last of them speech at ``last_speech_frame``:
        has the sound gone on past the window, or ended (after ``end_ms`` of quiet, or the
        configured ``end_silence_ms``)? None: not yet known."""
        if last_speech_frame >= self.started_frame + self._window_frames:
            return Sound.GOING_ON
        end_frames = end_ms // FRAME_MS if end_ms else self._end_frames
        if frames - 1 - last_speech_frame >= end_frames:
            return Sound.ENDED
        return None


def _normalised(text: str) -> str:
    return " ".join(re.sub(r"[^a-z' ]+", " ", text.lower().replace("-", " ")).split())


#: a hum however a recogniser spells it ("mm", "mmm", "hmm", "mhm", "uh", "uhh", "ah"), or a
#: lone letter other than "a" and "i": what is left of a hum it half spelled ("Mm-s.")
_HUM = re.compile(r"(?:h*m+h*)+|h?u+h+|h?a+h+|[b-hj-z]")


class Backchannels:
    """Whether a recognised text is only listening noises ("Yeah, okay." is; "Yeah, but…" is
    not)."""

    def __init__(self, phrases: Iterable[str]) -> None:
        self._phrases = sorted(
            {tuple(_normalised(p).split()) for p in phrases if _normalised(p)},
            key=len,
            reverse=True,
        )

    def only_backchannels(self, text: str) -> bool:
        words = _normalised(text).split()
        at = 0
        while at < len(words):
            for phrase in self._phrases:
                if tuple(words[at : at + len(phrase)]) == phrase:
                    at += len(phrase)
                    break
            else:
                if not _HUM.fullmatch(words[at]):
                    return False
                at += 1
        return True


@dataclass(frozen=True, slots=True)
class Decision:
    verdict: Verdict
    #: why, for logs: "speech went on", "not speech", "backchannel 'Yeah.'", "words 'Stop.'"
    why: str


def verdict_of(
    voiced_ms: int, words: str | None, config: InterruptionConfig, backchannels: Backchannels
) -> Decision:
    """The verdict on a sound that ended: ``voiced_ms`` of it voiced, ``words`` the agent's
    recogniser heard in it (None: the agent has none)."""
    if voiced_ms < config.min_voiced_ms:
        return Decision(Verdict.FALSE, f"not speech ({voiced_ms} ms voiced)")
    if words is None:
        return Decision(Verdict.FALSE, f"short speech ({voiced_ms} ms voiced)")
    if not words.strip():
        return Decision(Verdict.FALSE, "no words")
    if backchannels.only_backchannels(words):
        return Decision(Verdict.FALSE, f"backchannel {words.strip()!r}")
    return Decision(Verdict.REAL, f"words {words.strip()!r}")
