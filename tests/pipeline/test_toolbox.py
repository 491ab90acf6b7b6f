"""The toolbox on a virtual clock: calls run at once, bad arguments and failures become
results the model reads, a slow tool brings the filler, a barge-in cancels speech only."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest

from pipeline.agents.base import CallInfo
from pipeline.agents.persona import Persona
from pipeline.audio import PCM16_16K
from pipeline.tasks import TaskSet
from pipeline.tools.base import (
    Tool,
    ToolCallRecord,
    ToolContext,
    ToolRequest,
    ToolResult,
    ToolSpec,
    TransferFailed,
    TransferTarget,
)
from pipeline.tools.offer import ToolOffer
from pipeline.tools.toolbox import Toolbox
from pipeline.tools.transfer import TransferTool
from tests.support.virtual_time import run_virtual

SCHEMA = {
    "type": "object",
    "properties": {"order_id": {"type": "string"}},
    "required": ["order_id"],
    "additionalProperties": False,
}


class Lookup(Tool):
    """Answers after ``delay_s``; its secret must never reach a record."""

    timeout_s = 5.0

    def __init__(self, name: str = "lookup", delay_s: float = 0.2) -> None:
        self.spec = ToolSpec(name, "Look an order up.", SCHEMA)
        self.delay_s = delay_s
        self.started: list[float] = []
        self.finished = 0

    async def run(self, arguments: dict[str, Any], context: ToolContext) -> ToolResult:
        self.started.append(asyncio.get_running_loop().time())
        await asyncio.sleep(self.delay_s)
        self.finished += 1
        return ToolResult(json.dumps({"order_id": arguments["order_id"], "key": "s3cret"}))

    def redact(self, text: str) -> str:
        return text.replace("s3cret", "${KEY}")


class Broken(Tool):
    spec = ToolSpec("broken", "Always fails.")

    async def run(self, arguments: dict[str, Any], context: ToolContext) -> ToolResult:
        raise RuntimeError("bug with s3cret inside")


class Call:
    """The call's side: tasks, records, transfers."""

    def __init__(self, transfer_error: str = "") -> None:
        self.tasks = TaskSet("call-1")
        self.records: list[ToolCallRecord] = []
        self.transferred: list[str] = []
        self.transfer_error = transfer_error

    def tool_call(self, record: ToolCallRecord) -> None:
        self.records.append(ToolCallRecord(**{k: getattr(record, k) for k in record.__slots__}))

    async def transfer(self, target: TransferTarget) -> None:
        if self.transfer_error:
            raise TransferFailed(self.transfer_error)
        self.transferred.append(target.name)


def request(name: str, arguments: dict[str, Any] | str, n: int = 1) -> ToolRequest:
    text = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return ToolRequest(f"call_{n}", name, text)


def test_calls_run_concurrently_and_results_keep_the_order() -> None:
    async def main() -> None:
        slow, fast = Lookup("slow", 0.6), Lookup("fast", 0.1)
        call = Call()
        box = Toolbox([slow, fast])
        start = asyncio.get_running_loop().time()
        results = await box.run(
            [request("slow", {"order_id": "1"}, 1), request("fast", {"order_id": "2"}, 2)], 3, call
        )
        assert asyncio.get_running_loop().time() - start == pytest.approx(0.6, abs=0.01)
        assert slow.started == fast.started  # both began at once
        assert [json.loads(r.output)["order_id"] for r in results] == ["1", "2"]
        ends = [r for r in call.records if r.duration_ms is not None]
        assert [r.name for r in ends] == ["fast", "slow"]
        assert all("s3cret" not in r.result and r.turn_id == 3 for r in ends)
        assert [r.seq for r in ends] == [2, 1]

    run_virtual(main)


@pytest.mark.parametrize(
    ("name", "arguments", "error"),
    [
        ("lookup", "{not json", "invalid arguments: not JSON"),
        ("lookup", "[1]", "invalid arguments: not a JSON object"),
        ("lookup", {}, "invalid arguments: arguments: 'order_id' is a required property"),
        ("lookup", {"order_id": 42}, "invalid arguments: order_id: 42 is not of type 'string'"),
        ("nothing", {}, "there is no tool named 'nothing'"),
        ("broken", {}, "the tool failed (RuntimeError)"),
    ],
)
def test_what_goes_wrong_is_a_result_the_model_reads(
    name: str, arguments: dict[str, Any] | str, error: str
) -> None:
    async def main() -> None:
        lookup = Lookup()
        call = Call()
        [result] = await Toolbox([lookup, Broken()]).run([request(name, arguments)], 1, call)
        assert result.error == error and json.loads(result.output) == {"error": error}
        assert lookup.finished == 0
        assert call.records[-1].error == error and "s3cret" not in str(call.records)

    run_virtual(main)


def test_a_tool_that_does_not_answer_in_time_times_out() -> None:
    async def main() -> None:
        [result] = await Toolbox([Lookup(delay_s=60)]).run(
            [request("lookup", {"order_id": "1"})], 1, Call()
        )
        assert result.error == "timed out after 5 s"

    run_virtual(main)


def test_a_slow_tool_brings_the_filler_after_a_second_and_a_quick_one_does_not() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        fillers: list[float] = []

        async def filler() -> None:
            fillers.append(loop.time())
            await asyncio.sleep(0.5)  # the line takes time to say

        start = loop.time()
        box = Toolbox([Lookup("quick", 0.3), Lookup("slow", 2.0)])
        await box.run([request("quick", {"order_id": "1"})], 1, Call(), filler)
        assert fillers == []
        await box.run([request("slow", {"order_id": "1"})], 2, Call(), filler)
        assert fillers == [pytest.approx(start + 0.3 + 1.0, abs=0.01)]

    run_virtual(main)


def test_a_barge_in_cancels_the_answer_never_the_tool_and_the_record_says_so() -> None:
    async def main() -> None:
        tool = Lookup(delay_s=1.0)
        call = Call()
        box = Toolbox([tool])
        settled: list[int] = []
        waiting = asyncio.create_task(
            box.run(
                [request("lookup", {"order_id": "7"})],
                4,
                call,
                on_result=lambda i, r: settled.append(i),
            )
        )
        await asyncio.sleep(0.3)
        waiting.cancel()  # the caller barged in: the turn's task is cancelled
        box.speech_cancelled(4, call)
        await asyncio.sleep(1.0)
        assert tool.finished == 1 and settled == [0]  # the side effect happened
        last = call.records[-1]
        assert last.duration_ms is not None and last.speech_cancelled
        await call.tasks.cancel_all()

    run_virtual(main)


def test_transfer_call_offers_the_destinations_and_hands_over() -> None:
    async def main() -> None:
        desk = TransferTarget("desk", "+15551230002", "The front desk.")
        sales = TransferTarget("sales", "sip:sales@pbx.example.com", "New orders.")
        box = Toolbox([TransferTool([desk, sales])])
        [spec] = box.specs
        assert spec.parameters["properties"]["destination"]["enum"] == ["desk", "sales"]
        assert "desk: The front desk." in spec.description
        call = Call()
        [done] = await box.run([request("transfer_call", {"destination": "sales"})], 1, call)
        assert done.final and call.transferred == ["sales"]
        [refused] = await box.run([request("transfer_call", {"destination": "boss"})], 1, call)
        assert refused.error.startswith("invalid arguments: destination: 'boss' is not one of")
        failing = Call(transfer_error="busy")
        [failed] = await box.run([request("transfer_call", {"destination": "desk"})], 1, failing)
        assert not failed.final and failed.error == "the transfer to desk failed: busy"

    run_virtual(main)


def test_only_phone_calls_that_can_be_handed_over_are_offered_transfer_call() -> None:
    desk = TransferTarget("desk", "+15551230002", "The front desk.")
    persona = Persona(name="shop", transfer=(desk,))
    phone = CallInfo("CA1", "twilio", PCM16_16K)
    toy = CallInfo("toy-1", "esp32", PCM16_16K)
    offer = ToolOffer(transfers=("twilio",))
    assert "transfer_call" in offer.toolbox(persona, phone, logging.getLogger())
    assert "transfer_call" not in offer.toolbox(persona, toy, logging.getLogger())
    cannot = ToolOffer()  # no REST credentials or public host
    assert "transfer_call" not in cannot.toolbox(persona, phone, logging.getLogger())
    assert not offer.toolbox(Persona(), phone, logging.getLogger())
