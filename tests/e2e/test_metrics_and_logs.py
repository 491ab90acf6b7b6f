"""/metrics scraped over HTTP after real calls; the JSON log lines a call leaves behind."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import re
from collections.abc import Iterator

import pytest

from bridge.ops.logs import JsonFormatter
from bridge.ops.metrics import BoundedLabels
from pipeline.agents.base import Agent, CallInfo
from tests.fakes.agents import Factory, FailingTurnAgent, ToneAgent
from tests.support.ops import sample, scrape
from tests.support.serverthread import MakeServer
from tests.support.toys import SECRET, hello_16k, open_toy, token
from tests.support.twilio_calls import open_call, say, say_and_listen


def tone_or_failing(call: CallInfo) -> Agent:
    if call.params.get("fail"):
        return FailingTurnAgent(call)
    return ToneAgent(call, reply_ms=int(call.params.get("reply_ms", "600")))


async def test_metrics_follow_real_calls(
    make_server: MakeServer, hello_ulaw: bytes, interrupt_ulaw: bytes
) -> None:
    server = make_server(Factory(tone_or_failing))
    before = await scrape(server.http)
    assert sample(before, "bridge_active_calls", transport="twilio") == 0
    assert sample(before, "bridge_active_calls", transport="esp32") == 0

    # a normal turn: one latency sample; the caller hangs up with `stop`
    peer = await open_call(server, params={"reply_ms": "600"})
    mid_call = await scrape(server.http)
    assert sample(mid_call, "bridge_active_calls", transport="twilio") == 1
    await say_and_listen(peer, hello_ulaw, quiet_s=0.5, timeout_s=15)
    await peer.send_stop()
    await peer.wait_closed(5)
    await peer.close()

    # over a long reply, the caller says one short word (the reply goes on), then talks
    talker = await open_call(server, params={"reply_ms": "12000"})
    await say(talker, hello_ulaw, tail_ms=700)
    await talker.wait_for_media(1, timeout_s=5)
    await talker.silence(800)
    await talker.stream(interrupt_ulaw[:4000])  # "Wait," alone: short, so not an interruption
    await talker.silence(1000)
    await talker.stream(interrupt_ulaw)  # speech that goes on: a real one
    assert len(talker.timeline.clears) == 2
    await talker.close()

    # an agent error
    failing = await open_call(server, params={"fail": "1"})
    await say(failing, hello_ulaw)
    await failing.silence(500)
    await failing.close()

    await asyncio.to_thread(server.wait_clean)
    after = await scrape(server.http)
    assert sample(after, "bridge_active_calls", transport="twilio") == 0
    assert sample(after, "bridge_calls_ended_total", transport="twilio", reason="stop") == 1
    assert (
        sample(after, "bridge_calls_ended_total", transport="twilio", reason="socket closed") == 2
    )
    count = sample(after, "bridge_turn_latency_seconds_count", transport="twilio")
    total_s = sample(after, "bridge_turn_latency_seconds_sum", transport="twilio")
    # the barge-in call's reply started too, and the failed turn was answered by the apology
    assert count == 3
    assert 0.0 < total_s / count < 1.0  # the tone agent answers at once
    assert sample(after, "bridge_turn_latency_seconds_bucket", transport="twilio", le="5.0") == 3
    assert sample(after, "bridge_turn_latency_seconds_bucket", transport="twilio", le="1.0") == 3
    assert sample(after, "bridge_turn_latency_seconds_bucket", transport="esp32", le="5.0") == 0
    assert sample(after, "bridge_barge_ins_total", transport="twilio") == 1
    assert sample(after, "bridge_false_interruptions_total", transport="twilio") == 1
    kind = {"transport": "twilio", "kind": "RuntimeError"}
    assert sample(after, "bridge_agent_errors_total", **kind) == 1
    # the loop-lag monitor has been sampling all along, and the loop was never stalled long
    lag_count = sample(after, "bridge_event_loop_lag_seconds_count")
    assert lag_count >= 5
    assert sample(after, "bridge_event_loop_lag_seconds_bucket", le="1.0") == lag_count


async def test_toy_sessions_and_refused_toys_are_counted(make_server: MakeServer) -> None:
    server = make_server(BRIDGE_ESP32_JWT_SECRET=SECRET)
    toy = await open_toy(server, idle_mic=True)
    await toy.wait_responses(1, 5)
    assert sample(await scrape(server.http), "bridge_active_calls", transport="esp32") == 1
    await toy.send_instruction("END_SESSION")
    await toy.wait_closed(5)
    await toy.close()
    from tests.support.toys import refused_status

    assert await refused_status(server, token=token(secret="wrong-" + SECRET)) == 401
    await asyncio.to_thread(server.wait_clean)
    samples = await scrape(server.http)
    ended = {"transport": "esp32", "reason": "device ended the session"}
    assert sample(samples, "bridge_calls_ended_total", **ended) == 1
    assert sample(samples, "bridge_rejected_connections_total", route="esp32", reason="auth") == 1


async def test_each_app_has_its_own_registry(make_server: MakeServer, hello_ulaw: bytes) -> None:
    first = make_server()
    second = make_server()
    peer = await open_call(first)
    await peer.send_stop()
    await peer.wait_closed(5)
    await peer.close()
    await asyncio.to_thread(first.wait_clean)
    ended = {"transport": "twilio", "reason": "stop"}
    assert sample(await scrape(first.http), "bridge_calls_ended_total", **ended) == 1
    assert sample(await scrape(second.http), "bridge_calls_ended_total", **ended) == 0


def test_label_values_from_outside_are_bounded() -> None:
    labels = BoundedLabels(limit=3)
    assert [labels(v) for v in ("a", "b", "", "c", "a", "d")] == [
        "a",
        "b",
        "unknown",
        "other",
        "a",
        "other",
    ]


# -- structured logs -----------------------------------------------------------------------


class JsonLines(logging.Handler):
    """Formats every record with the production JSON formatter and keeps the lines."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(JsonFormatter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def json_lines() -> Iterator[JsonLines]:
    handler = JsonLines()
    root = logging.getLogger()
    ours = [logging.getLogger(name) for name in ("bridge", "pipeline", "transports")]
    old = [(logger, logger.level) for logger in [root, *ours]]
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    for logger in ours:
        logger.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        for logger, level in old:
            logger.setLevel(level)


BASE64_RUN = re.compile(r"[A-Za-z0-9+/]{48,}={0,2}")


async def test_call_logs_are_json_with_context_and_no_secrets_or_audio(
    make_server: MakeServer, hello_ulaw: bytes, json_lines: JsonLines
) -> None:
    server = make_server(
        Factory(lambda call: ToneAgent(call, reply_ms=400)), BRIDGE_ESP32_JWT_SECRET=SECRET
    )
    peer = await open_call(server)
    sent = await say_and_listen(peer, hello_ulaw, quiet_s=0.5, timeout_s=15)
    await peer.send_stop()
    await peer.wait_closed(5)
    await peer.close()
    secret_token = token("user-logs")
    toy = await open_toy(server, token=secret_token, idle_mic=True)
    await toy.wait_responses(1, 5)
    await toy.speak(hello_16k())
    await toy.wait_responses(2, 20)
    await toy.close()
    await asyncio.to_thread(server.wait_clean)

    entries = [json.loads(line) for line in json_lines.lines]  # every line is one JSON object
    assert all({"ts", "level", "logger", "msg"} <= entry.keys() for entry in entries)
    phone = [e for e in entries if e.get("call_id") == peer.call_sid]
    assert {e["transport"] for e in phone} == {"twilio"}
    assert any(e["msg"].startswith("call started") for e in phone)
    assert any(e["msg"].startswith("call ended reason=stop") for e in phone)
    assert any(e.get("turn_id") == 1 and "user turn" in e["msg"] for e in phone)
    toy_lines = [e for e in entries if e.get("transport") == "esp32"]
    assert any(e["msg"].startswith("call ended") for e in toy_lines)
    assert any("turn_id" in e for e in toy_lines)

    everything = "\n".join(json_lines.lines)
    assert secret_token not in everything and SECRET not in everything
    assert "+15550001111" not in everything  # phone numbers are masked
    assert not BASE64_RUN.search(everything), BASE64_RUN.search(everything)
    frame_payloads = {base64.b64encode(sent[i : i + 160]).decode() for i in range(0, 4000, 160)}
    assert not any(payload[:24] in everything for payload in frame_payloads)


def test_library_frame_traces_keep_no_payload() -> None:
    from websockets.frames import Frame, Opcode

    from bridge.ops.logs import HideFramePayloads

    payload = '{"event":"media","media":{"payload":"' + "A" * 200 + '"}}'
    frame = Frame(Opcode.TEXT, payload.encode())
    record = logging.LogRecord("uvicorn.error", logging.DEBUG, __file__, 1, "< %s", (frame,), None)
    assert HideFramePayloads().filter(record)
    assert record.getMessage() == f"< TEXT [{len(payload)} bytes]"
