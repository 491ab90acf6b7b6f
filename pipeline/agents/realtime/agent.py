"""The OpenAI Realtime agent: the caller's audio streams up, the model's voice streams down.

One WebSocket per call, three tasks in the call's task set (the call's end cancels them):

* the **runner** (:meth:`RealtimeLink.run`) connects (retrying to a deadline), configures the
  session and reads server events, handled synchronously by :class:`ServerEvents`: control
  events (speech started, a response beginning or ending) are never stuck behind audio
  waiting for playout space;
* the **sender** (:meth:`RealtimeLink.send_loop`) drains the bounded drop-oldest caller audio
  that :meth:`feed` buffers, and sends control events (cancel, truncate) ahead of audio;
* the **speaker** (:class:`Speaker`) hands audio to the pipeline in order and waits there when
  playout is full.

This module is the seam to the pipeline: it wires those parts together and answers the calls
the session makes (feed, barge-in, farewell, close). Which bridge turn belongs to which model
response is kept in :mod:`.turns`.

Audio passes through untouched where the wire allows it: phone calls use ``audio/pcmu`` both
ways (Twilio's μ-law bytes are what the model hears); toys use 24 kHz PCM16, which their Opus
output already is, so only the 16 -> 24 kHz microphone side is resampled, once, by the session.

The pipeline owns barge-in. Server VAD reports speech (``interrupt_response`` is off);
the session stops playback and judges the sound (``pipeline/barge_in.py``). A real
interruption: we cancel the response if it is still generating and truncate the assistant
item at what the caller *heard*, so the model's memory matches what the caller actually
heard, then ask for the answer to the interrupting turn. A false one (a cough, an "uh-huh"):
the reply goes on and the sound's items are deleted (``judged.py``).

Every control event goes out through :meth:`RealtimeAgent._send`: before a ``response.create``
it offers tools listed since the session last heard of them (``tool_calls.py``), so a
device's own tools can be called from the next response on. A cheap comparison, no waiting.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Iterator

from pipeline.agents.base import Agent, AgentFactory, AgentOutput, CallInfo
from pipeline.agents.persona import Persona, PersonaBook
from pipeline.agents.realtime import events
from pipeline.agents.realtime.config import RealtimeConfig
from pipeline.agents.realtime.link import RealtimeLink
from pipeline.agents.realtime.server_events import ServerEvents
from pipeline.agents.realtime.speaker import Speaker
from pipeline.agents.realtime.tool_calls import RealtimeTools, say_exactly
from pipeline.agents.realtime.turns import Response, Turns
from pipeline.audio import PCM16_24K, ULAW_8K, AudioSpec
from pipeline.call_logger import CallLog
from pipeline.tools.base import ToolRequest
from pipeline.tools.offer import ToolOffer
from pipeline.tools.toolbox import Toolbox

log = logging.getLogger("pipeline.agents.realtime")

#: how long a farewell may take to be generated before the call ends without it
FAREWELL_TIMEOUT_S = 10.0


class RealtimeAgent(Agent):
    detects_turns = True

    uses_keypad = True

    def __init__(
        self,
        config: RealtimeConfig,
        persona: Persona,
        spec: AudioSpec,
        call: CallInfo,
        toolbox: Toolbox | None = None,
    ) -> None:
        self.input_spec = spec
        self.output_spec = spec
        self.config = config
        self.persona = persona
        self.log = CallLog.of(log, call.call_id, call.transport)
        extra = {"call_id": call.call_id, "transport": call.transport}
        self._link = RealtimeLink(config, spec, self.log, extra)
        self._turns = Turns()
        self._history: deque[tuple[str, str]] = deque(maxlen=config.history_items)
        self._speaker = Speaker(self._turns)
        self._events = ServerEvents(self._turns, self._speaker, self._history, self._send, self.log)
        self._tasks: list[asyncio.Task[None]] = []
        self._drop_logged = False
        self._tools = RealtimeTools(
            toolbox or Toolbox([], self.log), persona, self._turns, self._send, self._say
        )
        self._events.on_tools = self._tools_requested

    @property
    def connections(self) -> int:
        """Connections made so far (1 + reconnects)."""
        return self._link.connections

    # -- Agent -----------------------------------------------------------------------------

    async def start(self, out: AgentOutput) -> None:
        """Open the greeting turn (so a toy knows one is coming) and connect in the background.

        Connecting is not awaited here: the transport's receive loop must keep running (and
        ``feed`` keep buffering) while the handshake is retried.
        """
        self._events.out = out
        if self.persona.first_message:
            self._turns.pending = out.begin_turn()
        self._tasks = [
            out.tasks.spawn(self._link.run(self._opening, self._events), "realtime-runner"),
            out.tasks.spawn(self._link.send_loop(), "realtime-sender"),
            out.tasks.spawn(self._speaker.run(out), "realtime-speaker"),
        ]

    def feed(self, audio: bytes) -> None:
        dropped = self._link.put_audio(audio)
        if dropped and not self._drop_logged:
            self._drop_logged = True
            self.log.warning(
                "Realtime upstream is not keeping up: dropping the oldest caller audio "
                "(buffer %d ms); the total is logged at the end of the call",
                self.config.inbox_ms,
            )

    @property
    def dropped_ms(self) -> float:
        return self.input_spec.duration_ms(self._link.inbox.dropped_bytes)

    def interruption_dismissed(self, turn_id: int) -> None:
        """Not an interruption: the server's items of that sound leave the conversation."""
        for item_id in self._events.items.harmless():
            self._send(events.item_delete(item_id))

    @property
    def voicemail(self) -> str:
        return self.persona.voicemail

    def _send(self, event: events.Event) -> None:
        """Queue a control event; a response asked for first gets the tools as they are now
        when they changed since the session heard of them (never waits)."""
        if event["type"] == "response.create" and self._link.connected:
            update = self._tools.changed()
            if update is not None:
                names = [tool["name"] for tool in update["session"]["tools"]]
                self.log.info("the call's tools changed: offering %s", ", ".join(names))
                self._link.send(update)
        self._link.send(event)

    def _tools_requested(self, response: Response, requests: list[ToolRequest]) -> None:
        assert self._events.out is not None
        self._tools.requested(response, requests, self._events.out)

    async def keypad(self, turn_id: int, digits: str, out: AgentOutput) -> None:
        """Keys are the caller's message in words; the answer is this turn's."""
        text = f"[keypad: {digits}]"
        self._history.append(("user", text))
        out.transcript(turn_id, "user", text)
        self._turns.user_turns += 1
        self._send(events.history_item("user", text))
        await self._respond_as(turn_id, "")

    async def say(self, turn_id: int, text: str, out: AgentOutput) -> None:
        await self._respond_as(turn_id, say_exactly(text))

    async def _say(self, text: str) -> None:
        """Say ``text`` word for word as a turn of its own (a filler, a handoff line)."""
        out = self._events.out
        assert out is not None
        turn = out.begin_turn()
        try:
            await self._respond_as(turn, say_exactly(text))
        finally:
            out.end_turn(turn)

    async def _respond_as(self, turn_id: int, instructions: str) -> None:
        """Ask for a response as ``turn_id`` and wait until it has been generated (the
        session ends the turn); not connected, or too slow: it goes unsaid."""
        if not self._link.connected:
            return
        done = asyncio.Event()
        self._turns.external[turn_id] = done
        self._turns.pending = turn_id
        self._send(events.response_create(turn_id, instructions))
        try:
            async with asyncio.timeout(FAREWELL_TIMEOUT_S):
                await done.wait()
        except TimeoutError:
            self.log.warning("turn %d: the response did not arrive in time", turn_id)
        finally:
            self._turns.external.pop(turn_id, None)

    def interrupted(self, turn_id: int, heard_ms: float) -> None:
        if self._events.out is not None:
            self._tools.interrupted(turn_id, self._events.out)
        self._cut(turn_id, heard_ms)
        if self._events.items.real():  # the interrupting turn, committed while it was judged
            self._events.answer()

    def _cut(self, turn_id: int, heard_ms: float) -> None:
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
        # not connected: nothing to say it with; the call still ends politely
        await self._respond_as(turn_id, events.FAREWELL_INSTRUCTIONS)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._link.close()
        inbox = self._link.inbox
        if inbox.dropped_bytes:
            self.log.warning(
                "dropped %.0f ms of caller audio in %d overflows while the upstream lagged",
                self.dropped_ms,
                inbox.drops,
            )

    # -- the session's opening -------------------------------------------------------------

    def _opening(self, first: bool) -> Iterator[events.Event]:
        """Session config first; after a reconnect the conversation so far, as text.

        A generator, so the greeting's turn is read only when it is about to be sent.
        """
        yield events.session_update(
            self.config, self.persona, self.input_spec, self._tools.session_tools()
        )
        if not first:
            for role, text in self._history:
                yield events.history_item(role, text)
        pending = self._turns.pending
        if first and pending is not None:
            message = self.persona.first_message
            yield events.response_create(pending, events.greeting_instructions(message))


class RealtimeAgentFactory(AgentFactory):
    """One connection per call; the format is chosen per transport so phones pass through."""

    name = "openai-realtime"

    def __init__(
        self, config: RealtimeConfig, personas: PersonaBook, tools: ToolOffer | None = None
    ) -> None:
        self.config = config
        self.personas = personas
        self.tools = tools or ToolOffer()

    @staticmethod
    def spec_for(call: CallInfo) -> AudioSpec:
        """μ-law both ways for phone calls (no decoding at all); PCM16 24 kHz otherwise."""
        return ULAW_8K if call.transport == "twilio" else PCM16_24K

    def create(self, call: CallInfo) -> Agent:
        persona = self.personas.for_call(call)
        toolbox = self.tools.toolbox(persona, call, CallLog.of(log, call.call_id, call.transport))
        return RealtimeAgent(self.config, persona, self.spec_for(call), call, toolbox)

    async def start(self) -> None:
        await self.tools.start()

    async def aclose(self) -> None:
        await self.tools.aclose()
