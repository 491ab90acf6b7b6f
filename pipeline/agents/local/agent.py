"""The offline agent: hear (Whisper tiny.en), decide (rule-based dialogue), speak (piper).

The whole answer is prepared when the caller pauses (:meth:`LocalAgent.prepare`): the words
recognised, the reply chosen and its first few words synthesised, so the rest of the
endpointer's silence window hides all three (on one core: ~0.2 s to hear, 0.1-0.2 s for each
second of speech piper makes, nothing for a phrase said before). The committed turn plays
that answer if its audio is the same, and starts afresh if the caller spoke on. Choosing a
reply has no side effects, so preparing one that is never played costs only the CPU.

Typed text (a device's text input) skips the hearing: the dialogue answers the words as
they are. Each spoken piece of a reply is captioned just before its audio.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from pipeline.agents.base import Agent, AgentFactory, AgentOutput, CallInfo
from pipeline.agents.early import EarlyWork
from pipeline.agents.local.dialogue import (
    BACKCHANNEL_PROMPT,
    RECOGNIZER_PROMPT,
    Dialogue,
    Phrases,
    Reply,
)
from pipeline.agents.local.espeak import EspeakSpeaker
from pipeline.agents.local.hearing import RECOGNIZER_RATE_HZ, Recognizer
from pipeline.agents.local.intents import guessable, understood
from pipeline.agents.local.speech_cache import CachedSpeaker
from pipeline.agents.local.voice import PiperSpeaker, Speaker
from pipeline.agents.sentences import split_sentences, spoken_pieces
from pipeline.audio import AudioSpec

log = logging.getLogger("pipeline.agents.local")

#: a reading of a short sound that scores below this (mean log probability per token) is no
#: words: Whisper's own threshold for a failed decode. Tiny.en reads synthetic hums as "And
#: I'm." (-1.32) or "Mm-s and" (-1.18), but "Stop." at -0.95 at worst over the interruption
#: bench's voices; unsure short interruptions ("Sorry?" in a Scottish voice, -1.28) are then
#: taken for backchannels, and the caller who meant it says more.
SURE_SCORE = -1.0


def load_speaker(preferred: str = "piper") -> Speaker:
    """The preferred voice, or espeak-ng when piper cannot load (missing model, broken wheel)."""
    if preferred == "piper":
        try:
            piper = PiperSpeaker.shared()
            piper.load()
            return piper
        except Exception as exc:
            log.warning("piper voice unavailable (%r); the local agent speaks with espeak-ng", exc)
    espeak = EspeakSpeaker.shared()
    espeak.load()
    return espeak


@dataclass(slots=True)
class Answer:
    """One turn's answer, ready to play."""

    heard: str
    reply: Reply
    #: the reply's first phrase, and its audio
    first: str
    first_audio: bytes
    #: the pieces after it, each synthesised while the one before plays
    rest: list[str] = field(default_factory=list)


class LocalAgent(Agent):
    input_spec = AudioSpec("pcm16", RECOGNIZER_RATE_HZ)
    hears_words = True
    reads_text = True

    def __init__(self, speaker: Speaker, recognizer: Recognizer, dialogue: Dialogue) -> None:
        self.output_spec = AudioSpec("pcm16", speaker.rate_hz)
        self._speaker = speaker
        self._recognizer = recognizer
        self._dialogue = dialogue
        self._greeting: tuple[int, asyncio.Task[None]] | None = None
        self._out: AgentOutput | None = None
        #: an answer prepared in the caller's pause
        self._early = EarlyWork[Answer | None]()

    async def start(self, out: AgentOutput) -> None:
        """Open the greeting turn and speak it from a task: the call listens (and the caller
        can talk over the greeting) while it is synthesised and played."""
        self._out = out
        turn = out.begin_turn()
        self._greeting = turn, out.tasks.spawn(self._greet(turn, out), "greeting")

    async def _greet(self, turn_id: int, out: AgentOutput) -> None:
        try:
            await self._say(turn_id, self._dialogue.greeting().text, out)
        except Exception as exc:  # never dead air: the apology (or a toy's error) instead
            log.warning("greeting failed: %r", exc)
            await out.fail_turn(turn_id, type(exc).__name__)
            return
        out.end_turn(turn_id)

    def interrupted(self, turn_id: int, heard_ms: float) -> None:
        if self._greeting is not None and self._greeting[0] == turn_id:
            self._stop_greeting()

    async def words_in(self, utterance: bytes) -> str:
        """Whisper's first reading, with a prompt that expects a backchannel or a "stop", if
        it is sure of it (:data:`SURE_SCORE`). Not the second reading: asked to prefer a
        backchannel, it read "Stop." as "Uh-huh."."""
        return await asyncio.to_thread(
            self._recognizer.transcribe, utterance, None, None, BACKCHANNEL_PROMPT, SURE_SCORE
        )

    def _stop_greeting(self) -> None:
        greeting, self._greeting = self._greeting, None
        if greeting is not None:
            greeting[1].cancel()

    def prepare(self, turn_id: int, utterance: bytes) -> None:
        self._early.drop()
        if self._out is None:
            return
        # unsupervised: the turn takes its outcome, and a void one is simply dropped
        task = self._out.tasks.spawn(
            self._answer(utterance), f"early-answer{turn_id}", supervised=False
        )
        self._early.start(utterance, task)

    async def respond(self, turn_id: int, utterance: bytes, out: AgentOutput) -> None:
        self._stop_greeting()  # the caller spoke: what is left of the greeting is not wanted
        early = self._early.take(utterance)
        answer = await early if early is not None else await self._answer(utterance)
        if answer is None:  # a cough, a click, a hiss: no words, so no "didn't catch that"
            log.info("turn %d: no words heard, no reply", turn_id)
            return
        await self._play(turn_id, answer, out)

    async def typed(self, turn_id: int, text: str, out: AgentOutput) -> None:
        self._stop_greeting()
        await self._play(turn_id, await self._reply_to(text), out)

    async def _play(self, turn_id: int, answer: Answer, out: AgentOutput) -> None:
        out.transcript(turn_id, "user", answer.heard)
        out.transcript(turn_id, "assistant", answer.reply.text)
        out.caption(turn_id, answer.first)
        await out.audio(turn_id, answer.first_audio)
        for sentence in answer.rest:
            audio = await asyncio.to_thread(self._speaker.synthesize, sentence)
            out.caption(turn_id, sentence)
            await out.audio(turn_id, audio)
        if answer.reply.end_call:
            out.hang_up("the caller said goodbye")

    async def close(self) -> None:
        self._early.drop()

    async def _answer(self, utterance: bytes) -> Answer | None:
        """Hear, choose the reply, speak its first phrase: each in a worker thread (the
        recogniser and piper release the GIL, so other calls go on meanwhile). None when
        there were no words (noise)."""
        heard = await asyncio.to_thread(
            self._recognizer.transcribe, utterance, understood, guessable
        )
        return await self._reply_to(heard) if heard else None

    async def _reply_to(self, heard: str) -> Answer:
        """Choose the reply to ``heard`` and speak its first phrase."""
        reply = self._dialogue.reply(heard)
        first, *rest = split_sentences(reply.text) or [""]
        # a long first sentence: its first few words now, the rest while they play
        first, *more = spoken_pieces(first)
        audio = await asyncio.to_thread(self._speaker.synthesize, first) if first else b""
        return Answer(heard, reply, first, audio, [*more, *rest])

    async def farewell(self, turn_id: int, out: AgentOutput) -> None:
        await self._say(turn_id, self._dialogue.phrases.goodbye, out)

    async def _say(self, turn_id: int, text: str, out: AgentOutput) -> None:
        out.caption(turn_id, text)
        async for pcm in self._speaker.speak(text):
            await out.audio(turn_id, pcm)


class LocalAgentFactory(AgentFactory):
    """Loads the voice and the recogniser once for the process (blocking, ~2-4 s: build it
    at start-up); every call shares them, and the sentences already spoken (the greeting,
    the fixed replies: :class:`CachedSpeaker`)."""

    name = "local"

    def __init__(
        self,
        phrases: Phrases | None = None,
        timezone: str = "UTC",
        clock: Callable[[], datetime] | None = None,
        voice: str = "piper",
    ) -> None:
        self._speaker = CachedSpeaker(load_speaker(voice))
        self._recognizer = Recognizer(RECOGNIZER_PROMPT)
        self._recognizer.load()
        self._new_dialogue = functools.partial(Dialogue, phrases, timezone, clock)

    def create(self, call: CallInfo) -> Agent:
        return LocalAgent(self._speaker, self._recognizer, self._new_dialogue())
