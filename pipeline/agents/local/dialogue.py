"""A small rule-based dialogue that is honest about what it is.

It understands a handful of intents (greeting, the time, the date, help, "repeat after
me", thanks, goodbye) from recognised text, matched with tolerance (``intents.py``).
Everything it says comes from :class:`Phrases`, so operators can change the wording without
touching code. Time comes from an injected clock so replies are testable.
"""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from pipeline.agents.local.intents import intent_of, repeat_request


@dataclass(frozen=True, slots=True)
class Phrases:
    greeting: str = "Hello! I'm a simple offline voice assistant. Ask me the time, or say help."
    help: str = (
        "I can tell you the time or the date, repeat what you say after the words "
        "repeat after me, and say goodbye. I'm a small offline program, not a person."
    )
    time: str = "It's {time}."
    date: str = "Today is {date}."
    not_understood: str = "Sorry, I didn't catch that. You can ask me the time, or say help."
    goodbye: str = "Goodbye! Thanks for calling."
    hello_again: str = "Hello again! What can I do for you?"
    repeat_what: str = "Say repeat after me, and then the words you want me to say."
    thanks: str = "You're welcome. Anything else?"


def load_phrases(path: str | Path | None) -> Phrases:
    """Phrases from a TOML file of ``name = "text"`` lines; missing names keep the default."""
    if not path:
        return Phrases()
    data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    known = {f.name for f in dataclasses.fields(Phrases)}
    unknown = set(data) - known
    if unknown:
        raise ValueError(f"{path}: unknown phrases {sorted(unknown)}; known: {sorted(known)}")
    if not all(isinstance(v, str) for v in data.values()):
        raise ValueError(f"{path}: every phrase must be a string")
    return Phrases(**data)


@dataclass(frozen=True, slots=True)
class Reply:
    text: str
    #: the conversation is over: hang up once this has been heard
    end_call: bool = False


#: what callers say to this dialogue, given to the recogniser as the conversation so far:
#: it steers unclear sounds towards these words without limiting what can be heard
RECOGNIZER_PROMPT = (
    "What time is it? What day is it today? Repeat after me. Hello. Help. Thank you, goodbye."
)
#: what to expect of a short sound over a reply: a backchannel, or a short "stop". With the
#: dialogue's own prompt, Whisper tiny read piper's "Uh huh." as "I have." and "Mm-hmm." as
#: "In a month.". With this one (first reading only), over μ-law from 8 backchannels and 6
#: short interruptions ("Stop.", "Wait.", "No.", "Hold on.", "Sorry?", "What?") said by 5
#: voices: 33 of 40 backchannels read as backchannels (misses: hums read as words, "Got it"
#: as "Stop it", "Sure" as "Here"), and none of the 30 interruptions. Asking it to prefer a
#: backchannel (the second reading) missed fewer backchannels but read "Stop." as "Uh-huh.".
BACKCHANNEL_PROMPT = "Uh-huh. Mm-hmm. Yeah. Okay. Right. I see. Sure. Got it. Stop. Wait. No. Hey."


def spoken_time(moment: datetime) -> str:
    """'ten past three in the afternoon' style is hard to get right; digits read well."""
    hour = moment.hour % 12 or 12
    period = (
        "in the morning"
        if moment.hour < 12
        else "in the afternoon"
        if moment.hour < 18
        else "in the evening"
    )
    return f"{hour}:{moment.minute:02d} {period}"


def spoken_date(moment: datetime) -> str:
    return f"{moment.strftime('%A')}, {moment.strftime('%B')} {moment.day}, {moment.year}"


class Dialogue:
    def __init__(
        self,
        phrases: Phrases | None = None,
        timezone: str = "UTC",
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.phrases = phrases or Phrases()
        zone = ZoneInfo(timezone)
        self._clock = clock or (lambda: datetime.now(zone))

    def greeting(self) -> Reply:
        return Reply(self.phrases.greeting)

    def reply(self, heard: str) -> Reply:
        """Answer one recognised utterance (possibly empty)."""
        text = heard.strip()
        if not text:
            return Reply(self.phrases.not_understood)
        words = repeat_request(text)
        if words is not None:
            return Reply(words + "." if words else self.phrases.repeat_what)
        intent = intent_of(text)
        now = self._clock()
        if intent == "goodbye":
            return Reply(self.phrases.goodbye, end_call=True)
        if intent == "help":
            return Reply(self.phrases.help)
        if intent == "date":
            return Reply(self.phrases.date.format(date=spoken_date(now)))
        if intent == "time":
            return Reply(self.phrases.time.format(time=spoken_time(now)))
        if intent == "greeting":
            return Reply(self.phrases.hello_again)
        if intent == "thanks":
            return Reply(self.phrases.thanks)
        return Reply(self.phrases.not_understood)
