"""Call and turn spans, exported over OTLP/HTTP: one more observer in the app's group.

Imported only when tracing is on (:mod:`bridge.ops.tracing` decides), so it may import the
OpenTelemetry SDK at the top. Each app gets its own ``TracerProvider`` rather than the global
one: several apps share a test process, and a library's global provider is none of ours.

The spans, built from the observer hooks that exist today:

``call``
    from the session's start to its end; attributes: call id, transport, caller label (already
    masked by the transport), end reason and the call's counters.
``turn`` (child of ``call``)
    from the caller's first sound of a committed turn until the next turn is committed, the
    reply is cut by a barge-in, or the call ends; attributes: call and turn ids, speech length,
    latency to the first reply audio, what was heard before a barge-in, transcript lengths.
``turn.user_speech`` and ``turn.reply_wait`` (children of ``turn``)
    the caller's speech up to the commit, and the commit up to the first reply audio.
``tool`` (child of its turn, or of the call)
    one tool call, with its own start time and duration.

Transcript text, keyed digits and tool arguments never go into a span (privacy: a trace
backend is not a call record store); only their lengths do. Stage spans (endpointing,
recognition, first chat token, first speech audio, end of playout) need hooks inside the
agents and the playout that do not exist yet.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Span, Status, StatusCode, Tracer, set_span_in_context

from pipeline.observers import ObservedCall, SessionObserver
from pipeline.tools.base import ToolCallRecord

CALL_ID = "voice.call.id"
TURN_ID = "voice.turn.id"


def _ms_to_ns(ms: float) -> int:
    return int(ms * 1_000_000)


@dataclass(slots=True)
class _Turn:
    span: Span
    context: Context
    committed_ns: int
    chars: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class _Call:
    span: Span
    context: Context
    turns: dict[int, _Turn] = field(default_factory=dict)
    #: tool calls already given a span (a record comes again when speech is cancelled)
    tools_done: set[int] = field(default_factory=set)
    last_turn: int | None = None


class CallTracer(SessionObserver):
    """Makes the spans from a call's hooks; cheap, synchronous, and it never raises on its own
    bookkeeping (a hook for a call it never saw start does nothing)."""

    def __init__(self, tracer: Tracer) -> None:
        self._tracer = tracer
        self._calls: dict[int, _Call] = {}

    def on_call_started(self, session: ObservedCall) -> None:
        call = session.call
        span = self._tracer.start_span(
            "call",
            attributes={
                CALL_ID: call.call_id,
                "voice.transport": call.transport,
                "voice.caller": call.caller,
            },
        )
        self._calls[id(session)] = _Call(span, set_span_in_context(span))

    def on_user_turn(self, session: ObservedCall, turn_id: int, speech_ms: float) -> None:
        call = self._calls.get(id(session))
        if call is None:
            return
        now = time.time_ns()
        if call.last_turn is not None:
            self._end_turn(call, call.last_turn, now)
        began = now - _ms_to_ns(speech_ms)
        ids: dict[str, str | int] = {CALL_ID: session.call.call_id, TURN_ID: turn_id}
        span = self._tracer.start_span(
            "turn",
            context=call.context,
            start_time=began,
            attributes={**ids, "voice.user.speech_ms": speech_ms},
        )
        context = set_span_in_context(span)
        speech = self._tracer.start_span(
            "turn.user_speech", context=context, start_time=began, attributes=ids
        )
        speech.end(end_time=now)
        call.turns[turn_id] = _Turn(span, context, now)
        call.last_turn = turn_id

    def on_turn_latency(self, session: ObservedCall, turn_id: int, latency_ms: float) -> None:
        turn = self._turn(session, turn_id)
        if turn is None:
            return
        turn.span.set_attribute("voice.latency.first_audio_ms", latency_ms)
        wait = self._tracer.start_span(
            "turn.reply_wait",
            context=turn.context,
            start_time=turn.committed_ns,
            attributes={CALL_ID: session.call.call_id, TURN_ID: turn_id},
        )
        wait.end(end_time=turn.committed_ns + _ms_to_ns(latency_ms))

    def on_barge_in(self, session: ObservedCall, turn_id: int, heard_ms: float) -> None:
        call = self._calls.get(id(session))
        if call is None:
            return
        turn = call.turns.get(turn_id)
        if turn is None:  # a reply of the agent's own (a greeting) was cut
            call.span.add_event("barge_in", {TURN_ID: turn_id, "voice.heard_ms": heard_ms})
            return
        turn.span.set_attribute("voice.barge_in.heard_ms", heard_ms)
        turn.span.add_event("barge_in", {"voice.heard_ms": heard_ms})
        self._end_turn(call, turn_id, time.time_ns())

    def on_false_interruption(self, session: ObservedCall, turn_id: int, paused_ms: float) -> None:
        self._event(session, turn_id, "false_interruption", {"voice.paused_ms": paused_ms})

    def on_transcript(self, session: ObservedCall, turn_id: int, role: str, text: str) -> None:
        turn = self._turn(session, turn_id)
        if turn is None:
            return
        turn.chars[role] = turn.chars.get(role, 0) + len(text)
        turn.span.set_attribute(f"voice.transcript.{role}_chars", turn.chars[role])

    def on_agent_error(self, session: ObservedCall, kind: str) -> None:
        call = self._calls.get(id(session))
        if call is None:
            return
        turn = call.turns.get(call.last_turn) if call.last_turn is not None else None
        span = turn.span if turn is not None else call.span
        span.add_event("agent_error", {"voice.error.kind": kind})
        span.set_status(Status(StatusCode.ERROR, kind))

    def on_keypad(self, session: ObservedCall, turn_id: int, digits: str) -> None:
        self._event(session, turn_id, "keypad", {"voice.keypad.digits": len(digits)})

    def on_tool_call(self, session: ObservedCall, record: ToolCallRecord) -> None:
        call = self._calls.get(id(session))
        if call is None:
            return
        turn = call.turns.get(record.turn_id)
        parent = turn.span if turn is not None else call.span
        if record.seq in call.tools_done:
            if record.speech_cancelled:
                parent.add_event("tool_speech_cancelled", {"voice.tool.seq": record.seq})
            return
        if record.duration_ms is None:
            return  # still running: the span is made whole when it ends
        call.tools_done.add(record.seq)
        started = int(record.started_at_s * 1_000_000_000)
        span = self._tracer.start_span(
            "tool",
            context=turn.context if turn is not None else call.context,
            start_time=started,
            attributes={
                CALL_ID: session.call.call_id,
                TURN_ID: record.turn_id,
                "voice.tool.name": record.name,
                "voice.tool.seq": record.seq,
                "voice.tool.failed": bool(record.error),
            },
        )
        if record.error:
            span.set_status(Status(StatusCode.ERROR))
        span.end(end_time=started + _ms_to_ns(record.duration_ms))

    def on_transfer(self, session: ObservedCall, destination: str) -> None:
        call = self._calls.get(id(session))
        if call is not None:
            call.span.add_event("transfer")

    def on_call_ended(self, session: ObservedCall) -> None:
        call = self._calls.pop(id(session), None)
        if call is None:
            return
        now = time.time_ns()
        for turn_id in list(call.turns):
            self._end_turn(call, turn_id, now)
        stats = session.stats
        call.span.set_attributes(
            {
                "voice.end_reason": session.end_reason,
                "voice.user_turns": stats.user_turns,
                "voice.agent_turns": stats.agent_turns,
                "voice.barge_ins": stats.barge_ins,
                "voice.false_interruptions": stats.false_interruptions,
                "voice.agent_errors": stats.agent_errors,
            }
        )
        call.span.end(end_time=now)

    def _turn(self, session: ObservedCall, turn_id: int) -> _Turn | None:
        call = self._calls.get(id(session))
        return call.turns.get(turn_id) if call is not None else None

    def _event(
        self, session: ObservedCall, turn_id: int, name: str, attributes: dict[str, float]
    ) -> None:
        call = self._calls.get(id(session))
        if call is None:
            return
        turn = call.turns.get(turn_id)
        if turn is not None:
            turn.span.add_event(name, attributes)
        else:
            call.span.add_event(name, {TURN_ID: turn_id, **attributes})

    @staticmethod
    def _end_turn(call: _Call, turn_id: int, end_ns: int) -> None:
        turn = call.turns.pop(turn_id, None)
        if turn is not None:
            turn.span.end(end_time=max(end_ns, turn.committed_ns))
        if call.last_turn == turn_id:
            call.last_turn = None


class OtlpTracing:
    """A tracer provider of this app's own, batching spans to an OTLP/HTTP endpoint.

    The batch processor exports from a thread of its own, so a slow or absent collector never
    blocks a call; spans beyond its queue are dropped, not buffered without bound.
    """

    def __init__(self, endpoint: str, service_name: str) -> None:
        self._provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
        self._provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
        self._observer = CallTracer(self._provider.get_tracer("voice-bridge"))

    @property
    def observer(self) -> SessionObserver:
        return self._observer

    async def aclose(self) -> None:
        """Flush and stop; it blocks on the network, so it runs off the event loop."""
        await asyncio.to_thread(self._provider.shutdown)
