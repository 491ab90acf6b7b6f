"""Barge-in for one call: stop at once, judge the sound, then resume the reply or yield.

When the caller's sound starts while the agent has a reply under way, playback stops at once
(the port's ``interrupt``: Twilio's ``clear``), but the turn is not cancelled yet: the pacer
holds it, and what was sent but not heard goes back to the front of its queue. A
:class:`~pipeline.interruptions.Judge` follows the sound:

* a **real** interruption (speech that goes on, or words that are not a backchannel): the
  turn is cancelled and the agent told how much was heard, as a barge-in always was; a user
  turn the endpointer ended meanwhile is committed after that;
* a **false** one (not speech, or only "uh-huh"): the sound is dropped (it never becomes a
  user turn), and the reply goes on from the position the caller actually heard. The agent's
  memory is unchanged; a speech-to-speech agent is told to forget what it heard.

A port that cannot resume (a toy: stopping closes its response) and a toy's INTERRUPT button
skip the judging: every such stop is real.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from pipeline.agents.base import Agent
from pipeline.endpointing import Endpointer, UserTurn
from pipeline.interruptions import (
    Backchannels,
    Decision,
    InterruptionConfig,
    Judge,
    Sound,
    Verdict,
    verdict_of,
)
from pipeline.observers import ObservedCall, SessionObserver
from pipeline.playout import Playout
from pipeline.tasks import TaskSet
from pipeline.voicing import voiced_ms


class Call(ObservedCall, Protocol):
    """What barge-in needs of its call (a :class:`~pipeline.session.CallSession`)."""

    agent: Agent
    playout: Playout
    endpointer: Endpointer
    tasks: TaskSet
    observer: SessionObserver
    clock: Callable[[], float]

    @property
    def responding(self) -> bool:
        """A reply is being generated, queued or played."""
        ...

    def stop_current_turn(self) -> int | None:
        """Cancel the current turn's generation and queued audio; its id."""
        ...

    def agent_audio(self, pcm16: bytes) -> bytes:
        """Endpointer audio as the agent takes it."""
        ...

    def user_turn(self, turn: UserTurn) -> None:
        """Commit a turn the endpointer ended."""


@dataclass(slots=True, eq=False)
class Pause:
    """One held reply while a sound is judged."""

    turn_id: int
    judge: Judge
    began_s: float
    #: clears the far end and queues the unheard audio again (the resume waits for it)
    stopping: asyncio.Task[None] | None = None
    #: where the reply goes on from (ms into the turn)
    resume_ms: float = 0.0
    #: the sound has ended and the recogniser is listening to it
    hearing: bool = False
    #: the recogniser heard no words in it: the sound alone decides
    wordless: bool = False
    #: quiet that ends the sound (0: the configured ``end_silence_ms``)
    end_ms: int = 0
    #: a user turn the endpointer ended while the sound was judged
    held_turns: list[UserTurn] = field(default_factory=list)


class BargeIn:
    """The session's barge-in: one pause at a time."""

    def __init__(self, session: Call, config: InterruptionConfig) -> None:
        self._session = session
        self._cfg = config
        self.backchannels = Backchannels(session.agent.backchannels or config.backchannels)
        self.pause: Pause | None = None
        #: a false alarm's sound, which the agent's own recogniser may still end as a turn
        #: (until the caller's next onset)
        self.dismissed = False

    @property
    def judging(self) -> bool:
        """A sound is judged, or was judged harmless and the caller has made no other."""
        return self.pause is not None or self.dismissed

    # -- the sound starts ------------------------------------------------------------------

    def speech_started(self, turn_id: int) -> None:
        """The caller's sound started over ``turn_id``: stop playback, judge or yield."""
        if self.judging:
            return  # this sound is being judged, or was judged harmless
        session = self._session
        if not self._cfg.judge or not session.port.resumable:
            self.now()
            return
        endpointer = session.endpointer
        started = endpointer.speech_started_frame if endpointer.in_speech else endpointer.frames
        pause = Pause(turn_id, Judge(self._cfg, started), session.clock())
        self.pause = pause
        session.playout.hold(turn_id)
        pause.stopping = session.tasks.spawn(self._stop(pause), f"pause{turn_id}")
        session.agent.interruption_began(turn_id)

    async def _stop(self, pause: Pause) -> None:
        session = self._session
        await session.playout.settled()  # a chunk on its way goes first, then the stop
        heard_ms = await session.port.interrupt(pause.turn_id)
        pause.resume_ms = session.playout.rewind(pause.turn_id, heard_ms)

    async def cut(self) -> None:
        """A real interruption, finished before it returns (a keypad entry, a voicemail:
        what comes next needs the agent to know what was heard). A reply already heard
        whole is not cut."""
        if not self._session.responding:
            return
        turn = self._session.stop_current_turn()
        if turn is not None:
            await self._finish(turn, None)

    def now(self) -> None:
        """A real interruption without judging (a toy's button, a port that cannot resume)."""
        turn = self._session.stop_current_turn()
        if turn is not None:
            self._session.tasks.spawn(self._finish(turn, None), f"barge{turn}")

    # -- following the sound ---------------------------------------------------------------

    def frames_pushed(self) -> None:
        """The endpointer took more audio: has the sound gone on, or ended?"""
        pause = self.pause
        if pause is None or pause.hearing:
            return
        endpointer = self._session.endpointer
        frames, last_speech = endpointer.frames, endpointer.last_speech_frame
        sound = pause.judge.step(frames, last_speech, pause.end_ms)
        if sound is Sound.GOING_ON:
            self._decide(pause, Decision(Verdict.REAL, "speech went on"))
        elif sound is Sound.ENDED:
            burst = endpointer.utterance_so_far()
            voiced = voiced_ms(burst, endpointer.rate_hz)
            if voiced < self._cfg.min_voiced_ms:  # not speech
                self._decide(pause, verdict_of(voiced, None, self._cfg, self.backchannels))
            elif self._session.agent.hears_words and not pause.wordless:
                pause.hearing = True
                self._session.tasks.spawn(self._hear(pause, burst, voiced), "hear-burst")
            elif not pause.end_ms:  # the sound alone: wait longer, it may be "Wait, | stop"
                pause.end_ms = self._cfg.short_speech_end_ms
            else:  # short speech: what backchannels are
                self._decide(pause, verdict_of(voiced, None, self._cfg, self.backchannels))

    async def _hear(self, pause: Pause, burst: bytes, voiced: int) -> None:
        """The agent's recogniser on the burst: words, a backchannel, or nothing."""
        session = self._session
        try:
            async with asyncio.timeout(self._cfg.words_timeout_ms / 1000):
                words = await session.agent.words_in(session.agent_audio(burst))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # no words in time: the caller gets the turn
            decision = Decision(Verdict.REAL, f"no words in time ({type(exc).__name__})")
        else:
            if words is not None and not words.strip():
                # voiced, but no words the recogniser is sure of (piper's "Wait," before its
                # 300 ms pause read as nothing over a call): as if it had none
                pause.hearing, pause.wordless = False, True
                return
            decision = verdict_of(voiced, words, self._cfg, self.backchannels)
        if self.pause is pause:
            self._decide(pause, decision)

    def is_speech(self, pcm16: bytes, rate_hz: int) -> bool:
        """Noise is not a turn: a cough, a door or a line click has (almost) no voiced audio,
        and never reaches the agent (whose recogniser might make words of it)."""
        enough_ms = self._cfg.min_voiced_ms
        return voiced_ms(pcm16, rate_hz, enough_ms) >= enough_ms

    def hold_turn(self, turn: UserTurn) -> bool:
        """The endpointer ended a turn: while its sound is judged, it waits for the verdict."""
        if self.pause is None:
            return False
        self.pause.held_turns.append(turn)
        return True

    def agent_turn(self, words: str | None) -> bool:
        """The agent's recogniser ended a turn of ``words``: True if it is the judged (or a
        dismissed) sound and must not become a turn; a turn of real words decides."""
        pause = self.pause
        if pause is None and not self.dismissed:
            return False
        if words is not None and (not words.strip() or self.backchannels.only_backchannels(words)):
            if pause is not None:
                self._decide(pause, Decision(Verdict.FALSE, f"the recogniser heard {words!r}"))
            return True
        if pause is not None:
            self._decide(pause, Decision(Verdict.REAL, f"the recogniser heard {words!r}"))
        return False

    def forget(self, turn_id: int) -> None:
        """``turn_id`` was stopped otherwise (a toy's watchdog, the button): nothing to judge."""
        if self.pause is not None and self.pause.turn_id == turn_id:
            self.pause = None

    # -- the verdict -----------------------------------------------------------------------

    def _decide(self, pause: Pause, decision: Decision) -> None:
        session = self._session
        self.pause = None
        paused_ms = (session.clock() - pause.began_s) * 1000
        session.log.info(
            "%s interruption after %.0f ms: %s",
            decision.verdict.value,
            paused_ms,
            decision.why,
            extra={"turn_id": pause.turn_id},
        )
        if decision.verdict is Verdict.REAL:
            turn = session.stop_current_turn()
            if turn is not None:
                session.tasks.spawn(self._finish(turn, pause), f"barge{turn}")
            else:
                self._commit_held(pause)
            return
        session.endpointer.drop_utterance()
        self.dismissed = True
        session.stats.false_interruptions += 1
        session.observer.on_false_interruption(session, pause.turn_id, paused_ms)
        session.agent.interruption_dismissed(pause.turn_id)
        session.tasks.spawn(self._resume(pause), f"resume{pause.turn_id}")

    async def _resume(self, pause: Pause) -> None:
        if pause.stopping is not None:
            await pause.stopping
        session = self._session
        session.log.debug("the reply goes on from %.0f ms", pause.resume_ms)
        session.playout.resume(pause.turn_id)

    async def _finish(self, turn_id: int, pause: Pause | None) -> None:
        """A real interruption: the far end stopped (again: nothing more is unplayed), the
        agent learns what was heard, and a turn held meanwhile is answered."""
        session = self._session
        if pause is not None and pause.stopping is not None:
            await pause.stopping
        heard_ms = await session.port.interrupt(turn_id)
        session.stats.barge_ins += 1
        session.agent.interrupted(turn_id, heard_ms)
        session.observer.on_barge_in(session, turn_id, heard_ms)
        session.log.info("barge-in heard_ms=%.0f", heard_ms, extra={"turn_id": turn_id})
        if pause is not None:
            self._commit_held(pause)

    def _commit_held(self, pause: Pause) -> None:
        for turn in pause.held_turns:
            self._session.user_turn(turn)
