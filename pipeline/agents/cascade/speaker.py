"""Speaking one reply: its sentences to the speech stage, the audio to the caller, and the
reply's memory of what was sent.

The sentences come from a source as they are written (a chat run), or all at once (fixed
text: a greeting, a farewell). Each attempt is one :class:`SpeechTurn` on the speech stage;
when it fails, the cascade's retry (``pipeline/agents/retry.py``) starts a fresh one, which
speaks again only the sentences after the last one known complete, and only if none of
their audio was sent: nothing the caller heard is ever repeated.

Each sentence is captioned (``caption``) just before its first audio is forwarded, once
across all attempts, so a screen shows it as it starts to play (``pipeline/captions.py``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from pipeline.agents.cascade.memory import SpokenReply
from pipeline.agents.cascade.stages import Attempt, TextToSpeech
from pipeline.agents.retry import Deadline

#: the next sentence of the reply, or None when it is over
NextSentence = Callable[[], Awaitable[str | None]]
#: forwards audio to the caller (the call's playout)
Forward = Callable[[bytes], Awaitable[None]]


@dataclass(slots=True)
class ReplySpeech:
    """One reply's speech, across however many attempts it takes."""

    tts: TextToSpeech
    voice: str
    reply: SpokenReply
    next_sentence: NextSentence
    forward: Forward
    deadline: Deadline
    #: told when the reply can be heard, or a sentence was handed over (the chat reads on)
    on_audible: Callable[[], None] = lambda: None
    #: told each sentence's words just before its first audio goes to the caller
    caption: Callable[[str], None] = lambda text: None
    #: the source said the reply is over
    ended: bool = False
    #: sentences captioned so far
    captioned: int = 0

    def may_retry(self) -> bool:
        """Only while no audio of a sentence not known complete has been sent."""
        return all(span.last <= self.reply.complete_through for span in self.reply.spans)

    async def attempt(self, attempt: Attempt) -> None:
        """One attempt: the sentences not yet spoken, then the rest as they come."""
        reply = self.reply
        base = reply.complete_through + 1

        async def on_audio(pcm: bytes, first: int, last: int) -> None:
            while self.captioned <= min(base + last, len(reply.sentences) - 1):
                self.caption(reply.sentences[self.captioned])
                self.captioned += 1
            await self.forward(pcm)
            reply.add_audio(base + first, base + last, pcm)
            self.deadline.progress()
            self.on_audible()

        turn = self.tts.speak(self.voice, on_audio, attempt)
        try:
            for index in range(base, len(reply.sentences)):
                await turn.say(reply.sentences[index])
                self._spoken(base, turn.spoken_through)
            while not self.ended:
                text = await self.next_sentence()
                if text is None:
                    self.ended = True
                    break
                reply.sentence(text)
                await turn.say(text)
                self._spoken(base, turn.spoken_through)
                self.on_audible()  # handed over: a streaming stage is already at work on it
            await turn.finish()
        except BaseException:
            self._spoken(base, turn.spoken_through)
            await turn.cancel()
            raise
        reply.complete_through = len(reply.sentences) - 1

    def _spoken(self, base: int, spoken_through: int) -> None:
        if spoken_through >= 0:
            self.reply.complete_through = max(self.reply.complete_through, base + spoken_through)


def fixed_text(text: str) -> NextSentence:
    """A source of one sentence (a greeting, a farewell)."""
    pending = [text]

    async def next_sentence() -> str | None:
        return pending.pop() if pending else None

    return next_sentence
