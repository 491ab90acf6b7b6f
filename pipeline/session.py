"""One call, whatever the wire: turn-taking, barge-in and audio flow around one agent.

The transport adapter owns the socket and calls, from its receive loop:

* :meth:`CallSession.push_audio` for every inbound audio message. It is synchronous and
  cheap (decode, endpointer); it never waits on the agent. Rare consequences (a turn ends,
  the user barges in) start a task, never one per frame.
* :meth:`dtmf`, :meth:`end_of_speech`, :meth:`interrupt` for control messages.
* :meth:`close` exactly once when the socket is gone, whatever the reason.

The session owns the call's tasks (pacer, agent turns, hang-up) in one :class:`TaskSet`;
closing the session cancels them all.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pipeline.agents.base import Agent, AgentOutput, CallInfo
from pipeline.apology import apology_audio
from pipeline.audio import PCM16_16K, AudioSpec, Converter
from pipeline.call_logger import CallLog
from pipeline.endpointing import (
    VAD_RATES_HZ,
    Endpointer,
    EndpointerConfig,
    EndpointEvent,
    TentativeTurn,
    UserTurn,
)
from pipeline.observers import SessionObserver, SessionStats
from pipeline.playout import Playout, PlayoutConfig
from pipeline.ports import AudioTap, CallPort
from pipeline.tasks import TaskSet

log = logging.getLogger("pipeline.session")

#: extra time granted to the far end to confirm the goodbye, on top of what is unplayed
DRAIN_GRACE_S = 2.0
#: how long a goodbye may take to be generated and queued before we close anyway
HANGUP_PLAYOUT_TIMEOUT_S = 30.0
#: how often a call that must end looks again whether its reply has finished playing
REPLY_POLL_S = 0.25


@dataclass(frozen=True, slots=True)
class SessionConfig:
    endpointer: EndpointerConfig = field(default_factory=EndpointerConfig)
    playout: PlayoutConfig = field(default_factory=PlayoutConfig)
    #: end the call politely after this long without user speech (0: never)
    idle_timeout_s: float = 0.0
    #: end the call politely after this long in total (0: never)
    max_duration_s: float = 0.0
    #: a failed agent turn plays the packaged apology (phones); else the transport's error
    #: signal alone reports it (a toy shows RESPONSE.ERROR)
    spoken_apology: bool = True


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
        self.started_at = clock()
        self.end_reason = ""
        self._clock = clock
        self.log = CallLog.of(log, call.call_id, call.transport)
        self._tasks = TaskSet(call.call_id, on_error=self._task_failed)
        self._turn_seq = 0
        self._current_turn: int | None = None
        self._turn_task: asyncio.Task[Any] | None = None
        self._turn_ended_at: dict[int, float] = {}
        self._closing = False
        self._hangup_reason: str | None = None
        self._ending = False
        self._closed = asyncio.Event()
        self.last_activity = self.started_at
        #: sees the call's audio both ways (a recording); None costs nothing per frame
        self.tap: AudioTap | None = None
        # inbound: wire -> PCM16 at a rate the endpointer accepts
        self.vad_spec = self.native_spec(port.wire_in)
        self._to_vad = Converter(port.wire_in, self.vad_spec)
        self._endpointer = Endpointer(self.vad_spec.rate_hz, cfg.endpointer)
        self._to_agent: Converter | None = None
        if agent.detects_turns:
            self._to_agent = Converter(port.wire_in, agent.input_spec)
        self.playout = Playout(
            port,
            agent.output_spec,
            cfg.playout,
            clock=clock,
            on_first_audio=self._first_audio,
        )

    @staticmethod
    def native_spec(wire_in: AudioSpec) -> AudioSpec:
        """The PCM16 format a session hands to non-streaming agents for ``wire_in``."""
        rate = wire_in.rate_hz if wire_in.rate_hz in VAD_RATES_HZ else PCM16_16K.rate_hz
        return AudioSpec("pcm16", rate)

    # -- lifecycle -------------------------------------------------------------------------

    def attach_tap(self, tap: AudioTap) -> None:
        """Show ``tap`` every inbound frame and every outbound chunk from now on."""
        self.tap = tap
        self.playout.tap = tap

    async def start(self) -> None:
        """Start the pacer and the agent (which may queue a greeting)."""
        self.observer.on_session_created(self)
        self._tasks.spawn(self.playout.run(), "pacer")
        if self.config.idle_timeout_s > 0 or self.config.max_duration_s > 0:
            self._tasks.spawn(self._enforce_time_limits(), "limits")
        await self.agent.start(self)

    async def close(self, reason: str) -> None:
        """Tear down: cancel every task, close the agent, log one summary line. Idempotent."""
        if self._closed.is_set():
            return
        self._closed.set()
        self._closing = True
        self.end_reason = self.end_reason or reason
        await self._tasks.cancel_all()
        try:
            await asyncio.wait_for(self.agent.close(), timeout=1.0)
        except Exception as exc:  # an agent failing to close must not break teardown
            self.log.warning("agent close failed: %r", exc)
        if self.tap is not None:
            tap, self.tap = self.tap, None
            self.playout.tap = None
            try:
                tap.close()
            except Exception as exc:  # a recording must not break teardown
                self.log.warning("audio tap close failed: %r", exc)
        self.observer.on_call_ended(self)
        s = self.stats
        self.log.info(
            "call ended reason=%s duration_s=%.1f user_turns=%d agent_turns=%d barge_ins=%d "
            "chunks_sent=%d chunks_dropped=%d agent_errors=%d",
            self.end_reason,
            self._clock() - self.started_at,
            s.user_turns,
            s.agent_turns,
            s.barge_ins,
            self.playout.chunks_sent,
            self.playout.chunks_dropped,
            s.agent_errors,
        )

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def task_count(self) -> int:
        return len(self._tasks)

    # -- inbound (called by the transport's receive loop) ----------------------------------

    def push_audio(self, data: bytes) -> None:
        """Inbound audio in ``port.wire_in`` format. Synchronous and cheap by design."""
        if self._closing or not data:
            return
        self.stats.frames_in += 1
        self.stats.bytes_in += len(data)
        if self.tap is not None:
            self.tap.inbound(data)
        if self._to_agent is not None:
            self.agent.feed(self._to_agent.process(data))
            return
        for event in self._endpointer.push(self._to_vad.process(data)):
            if event is EndpointEvent.SPEECH_STARTED:
                self._on_speech_started()
            elif isinstance(event, UserTurn):
                self._on_user_turn(event)
            elif isinstance(event, TentativeTurn):
                self.agent.prepare(self._turn_seq + 1, self._agent_audio(event.turn.pcm16))

    def reset_listening(self) -> None:
        """Forget partial speech (a half-duplex device stopped listening)."""
        self._endpointer.reset()

    def end_of_speech(self) -> bool:
        """Explicit end of user speech from the far end; True if a turn was committed."""
        turn = self._endpointer.force_end()
        if turn is None:
            return False
        self._on_user_turn(turn)
        return True

    def dtmf(self, digit: str) -> None:
        self.agent.dtmf(digit, self)

    def interrupt(self) -> None:
        """The far end asked to stop the current reply (a toy's button)."""
        self._spawn_barge_in()

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

    def abandon_turn(self) -> int | None:
        """Drop the current turn without telling the far end (the transport does that)."""
        turn = self._current_turn
        if turn is None:
            return None
        self._current_turn = None
        if self._turn_task is not None and not self._turn_task.done():
            self._turn_task.cancel()
        self.playout.cancel(turn)
        self.agent.interrupted(turn, 0.0)
        return turn

    def _on_speech_started(self) -> None:
        self.last_activity = self._clock()
        if self.responding:
            self._spawn_barge_in()

    def _on_user_turn(self, turn: UserTurn) -> None:
        self.stats.user_turns += 1
        turn_id = self._new_turn()
        self._turn_ended_at[turn_id] = self._clock()
        self.observer.on_user_turn(self, turn_id, turn.duration_ms)
        self.log.debug(
            "user turn committed speech_ms=%d", turn.speech_ms, extra={"turn_id": turn_id}
        )
        audio = self._agent_audio(turn.pcm16)
        self._turn_task = self._tasks.spawn(self._run_turn(turn_id, audio), f"turn{turn_id}")

    def _agent_audio(self, pcm16: bytes) -> bytes:
        """An utterance at the endpointer's rate, as the agent takes it: converted whole and
        afresh, so the same speech always gives the same bytes (tentative = committed)."""
        if self.agent.input_spec == self.vad_spec:
            return pcm16
        converter = Converter(self.vad_spec, self.agent.input_spec)
        return converter.process(pcm16) + converter.flush()

    async def _run_turn(self, turn_id: int, utterance: bytes) -> None:
        try:
            await self.port.commit_user_turn(turn_id)
            await self.agent.respond(turn_id, utterance, self)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.log.warning("agent turn failed: %r", exc, extra={"turn_id": turn_id})
            await self.fail_turn(turn_id, type(exc).__name__)
            return
        self.playout.end_turn(turn_id)

    # -- barge-in --------------------------------------------------------------------------

    def _spawn_barge_in(self) -> None:
        turn = self._current_turn
        if turn is None or self._closing:
            return
        # Stop generation and queued audio synchronously so nothing more is sent.
        self._current_turn = None
        if self._turn_task is not None and not self._turn_task.done():
            self._turn_task.cancel()
        self.playout.cancel(turn)
        self._tasks.spawn(self._finish_barge_in(turn), f"barge{turn}")

    async def _finish_barge_in(self, turn_id: int) -> None:
        heard_ms = await self.port.interrupt(turn_id)
        self.stats.barge_ins += 1
        self.agent.interrupted(turn_id, heard_ms)
        self.observer.on_barge_in(self, turn_id, heard_ms)
        self.log.info("barge-in heard_ms=%.0f", heard_ms, extra={"turn_id": turn_id})

    # -- AgentOutput -----------------------------------------------------------------------

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

    def begin_turn(self) -> int:
        self.stats.agent_turns += 1
        return self._new_turn()

    async def audio(self, turn_id: int, pcm: bytes) -> None:
        await self.playout.audio(turn_id, pcm)

    def end_turn(self, turn_id: int) -> None:
        self.playout.end_turn(turn_id)

    def user_speech_started(self) -> None:
        self.last_activity = self._clock()
        if self.responding:
            self._spawn_barge_in()

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
        self._request_hang_up(reason, 1000)

    def _request_hang_up(self, reason: str, close_code: int) -> None:
        if self._hangup_reason is not None or self._closing:
            return
        self._hangup_reason = reason
        self._tasks.spawn(self._hang_up(reason, close_code), "hangup")

    async def _hang_up(self, reason: str, close_code: int = 1000) -> None:
        """Let the goodbye play out and be heard, then close with ``close_code``."""
        turn_task = self._turn_task
        if turn_task is not None and turn_task is not asyncio.current_task():
            await asyncio.wait({turn_task}, timeout=HANGUP_PLAYOUT_TIMEOUT_S)
        try:
            await asyncio.wait_for(self.playout.wait_idle(), HANGUP_PLAYOUT_TIMEOUT_S)
        except TimeoutError:
            self.log.warning("goodbye did not finish playing in time")
        await self.port.drain(self.port.unacked_ms() / 1000 + DRAIN_GRACE_S)
        self.end_reason = reason
        await self.port.close(close_code, reason)

    def end_politely(self, reason: str, *, farewell: bool = True, close_code: int = 1000) -> None:
        """End the call without cutting anyone off (a drain, a limit): the reply in progress
        plays to its end, then the agent's optional ``farewell()``, then the transport's
        ending with ``close_code``. Idempotent; a no-op once the call is already ending."""
        if self._closing or self._ending or self._hangup_reason is not None:
            return
        self._tasks.spawn(self._end_politely(reason, farewell, close_code), "ending")

    async def _end_politely(self, reason: str, farewell: bool, close_code: int) -> None:
        while True:  # never cut a reply: end once it has played (no event marks that moment)
            if not self.responding:
                break
            await asyncio.sleep(REPLY_POLL_S)
        if self._ending or self._hangup_reason is not None:
            return
        self._ending = True
        self.log.info("ending the call: %s", reason)
        if farewell:
            turn = self.begin_turn()
            try:
                await self.agent.farewell(turn, self)
            finally:
                self.end_turn(turn)
        self._request_hang_up(reason, close_code)

    async def _enforce_time_limits(self) -> None:
        """One task per call: sleeps until the nearest deadline (idle or total duration)."""
        cfg = self.config
        while True:
            now = self._clock()
            deadlines = []
            if cfg.idle_timeout_s > 0:
                deadlines.append((self.last_activity + cfg.idle_timeout_s, "idle timeout"))
            if cfg.max_duration_s > 0:
                deadlines.append((self.started_at + cfg.max_duration_s, "maximum duration"))
            when, reason = min(deadlines)
            if when > now:
                await asyncio.sleep(when - now)
                continue
            if self.responding:  # never cut a reply: look again once it has played
                await asyncio.sleep(REPLY_POLL_S)
                continue
            await self._end_politely(reason, True, 1000)
            return

    # -- internals -------------------------------------------------------------------------

    def _first_audio(self, turn_id: int) -> None:
        ended_at = self._turn_ended_at.pop(turn_id, None)
        if ended_at is None:
            return
        latency_ms = (self._clock() - ended_at) * 1000
        self.stats.turn_latency_ms.append(latency_ms)
        self.observer.on_turn_latency(self, turn_id, latency_ms)

    def _task_failed(self, task: asyncio.Task[Any], exc: BaseException) -> None:
        self.log.error("task %s failed", task.get_name(), exc_info=exc)
        self.end_reason = "error"
        if not self._closing:
            self._closing = True
            asyncio.get_running_loop().call_soon(self._fail, exc)

    def _fail(self, exc: BaseException) -> None:
        """An unexpected error inside the call: close its socket with 1011."""
        if self._closed.is_set():
            return
        self._tasks.spawn(self.port.close(1011, "internal error"), "fail-close")
