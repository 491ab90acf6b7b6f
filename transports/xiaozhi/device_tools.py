"""A xiaozhi device's own tools, offered to the call's LLM agent: the MCP client side.

When the device's hello says ``features.mcp``, the adapter starts :meth:`DeviceTools.connect`
as a task of the call: ``initialize``, ``notifications/initialized``, then ``tools/list``
page by page (at most :data:`MAX_PAGES`). The call's toolbox asks :meth:`DeviceTools.tools`
at every turn (``pipeline/tools/call_tools.py``), so the tools are offered from the first
turn after the list arrived, under names the model may use (``self.audio_speaker.set_volume``
is offered as ``self_audio_speaker_set_volume``) and called by their own.

Every request has an id and a timeout. A device that never answers, answers garbage or a
JSON-RPC error costs only that request: listing stops with a clear log line (the tools
listed so far stay offered), and a tool call gives the model an error result it can put in
words. Nothing here can end or hang the call.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from pipeline.tools.base import Tool, ToolContext, ToolResult, ToolSpec
from pipeline.tools.call_tools import function_name
from transports.xiaozhi import mcp
from transports.xiaozhi.mcp import McpError

log = logging.getLogger("transports.xiaozhi.mcp")

#: how long ``initialize`` and each ``tools/list`` page may take
REQUEST_TIMEOUT_S = 5.0
#: how long a ``tools/call`` may take (the toolbox's own limit is a little longer)
CALL_TIMEOUT_S = 8.0
#: a listing that keeps saying "there is more" is cut here
MAX_PAGES = 8
#: requests one call may have in flight (the model asks for a few tools at once at most)
MAX_PENDING = 16

Send = Callable[[dict[str, Any]], Awaitable[None]]


class DeviceTools:
    """One device's MCP tools for one call (a :class:`~pipeline.tools.call_tools.CallTools`)."""

    def __init__(
        self,
        send: Send,
        context: Mapping[str, str],
        request_timeout_s: float | None = None,
        call_timeout_s: float | None = None,
        max_pages: int = MAX_PAGES,
    ) -> None:
        self._send = send
        self._context = dict(context)
        #: the module's limits unless given (read now, so a test may lower them)
        self.request_timeout_s = request_timeout_s or REQUEST_TIMEOUT_S
        self.call_timeout_s = call_timeout_s or CALL_TIMEOUT_S
        self.max_pages = max_pages
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[mcp.Response]] = {}
        self._tools: list[DeviceTool] = []
        #: "idle", "listing", "ready" (listed, maybe partly) or "failed"
        self.state = "idle"
        #: messages that answered nothing we asked (late, unknown ids, garbage)
        self.ignored = 0

    def tools(self) -> Sequence[Tool]:
        return self._tools

    async def connect(self) -> None:
        """Initialise the device's MCP server and list its tools; never raises."""
        self.state = "listing"
        listed: list[mcp.DeviceToolSpec] = []
        try:
            server = mcp.parse_initialize(await self.request("initialize", mcp.initialize_params()))
            await self._send(mcp.notification("notifications/initialized"))
            cursor = ""
            for _ in range(self.max_pages):
                page = mcp.parse_tool_page(
                    await self.request("tools/list", mcp.list_params(cursor))
                )
                listed.extend(page.tools)
                cursor = page.next_cursor
                if not cursor:
                    break
            else:
                self._warn(
                    "tools/list still had more after %d pages; the rest is not offered",
                    self.max_pages,
                )
        except McpError as exc:
            self.state = "failed"
            self._warn("device MCP failed: %s; %d tools offered", exc, len(listed))
        else:
            self.state = "ready"
            log.info("device MCP %s: %d tools", server, len(listed), extra=self._context)
        self._tools = self._offer(listed[: mcp.MAX_TOOLS])

    def receive(self, payload: dict[str, Any]) -> None:
        """An MCP message from the device (in the receive loop: sync, cheap)."""
        response = mcp.parse_response(payload)
        waiter = self._pending.get(response.id) if response is not None else None
        if response is None or waiter is None or waiter.done():
            self.ignored += 1  # a notification, a late answer, or garbage: nothing waits
            return
        waiter.set_result(response)

    async def request(
        self, method: str, params: dict[str, Any], timeout_s: float | None = None
    ) -> Any:
        """Send one request and wait for its result; :class:`McpError` for anything else."""
        if len(self._pending) >= MAX_PENDING:
            raise McpError(f"{method}: too many requests in flight")
        request_id = next(self._ids)
        waiter: asyncio.Future[mcp.Response] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = waiter
        timeout_s = self.request_timeout_s if timeout_s is None else timeout_s
        try:
            await self._send(mcp.request(request_id, method, params))
            async with asyncio.timeout(timeout_s):
                response = await waiter
        except TimeoutError:
            raise McpError(f"{method}: the device did not answer within {timeout_s:g} s") from None
        finally:
            del self._pending[request_id]
        if response.error:
            raise McpError(f"{method}: the device answered with an error: {response.error}")
        return response.result

    async def call(self, name: str, arguments: dict[str, Any]) -> ToolResult:
        """Call the device's tool ``name``; every failure is a result the model reads."""
        try:
            result = await self.request(
                "tools/call", mcp.call_params(name, arguments), self.call_timeout_s
            )
            outcome = mcp.parse_call_result(result)
        except McpError as exc:
            self._warn("tool %s failed: %s", name, exc)
            return ToolResult.failed(str(exc))
        if outcome.is_error:
            return ToolResult.failed(outcome.text or "the device's tool failed")
        return ToolResult(outcome.text)

    def close(self) -> None:
        """The call is over: nobody waits any more."""
        for waiter in self._pending.values():
            waiter.cancel()
        self._tools = []

    def _offer(self, listed: list[mcp.DeviceToolSpec]) -> list[DeviceTool]:
        taken: set[str] = set()
        tools = []
        for spec in listed:
            safe = function_name(spec.name, taken)
            taken.add(safe)
            tools.append(DeviceTool(self, spec, safe))
        return tools

    def _warn(self, message: str, *args: object) -> None:
        log.warning(message, *args, extra=self._context)


class DeviceTool(Tool):
    """One of the device's tools, under a name the model may call."""

    def __init__(self, device: DeviceTools, listed: mcp.DeviceToolSpec, name: str) -> None:
        self.device_name = listed.name
        self.spec = ToolSpec(name, listed.description, listed.input_schema)
        self.timeout_s = device.call_timeout_s + 1.0
        self._device = device

    async def run(self, arguments: dict[str, Any], context: ToolContext) -> ToolResult:
        return await self._device.call(self.device_name, arguments)
