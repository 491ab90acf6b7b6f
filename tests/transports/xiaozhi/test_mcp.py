"""The device's MCP tools: the JSON-RPC messages (pure), and the client against the emulated
device's MCP server in memory: pagination, names, tool calls, and a device that answers
garbage, errors or nothing (each a clear failure, never a hang or an exception)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from pipeline.tools.base import ToolResult
from transports.xiaozhi import mcp
from transports.xiaozhi.device_tools import MAX_PENDING, DeviceTools
from transports.xiaozhi.emulator.mcp_server import TOOLS, DeviceMcp
from transports.xiaozhi.mcp import McpError

# -- messages ----------------------------------------------------------------------------------


def test_what_we_send() -> None:
    assert mcp.request(1, "initialize", mcp.initialize_params()) == {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2024-11-05",
            "capabilities": {},
            "clientInfo": {"name": "voice-bridge", "version": "0.1.0"},
        },
    }
    assert mcp.notification("notifications/initialized") == {
        "jsonrpc": "2.0",
        "method": "notifications/initialized",
    }
    assert mcp.list_params("") == {} and mcp.list_params("next") == {"cursor": "next"}
    assert mcp.call_params("a.b", {"x": 1}) == {"name": "a.b", "arguments": {"x": 1}}


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"jsonrpc": "2.0", "id": 3, "result": {"a": 1}}, mcp.Response(3, {"a": 1})),
        ({"id": 3, "result": None}, mcp.Response(3, None)),
        ({"id": 4, "error": {"code": -1, "message": "nope"}}, mcp.Response(4, error="nope")),
        ({"id": 4, "error": "bad"}, mcp.Response(4, error="unspecified error")),
        ({"id": 5}, mcp.Response(5, error="an answer with neither result nor error")),
        ({"id": "5", "result": {}}, None),
        ({"id": True, "result": {}}, None),
        ({"method": "notifications/tools/list_changed"}, None),
    ],
)
def test_responses(payload: dict[str, Any], expected: mcp.Response | None) -> None:
    assert mcp.parse_response(payload) == expected


def test_a_tool_page_keeps_what_is_usable() -> None:
    bad_schema = {"type": "object", "properties": {"x": {"type": "no-such-type"}}}
    page = mcp.parse_tool_page(
        {
            "tools": [
                TOOLS[1],
                {"name": "self.a", "description": 7, "inputSchema": bad_schema},
                {"name": "self.b", "inputSchema": {"type": "array"}},
                {"name": ""},
                {"name": "x" * 200},
                {"description": "no name"},
                "a string",
            ],
            "nextCursor": 12,
        }
    )
    assert [t.name for t in page.tools] == ["self.audio_speaker.set_volume", "self.a", "self.b"]
    assert page.tools[0].input_schema == TOOLS[1]["inputSchema"]
    assert page.tools[1].input_schema == mcp.ANY_OBJECT and page.tools[1].description == ""
    assert page.tools[2].input_schema == mcp.ANY_OBJECT
    assert page.next_cursor == ""
    garbages: list[Any] = [None, "x", {"tools": {}}, {"nope": []}]
    for garbage in garbages:
        with pytest.raises(McpError):
            mcp.parse_tool_page(garbage)


def test_call_results() -> None:
    text = [{"type": "text", "text": "a"}, {"type": "image", "data": "…"}, {"type": "text"}]
    assert mcp.parse_call_result({"content": text}) == mcp.CallOutcome("a")
    both = [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]
    assert mcp.parse_call_result({"content": both, "isError": True}) == mcp.CallOutcome(
        "a\nb", True
    )
    long = mcp.parse_call_result({"content": [{"type": "text", "text": "x" * 9000}]})
    assert len(long.text) == mcp.MAX_RESULT_CHARS
    for garbage in ("true", {"content": "x"}, None):
        with pytest.raises(McpError):
            mcp.parse_call_result(garbage)


# -- the client against the emulated device ------------------------------------------------


class InMemory:
    """The client wired to the emulated device's MCP server, answers one loop turn later."""

    def __init__(self, device: DeviceMcp, **options: Any) -> None:
        self.device = device
        self.client = DeviceTools(self._send, {}, **options)
        self.sent: list[dict[str, Any]] = []

    async def _send(self, payload: dict[str, Any]) -> None:
        self.sent.append(payload)
        wire = json.loads(json.dumps(payload))  # as it travels: JSON
        for answer in self.device.handle(wire):
            asyncio.get_running_loop().call_soon(self.client.receive, answer)


async def test_tools_are_listed_page_by_page_and_called_by_their_own_names() -> None:
    link = InMemory(DeviceMcp(volume=70, page_size=1))
    await link.client.connect()
    assert link.device.methods == [
        "initialize",
        "notifications/initialized",
        "tools/list",
        "tools/list",
    ]
    assert [m.get("params") for m in link.sent[2:]] == [{}, {"cursor": TOOLS[1]["name"]}]
    assert link.client.state == "ready"
    status, volume = link.client.tools()
    assert (status.spec.name, volume.spec.name) == (
        "self_get_device_status",
        "self_audio_speaker_set_volume",
    )
    assert volume.spec.parameters == TOOLS[1]["inputSchema"]
    assert await volume.run({"volume": 30}, None) == ToolResult("true")  # type: ignore[arg-type]
    assert link.device.volume == 30
    answer = await status.run({}, None)  # type: ignore[arg-type]
    assert json.loads(answer.output)["audio_speaker"] == {"volume": 30}
    refused = await volume.run({"volume": 300}, None)  # type: ignore[arg-type]
    assert refused.error.startswith("tools/call: the device answered with an error: Invalid")
    assert link.device.volume == 30


@pytest.mark.parametrize(
    ("listing", "error"),
    [("silent", "did not answer within 0.2 s"), ("garbage", "initialize: the answer is not")],
)
async def test_a_device_that_cannot_list_offers_nothing(
    listing: str, error: str, caplog: pytest.LogCaptureFixture
) -> None:
    link = InMemory(DeviceMcp(listing=listing), request_timeout_s=0.2)
    await link.client.connect()
    assert link.client.state == "failed" and link.client.tools() == []
    assert error in caplog.text
    assert link.client._pending == {}


@pytest.mark.parametrize(
    ("calls", "error"),
    [
        ("silent", "tools/call: the device did not answer within 0.2 s"),
        ("garbage", "tools/call: the answer has no content"),
    ],
)
async def test_a_tool_call_that_fails_is_a_result_the_model_reads(calls: str, error: str) -> None:
    link = InMemory(DeviceMcp(calls=calls), call_timeout_s=0.2)
    await link.client.connect()
    tool = link.client.tools()[1]
    assert await tool.run({"volume": 10}, None) == ToolResult.failed(error)  # type: ignore[arg-type]
    assert link.device.volume == 70
    assert link.client.ignored >= (1 if calls == "garbage" else 0)  # the stray message


async def test_a_listing_that_never_ends_is_cut() -> None:
    client: DeviceTools

    async def send(payload: dict[str, Any]) -> None:
        if "id" not in payload:
            return
        result: dict[str, Any] = {"protocolVersion": "2024-11-05"}
        if payload["method"] == "tools/list":
            n = payload["id"]
            tool = {"name": f"self.t{n}", "inputSchema": {"type": "object"}}
            result = {"tools": [tool], "nextCursor": f"c{n}"}
        answer = {"jsonrpc": "2.0", "id": payload["id"], "result": result}
        asyncio.get_running_loop().call_soon(client.receive, answer)

    client = DeviceTools(send, {}, max_pages=3)
    await client.connect()
    assert [t.spec.name for t in client.tools()] == ["self_t2", "self_t3", "self_t4"]
    assert client.state == "ready"


async def test_answers_nobody_waits_for_are_ignored_and_requests_are_bounded() -> None:
    async def send(payload: dict[str, Any]) -> None:
        pass

    client = DeviceTools(send, {}, request_timeout_s=5)
    for stray in ({"id": 99, "result": {}}, {"method": "x"}, {"id": "s"}):
        client.receive(stray)
    assert client.ignored == 3
    waiting = [asyncio.ensure_future(client.request("tools/list", {})) for _ in range(MAX_PENDING)]
    await asyncio.sleep(0)
    with pytest.raises(McpError, match="too many requests"):
        await client.request("tools/list", {})
    client.receive({"id": 1, "result": {"tools": []}})
    assert await waiting[0] == {"tools": []}
    client.close()
    await asyncio.gather(*waiting[1:], return_exceptions=True)
    assert all(w.cancelled() for w in waiting[1:])
