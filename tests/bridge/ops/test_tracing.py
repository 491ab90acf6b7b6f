"""OpenTelemetry traces: call and turn spans reach a real OTLP/HTTP receiver; off, no SDK loads.

The end-to-end test runs the real bridge and the real exporter against
tests/fakes/otlp_receiver.py on loopback; the unit tests drive the observer's hooks directly
for what an echo call never does (barge-ins, tools, agent errors) and check the flush at
shutdown.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.tracing_cost import app_group, per_call_us
from bridge.ops.traces import CallTracer, OtlpTracing
from bridge.ops.tracing import traces_endpoint, tracing_from_env
from pipeline.tools.base import ToolCallRecord
from tests.bridge.call_records.helpers import FakeCall
from tests.fakes.otlp_receiver import OtlpReceiver, ReceivedSpan
from tests.support.serverthread import MakeServer
from tests.support.twilio_calls import open_call, say_and_listen

CALL_ID = "voice.call.id"
TURN_ID = "voice.turn.id"


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    receiver = OtlpReceiver().start()
    yield receiver
    receiver.stop()


def by_id(spans: list[ReceivedSpan]) -> dict[str, ReceivedSpan]:
    return {span.span_id: span for span in spans}


async def test_call_and_turn_spans_reach_a_real_otlp_receiver(
    receiver: OtlpReceiver,  # first: it outlives the server, which flushes to it as it stops
    make_server: MakeServer,
    hello_ulaw: bytes,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url)
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "50")  # export within the test, not in 5 s
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", raising=False)
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    server = make_server()
    assert any(isinstance(o, CallTracer) for o in server.app.state.bridge.observers._observers)

    peer = await open_call(server)
    for _ in range(2):  # two user turns, echoed back
        await say_and_listen(peer, hello_ulaw, quiet_s=0.8, timeout_s=15)
    await peer.send_stop()
    await peer.close()

    spans = await asyncio.to_thread(receiver.wait_for, lambda r: bool(r.named("call")))
    assert set(receiver.paths) == {"/v1/traces"}
    [call] = [s for s in spans if s.name == "call"]
    assert call.parent_span_id == ""  # a root: one trace per call
    assert call.resource["service.name"] == "voice-bridge"
    call_id = call.attributes[CALL_ID]
    assert call_id == peer.call_sid
    assert call.attributes["voice.transport"] == "twilio"
    assert call.attributes["voice.end_reason"]
    assert call.attributes["voice.user_turns"] == 2

    turns = sorted((s for s in spans if s.name == "turn"), key=lambda s: s.start_ns)
    assert [t.attributes[TURN_ID] for t in turns] == sorted(
        {t.attributes[TURN_ID] for t in turns}
    ) and len(turns) == 2
    spans_by_id = by_id(spans)
    for turn in turns:
        assert turn.trace_id == call.trace_id and turn.parent_span_id == call.span_id
        assert turn.attributes[CALL_ID] == call_id
        assert call.start_ns <= turn.start_ns <= turn.end_ns <= call.end_ns
        speech_ms = turn.attributes["voice.user.speech_ms"]
        assert speech_ms > 300  # "hello" spoken, with explicit start and end times
        latency_ms = turn.attributes["voice.latency.first_audio_ms"]
        assert 0 < latency_ms < 5000
        children = {
            s.name: s
            for s in spans
            if s.parent_span_id == turn.span_id and s.trace_id == call.trace_id
        }
        assert set(children) == {"turn.user_speech", "turn.reply_wait"}
        assert children["turn.user_speech"].duration_ms == pytest.approx(speech_ms, abs=0.01)
        assert children["turn.reply_wait"].duration_ms == pytest.approx(latency_ms, abs=0.01)
        assert children["turn.user_speech"].end_ns == children["turn.reply_wait"].start_ns
        assert all(c.attributes[TURN_ID] == turn.attributes[TURN_ID] for c in children.values())
    # nothing dangles: every parent is in the trace
    assert all(s.parent_span_id in spans_by_id for s in spans if s.parent_span_id)


def test_shutdown_flushes_spans_with_events_tools_and_no_text(
    receiver: OtlpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A long batch delay: only the flush at shutdown can have sent these."""
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "60000")
    tracing = OtlpTracing(f"{receiver.url}/v1/traces", "bridge-test")
    tracer = tracing.observer
    fake = FakeCall("CA42")
    session = fake.observed
    tracer.on_call_started(session)
    tracer.on_user_turn(session, 1, 800.0)
    tracer.on_transcript(session, 1, "user", "my secret account number")
    tracer.on_transcript(session, 1, "agent", "noted")
    started = time.time()
    record = ToolCallRecord(1, 1, "lookup", '{"account": "secret"}', started)
    tracer.on_tool_call(session, record)  # still running: no span yet
    record.duration_ms = 120.0
    tracer.on_tool_call(session, record)
    record.speech_cancelled = True
    tracer.on_tool_call(session, record)
    tracer.on_turn_latency(session, 1, 450.0)
    tracer.on_barge_in(session, 1, 700.0)
    tracer.on_false_interruption(session, 0, 200.0)  # a greeting's: an event on the call
    tracer.on_user_turn(session, 2, 0.0)  # the session's order: the turn, then its keys
    tracer.on_keypad(session, 2, "1234")
    tracer.on_agent_error(session, "TimeoutError")
    fake.end_reason = "caller_hangup"
    fake.stats.user_turns = 2
    tracer.on_call_ended(session)
    tracer.on_user_turn(session, 3, 100.0)  # after the end: ignored, never raises
    assert receiver.spans == []

    asyncio.run(tracing.aclose())

    spans = receiver.spans
    assert {s.resource["service.name"] for s in spans} == {"bridge-test"}
    [call] = [s for s in spans if s.name == "call"]
    assert call.attributes["voice.end_reason"] == "caller_hangup"
    assert [e[0] for e in call.events] == ["false_interruption"]
    turns = {s.attributes[TURN_ID]: s for s in spans if s.name == "turn"}
    first, second = turns[1], turns[2]
    assert first.parent_span_id == second.parent_span_id == call.span_id
    assert first.attributes["voice.barge_in.heard_ms"] == 700.0
    assert first.attributes["voice.transcript.user_chars"] == len("my secret account number")
    assert first.attributes["voice.transcript.agent_chars"] == 5
    assert [e[0] for e in first.events] == ["tool_speech_cancelled", "barge_in"]
    assert [e[0] for e in second.events] == ["keypad", "agent_error"]
    assert second.events[0][1] == {"voice.keypad.digits": 4} and second.status == 2
    [tool] = [s for s in spans if s.name == "tool"]
    assert tool.parent_span_id == first.span_id and tool.attributes["voice.tool.name"] == "lookup"
    assert tool.duration_ms == pytest.approx(120.0, abs=0.01)
    assert tool.start_ns == int(started * 1_000_000_000)
    everything = json.dumps([(s.attributes, s.events) for s in spans])
    assert "secret" not in everything and "1234" not in everything  # lengths, never text


def test_the_standard_variables_decide() -> None:
    assert traces_endpoint({}) is None
    assert traces_endpoint({"OTEL_EXPORTER_OTLP_ENDPOINT": " "}) is None
    base = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318/"}
    assert traces_endpoint(base) == "http://collector:4318/v1/traces"
    both = {**base, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "https://x.example/otlp/spans"}
    assert traces_endpoint(both) == "https://x.example/otlp/spans"
    assert traces_endpoint({**both, "OTEL_SDK_DISABLED": "TRUE"}) is None
    assert tracing_from_env({}) is None


OFF_SCRIPT = """
import os, sys, json
for name in list(os.environ):
    if name.startswith("OTEL_"):
        del os.environ[name]
from bridge.app import create_app
from bridge.settings import Settings
app = create_app(Settings.from_env(
    {"BRIDGE_AGENT": "echo", "BRIDGE_RECORDS_URL": sys.argv[1]}, dotenv_path=None))
observers = [type(o).__name__ for o in app.state.bridge.observers._observers]
loaded = [m for m in sys.modules if m.startswith(("opentelemetry.sdk", "opentelemetry.exporter"))]
print(json.dumps({"observers": observers, "loaded": loaded}))
"""


def test_off_no_observer_and_no_sdk_imported(tmp_path: Path) -> None:
    """In a fresh interpreter: this test process has the SDK loaded by the tests above."""
    url = f"sqlite:///{tmp_path}/calls.db"
    out = subprocess.run(
        [sys.executable, "-c", OFF_SCRIPT, url], capture_output=True, text=True, check=True
    ).stdout
    seen = json.loads(out.strip().splitlines()[-1])
    assert "CallTracer" not in seen["observers"] and "MetricsObserver" in seen["observers"]
    assert seen["loaded"] == []


def test_the_bench_runs() -> None:
    """bench/tracing_cost.py, at a size that only checks it still works."""
    assert per_call_us(app_group(None), calls=3, turns=2, runs=1) > 0
