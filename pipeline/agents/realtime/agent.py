"""The OpenAI Realtime agent: the caller's audio streams up, the model's voice streams down.

One WebSocket per call, three tasks in the call's task set (the call's end cancels them):

* the **runner** connects (retrying to a deadline), configures the session and reads server
  events. Event handling is synchronous: control events (speech started, a response
  beginning or ending) are never stuck behind audio waiting for playout space;
* the **sender** drains the bounded drop-oldest :class:`AudioInbox` that :meth:`feed` fills,
  and sends control events (cancel, truncate) ahead of audio;
* the **speaker** hands audio to the pipeline in order and waits there when playout is full.

Audio passes through untouched where the wire allows it: phone calls use ``audio/pcmu`` both
ways (Twilio's μ-law bytes are what the model hears); toys use 24 kHz PCM16, which their Opus
output already is, so only the 16 -> 24 kHz microphone side is resampled, once, by the session.

The pipeline owns barge-in. Server VAD reports speech (``interrupt_response`` is off);
the session clears playback and tells us what the caller *heard*; we cancel the response if
it is still generating and truncate the assistant item at that position, so the model's
memory of the conversation matches what the caller actually heard.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
from collections import deque
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from pipeline.agents.base import Agent, AgentFactory, AgentOutput, CallInfo
from pipeline.agents.persona import Persona, PersonaBook
from pipeline.agents.realtime import events
from pipeline.agents.realtime.config import RealtimeConfig
from pipeline.agents.realtime.connect import (
    RealtimeAuthError,
    RealtimeUnavailable,
    open_with_retry,
)
from pipeline.agents.realtime.inbox import AudioInbox
from pipeline.audio import PCM16_24K, ULAW_8K, AudioSpec
from pipeline.call_logger import CallLog

log = logging.getLogger("pipeline.agents.realtime")

#: most caller audio sent in one ``input_audio_buffer.append``
MAX_APPEND_MS = 500
#: how long a farewell may take to be generated before the call ends without it
FAREWELL_TIMEOUT_S = 10.0
#: responses remembered for barge-in truncation (the last few are all that can be cut)
KEEP_RESPONSES = 8
#: error codes that are expected races, not bugs (a cancel after the response finished)
BENIGN_ERROR_CODES = frozenset({"response_cancel_not_active"})


class _Say(Enum):
    AUDIO = 1
    END = 2
    FAIL = 3
    HANG_UP = 4


@dataclass(slots=True, eq=False)
class _Response:
    response_id: str
    turn_id: int | None = None
    audio_item_id: str | None = None
    audio_bytes: int = 0
    done: bool = False
    cancelled: bool = False


@dataclass(slots=True)
class _Turns:
    """Which bridge turn belongs to which model response."""

    #: a turn we opened ahead of its response (greeting, farewell, goodbye)
    pending: int | None = None
    active: _Response | None = None
    by_id: dict[str, _Response] = field(default_factory=dict)
    by_turn: dict[int, _Response] = field(default_factory=dict)
    #: turns whose end the session owns (farewell), mapped to a waiter
    external: dict[int, asyncio.Event] = field(default_factory=dict)
    #: goodbye turns after which the call ends (the reason)
    hang_ups: dict[int, str] = field(default_factory=dict)
    #: a user turn was committed and the server is about to answer it
    awaiting_answer: bool = False
    last_turn: int = 0

    def remember(self, response: _Response) -> None:
        self.by_id[response.response_id] = response
        while len(self.by_id) > KEEP_RESPONSES:
            del self.by_id[next(iter(self.by_id))]

    def bind(self, response: _Response, turn_id: int) -> None:
        response.turn_id = turn_id
        self.last_turn = turn_id
        self.by_turn[turn_id] = response
        while len(self.by_turn) > KEEP_RESPONSES:
            del self.by_turn[next(iter(self.by_turn))]


class RealtimeAgent(Agent):
    detects_turns = True

    def __init__(
        self, config: RealtimeConfig, persona: Persona, spec: AudioSpec, call: CallInfo
    ) -> None:
        self.input_spec = spec
        self.output_spec = spec
        self.config = config
        self.persona = persona
        self.log = CallLog.of(log, call.call_id, call.transport)
        self._extra = {"call_id": call.call_id, "transport": call.transport}
        self._wake = asyncio.Event()
        self._inbox = AudioInbox(
            spec.bytes_for_ms(config.inbox_ms), spec.bytes_for_ms(MAX_APPEND_MS)
        )
        self._control: deque[events.Event] = deque()
        self._speech: asyncio.Queue[tuple[_Say, int, Any]] = asyncio.Queue()
        self._turns = _Turns()
        self._history: deque[tuple[str, str]] = deque(maxlen=config.history_items)
        self._out: AgentOutput | None = None
        self._ws: ClientConnection | None = None
        self._connected = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._drop_logged = False
        self.connections = 0

    # -- Agent -----------------------------------------------------------------------------

    async def start(self, out: AgentOutput) -> None:
        """Open the greeting turn (so a toy knows one is coming) and connect in the background.

        Connecting is not awaited here: the transport's receive loop must keep running (and
        ``feed`` keep buffering) while the handshake is retried.
        """
        self._out = out
        if self.persona.first_message:
            self._turns.pending = out.begin_turn()
        self._tasks = [
            out.tasks.spawn(self._run(), "realtime-runner"),
            out.tasks.spawn(self._send_loop(), "realtime-sender"),
            out.tasks.spawn(self._speak_loop(), "realtime-speaker"),
        ]

    def feed(self, audio: bytes) -> None:
        dropped = self._inbox.put(audio)
        self._wake.set()
        if dropped and not self._drop_logged:
            self._drop_logged = True
            self.log.warning(
                "Realtime upstream is not keeping up: dropping the oldest caller audio "
                "(buffer %d ms); the total is logged at the end of the call",
                self.config.inbox_ms,
            )

    @property
    def dropped_ms(self) -> float:
        return self.input_spec.duration_ms(self._inbox.dropped_bytes)

    def interrupted(self, turn_id: int, heard_ms: float) -> None:
        turns = self._turns
        if turns.pending == turn_id:
            turns.pending = None
        response = turns.by_turn.get(turn_id)
        if response is None:
            return
        response.cancelled = True
        if not response.done:
            self._send(events.response_cancel(response.response_id))
        if response.audio_item_id is not None:
            generated_ms = self.output_spec.duration_ms(response.audio_bytes)
            end_ms = int(max(0.0, min(heard_ms, generated_ms)))
            self._send(events.truncate(response.audio_item_id, end_ms))
        self.log.info("barge-in: response %s cut at %.0f ms heard", response.response_id, heard_ms)

    async def farewell(self, turn_id: int, out: AgentOutput) -> None:
        if not self._connected.is_set():
            return  # nothing to say it with; the call still ends politely
        done = asyncio.Event()
        self._turns.external[turn_id] = done
        self._turns.pending = turn_id
        self._send(events.response_create(turn_id, events.FAREWELL_INSTRUCTIONS))
        try:
            await asyncio.wait_for(done.wait(), FAREWELL_TIMEOUT_S)
        except TimeoutError:
            self.log.warning("the farewell did not arrive in time")
        finally:
            self._turns.external.pop(turn_id, None)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        ws, self._ws = self._ws, None
        if ws is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(), 0.5)
        if self._inbox.dropped_bytes:
            self.log.warning(
                "dropped %.0f ms of caller audio in %d overflows while the upstream lagged",
                self.dropped_ms,
                self._inbox.drops,
            )

    # -- connection ------------------------------------------------------------------------

    async def _run(self) -> None:
        first = True
        while True:
            try:
                ws = await open_with_retry(self.config, self._extra)
            except RealtimeAuthError as exc:
                self.log.error("operator error: %s", exc)
                self._give_up("realtime_auth")
                return
            except RealtimeUnavailable as exc:
                self.log.error("giving up on OpenAI Realtime: %s", exc)
                self._give_up("realtime_unavailable")
                return
            self.connections += 1
            try:
                await self._configure(ws, first)
                first = False
                self._ws = ws
                self._connected.set()
                self._wake.set()
                async for message in ws:
                    self._on_message(message)
            except ConnectionClosed:
                pass
            finally:
                self._ws = None
                self._connected.clear()
                self._control.clear()  # cancels and truncations name items of that session
            self.log.warning(
                "Realtime connection lost (close code %s); reconnecting", ws.close_code
            )
            self._fail_open_turns("realtime_disconnected")

    async def _configure(self, ws: ClientConnection, first: bool) -> None:
        """Session config first; after a reconnect the conversation so far, as text."""
        session = events.session_update(self.config, self.persona, self.input_spec)
        await ws.send(json.dumps(session))
        if not first:
            for role, text in self._history:
                await ws.send(json.dumps(events.history_item(role, text)))
        pending = self._turns.pending
        if first and pending is not None:
            message = self.persona.first_message
            await ws.send(
                json.dumps(events.response_create(pending, events.greeting_instructions(message)))
            )

    def _send(self, event: events.Event) -> None:
        """Queue a control event; it goes out ahead of any buffered audio."""
        if self._connected.is_set():
            self._control.append(event)
            self._wake.set()

    async def _send_loop(self) -> None:
        while True:
            await self._connected.wait()
            ws = self._ws
            if ws is None:
                self._connected.clear()
                continue
            if self._control:
                message = json.dumps(self._control.popleft())
            elif len(self._inbox):
                message = json.dumps(events.append_audio(self._inbox.take_nowait()))
            else:
                self._wake.clear()
                await self._wake.wait()
                continue
            try:
                await ws.send(message)
            except ConnectionClosed:
                if self._ws is ws:  # wait for the runner to reconnect
                    self._connected.clear()

    # -- server events (synchronous: never waits on playout) -------------------------------

    def _on_message(self, message: str | bytes) -> None:
        try:
            event = json.loads(message)
            kind = event["type"]
        except (ValueError, KeyError, TypeError):
            self.log.warning("ignoring a malformed Realtime event")
            return
        handler = self._handlers.get(kind)
        if handler is not None:
            handler(self, event)

    def _on_error(self, event: dict[str, Any]) -> None:
        error = event.get("error") or {}
        if error.get("code") in BENIGN_ERROR_CODES:
            self.log.debug("Realtime: %s", error.get("message"))
            return
        self.log.warning(
            "Realtime error type=%s code=%s param=%s event_id=%s: %s",
            error.get("type"),
            error.get("code"),
            error.get("param"),
            error.get("event_id"),
            error.get("message"),
        )

    def _on_speech_started(self, event: dict[str, Any]) -> None:
        assert self._out is not None
        active = self._turns.active
        if active is not None and active.turn_id is None and not active.done:
            # The model is about to answer but has not spoken: the caller goes on talking.
            active.cancelled = True
            self._send(events.response_cancel(active.response_id))
        self._out.user_speech_started()

    def _on_committed(self, event: dict[str, Any]) -> None:
        self._turns.awaiting_answer = True

    def _on_user_transcript(self, event: dict[str, Any]) -> None:
        text = str(event.get("transcript") or "").strip()
        if text and self._out is not None:
            self._history.append(("user", text))
            self._out.transcript(self._turns.last_turn, "user", text)

    def _on_response_created(self, event: dict[str, Any]) -> None:
        body = event.get("response") or {}
        response = _Response(str(body.get("id", "")))
        self._turns.remember(response)
        self._turns.active = response
        self._turns.awaiting_answer = False
        metadata = body.get("metadata") or {}
        wanted = metadata.get(events.TURN_METADATA_KEY)
        pending = self._turns.pending
        if wanted is not None and pending is not None and wanted == str(pending):
            self._turns.bind(response, pending)
            self._turns.pending = None

    def _on_audio_delta(self, event: dict[str, Any]) -> None:
        response = self._turns.by_id.get(str(event.get("response_id", "")))
        if response is None or response.cancelled:
            return
        try:
            audio = base64.b64decode(event["delta"], validate=True)
        except (KeyError, ValueError, TypeError):
            self.log.warning("ignoring an undecodable audio delta")
            return
        if response.turn_id is None:
            assert self._out is not None
            pending, self._turns.pending = self._turns.pending, None
            self._turns.bind(response, pending if pending is not None else self._out.begin_turn())
        if response.audio_item_id is None:
            response.audio_item_id = event.get("item_id")
        response.audio_bytes += len(audio)
        assert response.turn_id is not None
        self._speech.put_nowait((_Say.AUDIO, response.turn_id, audio))

    def _on_assistant_transcript(self, event: dict[str, Any]) -> None:
        response = self._turns.by_id.get(str(event.get("response_id", "")))
        text = str(event.get("transcript") or "").strip()
        if text and self._out is not None:
            self._history.append(("assistant", text))
            turn = response.turn_id if response and response.turn_id is not None else 0
            self._out.transcript(turn, "assistant", text)

    def _on_response_done(self, event: dict[str, Any]) -> None:
        body = event.get("response") or {}
        response = self._turns.by_id.get(str(body.get("id", "")))
        if response is None:
            return
        response.done = True
        if self._turns.active is response:
            self._turns.active = None
        status = body.get("status")
        end_call = _end_call(body)
        hang_up = self._turns.hang_ups.pop(response.turn_id or 0, None)
        if status == "failed":
            self.log.warning("Realtime response failed: %s", body.get("status_details"))
            self._fail(response.turn_id, "realtime_response_failed")
        elif response.cancelled:
            return
        elif response.turn_id is not None:
            self._speech.put_nowait((_Say.END, response.turn_id, None))
        if hang_up is not None:  # the goodbye asked for after a silent end_call
            self._speech.put_nowait((_Say.HANG_UP, response.turn_id or 0, hang_up))
        elif end_call is not None and status != "failed":
            self._end_call(response, *end_call)

    def _end_call(self, response: _Response, call_id: str, reason: str) -> None:
        """The model called ``end_call``: hang up once its goodbye has been heard."""
        self.log.info("the model ended the call: %s", reason or "no reason given")
        if response.turn_id is None:
            # It ended without speaking: ask for the goodbye, then hang up after it.
            assert self._out is not None
            turn = self._out.begin_turn()
            self._turns.pending = turn
            self._send(events.function_output(call_id, '{"ok": true}'))
            self._send(events.response_create(turn, events.GOODBYE_INSTRUCTIONS))
            self._turns.hang_ups[turn] = reason or "end_call"
            return
        self._speech.put_nowait((_Say.HANG_UP, response.turn_id, reason or "end_call"))

    _handlers: dict[str, Any] = {
        "error": _on_error,
        "input_audio_buffer.speech_started": _on_speech_started,
        "input_audio_buffer.committed": _on_committed,
        "conversation.item.input_audio_transcription.completed": _on_user_transcript,
        "response.created": _on_response_created,
        "response.output_audio.delta": _on_audio_delta,
        "response.output_audio_transcript.done": _on_assistant_transcript,
        "response.done": _on_response_done,
    }

    # -- failures --------------------------------------------------------------------------

    def _open_turns(self) -> list[int]:
        turns = self._turns
        open_turns = []
        if turns.pending is not None:
            open_turns.append(turns.pending)
        active = turns.active
        if active is not None and not active.done and not active.cancelled:
            if active.turn_id is not None:
                open_turns.append(active.turn_id)
            else:
                turns.awaiting_answer = True
        turns.pending, turns.active = None, None
        return open_turns

    def _fail_open_turns(self, kind: str) -> None:
        """The connection dropped: whatever the caller was waiting for becomes an apology."""
        open_turns = self._open_turns()
        if self._turns.awaiting_answer:
            self._turns.awaiting_answer = False
            if not open_turns:
                open_turns.append(-1)
        for turn in open_turns:
            self._fail(turn, kind)

    def _fail(self, turn_id: int | None, kind: str) -> None:
        """Fail ``turn_id`` (None or -1: open a new turn for it) through the speaker."""
        if turn_id is None or turn_id < 0:
            assert self._out is not None
            turn_id = self._out.begin_turn()
        self._speech.put_nowait((_Say.FAIL, turn_id, kind))

    def _give_up(self, kind: str) -> None:
        """No connection before the deadline: apologise once, then end the call."""
        open_turns = self._open_turns()
        self._fail(open_turns[0] if open_turns else None, kind)
        self._speech.put_nowait((_Say.HANG_UP, 0, "agent unavailable"))

    # -- the speaker: audio to the pipeline, in order --------------------------------------

    async def _speak_loop(self) -> None:
        assert self._out is not None
        out = self._out
        while True:
            what, turn, payload = await self._speech.get()
            if what is _Say.AUDIO:
                await out.audio(turn, payload)
            elif what is _Say.END:
                waiter = self._turns.external.get(turn)
                if waiter is not None:
                    waiter.set()  # the session ends its own turn
                else:
                    out.end_turn(turn)
            elif what is _Say.FAIL:
                waiter = self._turns.external.get(turn)
                if waiter is not None:
                    waiter.set()
                else:
                    await out.fail_turn(turn, str(payload))
            else:
                response = self._turns.by_turn.get(turn)
                if response is None or not response.cancelled:
                    out.hang_up(str(payload))


def _end_call(body: dict[str, Any]) -> tuple[str, str] | None:
    """``(call_id, reason)`` when the response called the ``end_call`` tool."""
    for item in body.get("output") or []:
        if item.get("type") == "function_call" and item.get("name") == events.END_CALL_TOOL:
            try:
                arguments = json.loads(item.get("arguments") or "{}")
            except ValueError:
                arguments = {}
            reason = arguments.get("reason", "") if isinstance(arguments, dict) else ""
            return str(item.get("call_id", "")), str(reason)
    return None


class RealtimeAgentFactory(AgentFactory):
    """One connection per call; the format is chosen per transport so phones pass through."""

    name = "openai-realtime"

    def __init__(self, config: RealtimeConfig, personas: PersonaBook) -> None:
        self.config = config
        self.personas = personas

    @staticmethod
    def spec_for(call: CallInfo) -> AudioSpec:
        """μ-law both ways for phone calls (no decoding at all); PCM16 24 kHz otherwise."""
        return ULAW_8K if call.transport == "twilio" else PCM16_24K

    def create(self, call: CallInfo) -> Agent:
        return RealtimeAgent(self.config, self.personas.for_call(call), self.spec_for(call), call)
