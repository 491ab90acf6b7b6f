"""One call's tools: what the model is offered, and running what it asks for.

Both LLM agents use it the same way: the model's reply names some tools
(:class:`ToolRequest`), :meth:`Toolbox.run` runs them all at once and gives one
:class:`ToolResult` per request, in order, whatever happened: arguments that do not match the
tool's schema, an unknown tool, an error or a timeout each become a result the model reads
and can put in words. Nothing a tool does can fail the turn.

Tools run as tasks of the call, not of the turn: a barge-in cancels the answer being spoken,
never a tool's side effect (an order placed stays placed). The records say which tool calls
lost their spoken answer (``speech_cancelled``).

No dead air: when the tools have not all answered after ``slow_after_s``, the agent's
``on_slow`` speaks a short filler line while they finish.

Besides its fixed tools (the persona's), a toolbox may have sources of the call's own tools
(``call_tools.py``: a device's), asked at each use, so tools listed after the call started
are offered from the next turn on. A fixed tool's name wins over a source's.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

import jsonschema

from pipeline.call_logger import CallLog
from pipeline.tasks import TaskSet
from pipeline.tools.base import (
    Tool,
    ToolCallRecord,
    ToolContext,
    ToolRequest,
    ToolResult,
    ToolSpec,
)
from pipeline.tools.call_tools import CallTools

log = logging.getLogger("pipeline.tools")

#: how long the caller waits in silence before the filler line
SLOW_AFTER_S = 1.0
#: how much of a result the call records keep
RECORD_RESULT_CHARS = 500


class ToolCall(ToolContext, Protocol):
    """What running tools needs of the call (the session, as the agent's output)."""

    tasks: TaskSet

    def tool_call(self, record: ToolCallRecord) -> None:
        """Report a tool call for the call records."""


class Toolbox:
    def __init__(
        self,
        tools: Sequence[Tool],
        log: CallLog | logging.Logger = log,
        wall_clock: Callable[[], float] = time.time,
        sources: Sequence[CallTools] = (),
    ) -> None:
        self._fixed = {tool.spec.name: tool for tool in tools}
        self._sources = tuple(sources)
        self._checkers: dict[str, jsonschema.protocols.Validator] = {}
        self._log = log
        self._now = wall_clock
        self._seq = 0
        #: each turn's records, so a barge-in can mark the answers it cancelled
        self._by_turn: dict[int, list[ToolCallRecord]] = {}

    @property
    def _tools(self) -> dict[str, Tool]:
        """Every tool offered now: the fixed ones, then the sources' (names not taken)."""
        if not self._sources:
            return self._fixed
        tools = dict(self._fixed)
        for source in self._sources:
            for tool in source.tools():
                tools.setdefault(tool.spec.name, tool)
        return tools

    def __bool__(self) -> bool:
        """Has tools, or a source that may list some during the call."""
        return bool(self._fixed) or bool(self._sources)

    def __contains__(self, name: str) -> bool:
        return name in self._tools

    @property
    def specs(self) -> list[ToolSpec]:
        return [tool.spec for tool in self._tools.values()]

    async def run(
        self,
        requests: Sequence[ToolRequest],
        turn_id: int,
        call: ToolCall,
        on_slow: Callable[[], Awaitable[None]] | None = None,
        on_result: Callable[[int, ToolResult], None] | None = None,
        slow_after_s: float = SLOW_AFTER_S,
    ) -> list[ToolResult]:
        """Run ``requests`` concurrently; their results in the same order. ``on_result``
        hears each as it arrives, even after a barge-in cancelled the wait for them."""
        records = [self._record(request, turn_id) for request in requests]
        for record in records:
            call.tool_call(record)
        tasks = [
            call.tasks.spawn(
                self._one(i, r, rec, call, on_result), f"tool{rec.seq}", supervised=False
            )
            for i, (r, rec) in enumerate(zip(requests, records, strict=True))
        ]
        _, pending = await asyncio.wait(tasks, timeout=slow_after_s)
        if pending and on_slow is not None:
            self._log.info("tools still running after %.1f s: filler", slow_after_s)
            await on_slow()
        if pending:
            await asyncio.wait(tasks)
        return [task.result() for task in tasks]

    def speech_cancelled(self, turn_id: int, call: ToolCall) -> None:
        """The caller cut ``turn_id`` off: its tools' answers were not (all) heard. A tool
        still running is reported so when it ends."""
        for record in self._by_turn.pop(turn_id, []):
            record.speech_cancelled = True
            if record.duration_ms is not None:
                call.tool_call(record)

    def _record(self, request: ToolRequest, turn_id: int) -> ToolCallRecord:
        self._seq += 1
        tool = self._tools.get(request.name)
        arguments = tool.redact(request.arguments) if tool is not None else request.arguments
        record = ToolCallRecord(self._seq, turn_id, request.name, arguments, self._now())
        turn = self._by_turn.setdefault(turn_id, [])
        turn.append(record)
        if len(self._by_turn) > 4:  # only the last few turns can still be cut off
            del self._by_turn[min(self._by_turn)]
        return record

    async def _one(
        self,
        index: int,
        request: ToolRequest,
        record: ToolCallRecord,
        call: ToolCall,
        on_result: Callable[[int, ToolResult], None] | None,
    ) -> ToolResult:
        started = time.monotonic()
        result = await self._execute(request, call)
        if on_result is not None:
            on_result(index, result)
        tool = self._tools.get(request.name)
        redact = tool.redact if tool is not None else str
        record.duration_ms = round((time.monotonic() - started) * 1000, 1)
        record.error = redact(result.error)
        record.result = redact(result.output)[:RECORD_RESULT_CHARS]
        self._log.info(
            "tool %s %s in %.0f ms%s",
            request.name,
            record.arguments,
            record.duration_ms,
            f": {record.error}" if record.error else "",
        )
        call.tool_call(record)
        return result

    async def _execute(self, request: ToolRequest, call: ToolCall) -> ToolResult:
        tool = self._tools.get(request.name)
        if tool is None:
            return ToolResult.failed(f"there is no tool named {request.name!r}")
        arguments = self._arguments(tool, request.arguments)
        if isinstance(arguments, ToolResult):
            return arguments
        try:
            async with asyncio.timeout(tool.timeout_s):
                return await tool.run(arguments, call)
        except TimeoutError:
            return ToolResult.failed(f"timed out after {tool.timeout_s:g} s")
        except Exception as exc:  # a tool's bug is the model's to explain, not the call's end
            self._log.warning("tool %s failed: %s", request.name, tool.redact(repr(exc)))
            return ToolResult.failed(f"the tool failed ({type(exc).__name__})")

    def _arguments(self, tool: Tool, text: str) -> dict[str, Any] | ToolResult:
        """The model's arguments, parsed and checked against the tool's schema."""
        try:
            arguments = json.loads(text or "{}")
        except ValueError:
            return ToolResult.failed("invalid arguments: not JSON")
        if not isinstance(arguments, dict):
            return ToolResult.failed("invalid arguments: not a JSON object")
        checker = self._checkers.get(tool.spec.name)
        if checker is None or checker.schema != tool.spec.parameters:
            schema = dict(tool.spec.parameters)
            checker = jsonschema.validators.validator_for(schema)(schema)
            self._checkers[tool.spec.name] = checker
        error = jsonschema.exceptions.best_match(checker.iter_errors(arguments))
        if error is not None:
            where = "/".join(str(p) for p in error.absolute_path) or "arguments"
            return ToolResult.failed(f"invalid arguments: {where}: {error.message}")
        return arguments
