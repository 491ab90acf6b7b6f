"""One call, whatever the wire: turn-taking, barge-in and audio flow around one agent.

The transport adapter owns the socket and calls, from its receive loop:

* :meth:`CallSession.push_audio` for every inbound audio message. It is synchronous and
  cheap (decode, endpointer); it never waits on the agent. Rare consequences (a turn ends,
  the user barges in) start a task, never one per frame.
* :meth:`dtmf`, :meth:`typed_turn`, :meth:`end_of_speech`, :meth:`interrupt`,
  :meth:`drop_turn` for control messages and the transport's own watchdogs.
* :meth:`close` exactly once when the socket is gone, whatever the reason.

Anything that wants the call to end (the agent's goodbye, a limit, a drain, a failure) asks
through :meth:`end` with an :class:`~pipeline.lifecycle.Ending`; ``pipeline/lifecycle.py``
holds the phases and what may follow what. The session owns the call's tasks (pacer, agent
turns, the ending) in one :class:`TaskSet`; closing the session cancels them all.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from pipeline import ending as ending_calls
from pipeline.agents.base import Agent, AgentOutput, CallInfo
from pipeline.apology import apology_audio
from pipeline.audio import Converter
from pipeline.barge_in import BargeIn
from pipeline.call_actions import CallActions
from pipeline.call_logger import CallLog
from pipeline.captions import Captions
from pipeline.endpointing import Endpointer, EndpointEvent, TentativeTurn, UserTurn, native_spec
from pipeline.lifecycle import LISTENING, Ending, Phase, next_phase
from pipeline.observers import SessionObserver, SessionStats
from pipeline.playout import Playout
from pipeline.ports import AudioTap, CallPort
from pipeline.session_config import SessionConfig
from pipeline.tasks import TaskSet
from pipeline.teardown import tear_down
from pipeline.time_limits import TimeLimits
from pipeline.tools.base import ToolCallRecord, TransferTarget

log = logging.getLogger("pipeline.session")


class CallSession(AgentOutput):
    def __init__(
        self,
        call: CallInfo,
        port: CallPort,
        agent: Agent,
        config: SessionConfig | None = None,
        observer: SessionObserver | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.call = call
        self.port = port
        self.agent = agent
        self.config = cfg = config or SessionConfig()
        self.observer = observer or SessionObserver()
        self.stats = SessionStats()
        self.clock = clock
        self.started_at = clock()
        self.end_reason = ""
        self.phase = Phase.LIVE
        self.log = CallLog.of(log, call.call_id, call.transport)
        self.tasks = TaskSet(call.call_id, on_error=self._task_failed)
        self._turn_seq = 0
        self._current_turn: int | None = None
        self._turn_task: asyncio.Task[Any] | None = None
        self._turn_ended_at: dict[int, float] = {}
        self.last_activity = self.started_at
        #: when the far end last sent audio (a stream that stopped may be replaced)
        self.last_frame_at = self.started_at
        self._limits = TimeLimits(cfg.idle_timeout_s, cfg.max_duration_s)
        #: sees the call's audio both ways (a recording); None costs nothing per frame
        self.tap: AudioTap | None = None
        # inbound: wire -> PCM16 at a rate the endpointer accepts
        self.vad_spec = native_spec(port.wire_in)
        self._to_vad = Converter(port.wire_in, self.vad_spec)
        self.endpointer = Endpointer(self.vad_spec.rate_hz, cfg.endpointer)
        self._to_agent: Converter | None = None
        if agent.detects_turns or agent.hears_every_frame:
            self._to_agent = Converter(port.wire_in, agent.input_spec)
        self.playout = Playout(
            port, agent.output_spec, cfg.playout, clock=clock, on_first_audio=self._first_audio
        )
        self.barge_in = BargeIn(self, cfg.interruptions)
        self.actions = CallActions(self)
        self.captions = Captions(port, agent.output_spec)

    def attach_tap(self, tap: AudioTap) -> None:
        """Show ``tap`` every inbound frame and every outbound chunk from now on."""
        self.tap = tap
        self.playout.tap = tap

    async def start(self) -> None:
        """Start the pacer and the agent (which may queue a greeting)."""
        self.observer.on_session_created(self)
        self.tasks.spawn(self.playout.run(), "pacer")
        if self._limits.enabled:
            self.tasks.spawn(ending_calls.enforce_time_limits(self, self._limits), "limits")
        await self.agent.start(self)

    # -- the end (pipeline/lifecycle.py) ---------------------------------------------------

    def end(self, ending: Ending) -> None:
        """Ask the call to end as ``ending`` says; a request that comes too late is ignored."""
        phase = next_phase(self.phase, ending.via)
        if phase is None or phase is Phase.CLOSED:
            return
        self.phase = phase
        if phase is Phase.ENDING:
            self.tasks.spawn(ending_calls.end_after_reply(self, ending), "ending")
        elif phase is Phase.HANGING_UP:
            self.tasks.spawn(ending_calls.hang_up(self, ending), "hangup")
        else:
            self.tasks.spawn(ending_calls.close_port(self, ending), "close")

    async def close(self, reason: str) -> None:
        """The transport's socket is gone: let go of everything (``pipeline/teardown.py``)."""
        if self.phase is not Phase.CLOSED:
            self.phase = Phase.CLOSED
            self.end_reason = self.end_reason or reason
            await tear_down(self)

    def _task_failed(self, task: asyncio.Task[Any], exc: BaseException) -> None:
        """An unexpected error inside the call: close its socket with 1011."""
        self.log.error("task %s failed", task.get_name(), exc_info=exc)
        self.end_reason = "error"
        self.end(Ending.now("error", 1011, close_text="internal error"))

    # -- inbound (called by the transport's receive loop) ----------------------------------

    def push_audio(self, data: bytes) -> None:
        """Inbound audio in ``port.wire_in`` format. Synchronous and cheap by design."""
        if self.phase not in LISTENING or not data:
            return
        self.stats.frames_in += 1
        self.last_frame_at = self.clock()
        self.stats.bytes_in += len(data)
        if self.tap is not None:
            self.tap.inbound(data)
        if self._to_agent is not None:
            self.agent.feed(self._to_agent.process(data))
        for event in self.endpointer.push(self._to_vad.process(data)):
            if event is EndpointEvent.SPEECH_STARTED:
                self.barge_in.dismissed = False
                self.user_speech_started()
            elif self.agent.detects_turns:
                continue  # its own turn detection ends the turns; ours only hears onsets
            elif self.agent.commits_turns:  # its recogniser ends the turns while it is up
                if isinstance(event, UserTurn):
                    turn = event
                    audio = self.agent_audio(turn.pcm16)
                    self.agent.endpointer_turn(audio, turn.duration_ms, turn.speech_ms)
            elif isinstance(event, UserTurn):
                self.user_turn(event)
            elif isinstance(event, TentativeTurn) and self.barge_in.pause is None:
                self.agent.prepare(self._turn_seq + 1, self.agent_audio(event.turn.pcm16))
        if self.barge_in.pause is not None:
            self.barge_in.frames_pushed()

    def end_of_speech(self) -> bool:
        """Explicit end of user speech from the far end; True if a turn was committed.

        While the agent's recogniser ends the turns, it decides this one too (it has heard
        the same audio, and a second commit would answer the turn twice)."""
        turn = self.endpointer.force_end()
        if turn is None or self.agent.commits_turns:
            return False
        self.user_turn(turn)
        return True

    def dtmf(self, digit: str) -> None:
        """A key: the agent sees each one; one that reads the keypad gets each entry as a
        turn (``pipeline/call_actions.py``)."""
        if self.phase in LISTENING:
            self.agent.dtmf(digit, self)
            if self.agent.uses_keypad:
                self.actions.key(digit)

    def answered_by(self, kind: str) -> None:
        """Who answered an outbound call (Twilio's answering-machine detection)."""
        if self.phase in LISTENING:
            self.actions.answered_by(kind)

    def interrupt(self) -> None:
        """The far end (a toy's button) or the agent's (a backend's clear) stopped the reply."""
        if self.phase in LISTENING:
            self.barge_in.now()

    def drop_turn(self) -> int | None:
        """The transport gave up on the current reply and told the far end itself (a toy's
        watchdog): stop it here too; the agent hears it was cut before anything was heard."""
        turn = self.stop_current_turn()
        if turn is not None:
            self.agent.interrupted(turn, 0.0)
        return turn

    @property
    def turn_task(self) -> asyncio.Task[Any] | None:
        """The current user turn's answer, while it runs."""
        return self._turn_task

    @property
    def responding(self) -> bool:
        """True while a reply is being generated, queued or played."""
        turn = self._current_turn
        if turn is None:
            return False
        task_busy = self._turn_task is not None and not self._turn_task.done()
        return (
            task_busy
            or self.playout.has_pending(turn)
            or (self.playout.is_live(turn) and self.port.is_playing())
        )

    @property
    def has_open_turn(self) -> bool:
        """True once the agent has opened a reply (e.g. a greeting) that has not ended."""
        turn = self._current_turn
        return turn is not None and self.playout.is_live(turn)

    # -- turns and barge-in ----------------------------------------------------------------

    def user_turn(self, turn: UserTurn) -> None:
        """The endpointer ended a turn (one that a judged sound holds waits for its verdict)."""
        if self.barge_in.hold_turn(turn) or self.actions.leaving_message:
            return
        if not self.barge_in.is_speech(turn.pcm16, turn.rate_hz):
            self.log.info("not a turn: %.0f ms of sound without a voice", turn.duration_ms)
            return
        self._commit(self.agent_audio(turn.pcm16), turn.duration_ms, turn.speech_ms)

    def _commit(
        self,
        audio: bytes,
        duration_ms: float,
        speech_ms: float,
        answer: Callable[[int], Awaitable[None]] | None = None,
    ) -> int:
        """Open a user turn and start the agent's answer to it (``answer``: to keys)."""
        self.stats.user_turns += 1
        turn_id = self._new_turn()
        self._turn_ended_at[turn_id] = self.clock()
        self.observer.on_user_turn(self, turn_id, duration_ms)
        self.log.debug("user turn committed speech_ms=%d", speech_ms, extra={"turn_id": turn_id})
        answering = answer(turn_id) if answer else self.agent.respond(turn_id, audio, self)
        self._turn_task = self.tasks.spawn(self._run_turn(turn_id, answering), f"turn{turn_id}")
        return turn_id

    async def keypad_turn(self, digits: str) -> None:
        """A keypad entry cuts off a reply (a real interruption) and is a turn of its own."""
        await self.barge_in.cut()
        if self.phase not in LISTENING:
            return
        turn = self._commit(b"", 0.0, 0.0, lambda t: self.agent.keypad(t, digits, self))
        self.observer.on_keypad(self, turn, digits)

    def typed_turn(self, text: str) -> None:
        """Words the user typed (a device's text input) are a turn of their own, cutting off
        a reply as a keypad entry does; an agent that reads no text leaves them unanswered."""
        if self.phase in LISTENING and not self.agent.reads_text:
            self.log.info("typed turn ignored: this agent reads no text (%d chars)", len(text))
        elif self.phase in LISTENING:
            self.last_activity = self.clock()
            self.tasks.spawn(self._typed_turn(text), "typed")

    async def _typed_turn(self, text: str) -> None:  # as keypad_turn, for the agent's typed
        await self.barge_in.cut()
        if self.phase in LISTENING:
            self._commit(b"", 0.0, 0.0, lambda t: self.agent.typed(t, text, self))

    def agent_audio(self, pcm16: bytes) -> bytes:
        """An utterance at the endpointer's rate, as the agent takes it: converted whole and
        afresh, so the same speech always gives the same bytes (tentative = committed)."""
        if self.agent.input_spec == self.vad_spec:
            return pcm16
        converter = Converter(self.vad_spec, self.agent.input_spec)
        return converter.process(pcm16) + converter.flush()

    async def _run_turn(self, turn_id: int, answering: Awaitable[None]) -> None:
        try:
            await self.port.commit_user_turn(turn_id)
            await answering
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.log.warning("agent turn failed: %r", exc, extra={"turn_id": turn_id})
            await self.fail_turn(turn_id, type(exc).__name__)
            return
        self.playout.end_turn(turn_id)

    def _new_turn(self) -> int:
        self._turn_seq += 1
        turn_id = self._turn_seq
        previous = self._current_turn
        if previous is not None and self.playout.is_live(previous):
            # A new turn supersedes one still generating: finish the old one cleanly.
            self.playout.end_turn(previous)
        self._current_turn = turn_id
        self.playout.open_turn(turn_id)
        return turn_id

    def stop_current_turn(self) -> int | None:
        """Stop generation and drop queued audio of the current turn, synchronously, so
        nothing more of it is sent; returns its id."""
        turn = self._current_turn
        if turn is None:
            return None
        self._current_turn = None
        self.barge_in.forget(turn)
        if self._turn_task is not None and not self._turn_task.done():
            self._turn_task.cancel()
        self.playout.cancel(turn)
        return turn

    def _first_audio(self, turn_id: int) -> None:
        ended_at = self._turn_ended_at.pop(turn_id, None)
        if ended_at is None:
            return
        latency_ms = (self.clock() - ended_at) * 1000
        self.stats.turn_latency_ms.append(latency_ms)
        self.observer.on_turn_latency(self, turn_id, latency_ms)

    # -- AgentOutput -----------------------------------------------------------------------

    def begin_turn(self) -> int:
        self.stats.agent_turns += 1
        return self._new_turn()

    async def audio(self, turn_id: int, pcm: bytes) -> None:
        await self.playout.audio(turn_id, pcm)
        self.captions.audio(turn_id, pcm)

    def caption(self, turn_id: int, text: str) -> None:
        self.captions.caption(turn_id, text)

    def commit_turn(self, words: str | None = None) -> int | None:
        """The agent's recogniser ended a user turn (of a duration unknown here: 0); None when
        it is a sound judged not to be an interruption (an "uh-huh" over the reply)."""
        if self.phase not in LISTENING or self.barge_in.agent_turn(words):
            return None
        if self.actions.leaving_message:
            return None
        return self._commit(b"", 0.0, 0.0)

    def end_turn(self, turn_id: int) -> None:
        self.playout.end_turn(turn_id)

    def user_speech_started(self) -> None:
        """The caller started speaking (our endpointer or the agent's own detection): a
        reply under way stops, and the sound is judged (``pipeline/barge_in.py``). An
        agent's late report of a sound already judged harmless is not a new one."""
        self.last_activity = self.clock()
        turn = self._current_turn
        if self.actions.leaving_message or self.agent.owns_interruptions:
            return  # an agent that owns them stops itself (AgentOutput.interrupt)
        if turn is not None and self.responding and self.phase in LISTENING:
            self.barge_in.speech_started(turn)

    async def played(self, turn_id: int, position_ms: float | None = None) -> None:
        await ending_calls.heard_up_to(self, turn_id, position_ms)

    def judging_sound(self) -> bool:
        return self.barge_in.judging

    def transcript(self, turn_id: int, role: str, text: str) -> None:
        self.observer.on_transcript(self, turn_id, role, text)

    async def fail_turn(self, turn_id: int, kind: str) -> None:
        """The agent gave up on ``turn_id`` (retries exhausted): never leave dead air.

        Counted as an agent error. Phones hear the packaged apology in place of the reply and
        the call stays up; a toy gets its transport's error signal (RESPONSE.ERROR).
        """
        self.stats.agent_errors += 1
        self.observer.on_agent_error(self, kind)
        if self.config.spoken_apology and self.playout.is_live(turn_id):
            await self.playout.audio(turn_id, apology_audio(self.agent.output_spec))
            self.playout.end_turn(turn_id)
            return
        self.playout.end_turn(turn_id, ok=False)

    def hang_up(self, reason: str) -> None:
        """The agent's goodbye: ``end(Ending.after_audio(reason))``."""
        self.end(Ending.after_audio(reason))

    def tool_call(self, record: ToolCallRecord) -> None:
        self.observer.on_tool_call(self, record)

    async def transfer(self, target: TransferTarget) -> None:
        await self.actions.transfer(target)
