"""MCP servers through the official SDK's client, against a real SDK server on loopback:
listing, calling from many tasks, and a server that is down, slow, restarted or closed."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import socket
import time
import warnings
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from pipeline.tools.base import ToolResult
from pipeline.tools.config import McpServerConfig, ToolConfigError
from pipeline.tools.mcp import McpServer
from tests.fakes.mcp_server import CUSTOMER, FakeMcpServer
from tests.pipeline.tools.conftest import NoCall

TOKEN = "mcp-token-9c4b"
ALL_TOOLS = {"lookup_customer", "set_volume", "slow_lookup", "escalate"}

MakeServer = Callable[..., McpServer]


@pytest.fixture
async def make_server() -> AsyncIterator[MakeServer]:
    """McpServers closed at the end of the test; no task of theirs may be left."""
    made: list[McpServer] = []

    def make(url: str, environ: dict[str, str] | None = None, **fields: Any) -> McpServer:
        server = McpServer(McpServerConfig(url, **fields), environ or {})
        made.append(server)
        return server

    yield make
    for server in made:
        await server.aclose()
    left = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    assert left == []


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never answers (a hung server)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield sock.getsockname()[1]


async def run(server: McpServer, name: str, arguments: dict[str, Any]) -> ToolResult:
    tools = {tool.spec.name: tool for tool in server.tools}
    return await tools[name].run(arguments, NoCall())


async def eventually(ready: Callable[[], bool], timeout_s: float = 8.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not ready():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def test_lists_and_calls_tools(mcp_fake: FakeMcpServer, make_server: MakeServer) -> None:
    server = make_server(mcp_fake.url, timeout_s=5)
    await server.start()
    assert server.connected
    assert {tool.spec.name for tool in server.tools} == ALL_TOOLS
    lookup = next(tool for tool in server.tools if tool.spec.name == "lookup_customer")
    assert lookup.spec.description == "The customer who calls from this phone number."
    assert lookup.spec.parameters["properties"]["phone"]["type"] == "string"
    assert lookup.spec.parameters["required"] == ["phone"]
    assert lookup.timeout_s == 5

    result = await run(server, "lookup_customer", {"phone": "+15550001"})
    assert (json.loads(result.output), result.error) == (CUSTOMER, "")
    volume = await run(server, "set_volume", {"level": 7})
    # the text item, not the SDK's {"result": ...} copy of it as well
    assert (volume.output, volume.error) == ("volume set to 7", "")
    assert mcp_fake.called("lookup_customer") == [{"phone": "+15550001"}]
    assert mcp_fake.called("set_volume") == [{"level": 7}]


async def test_an_allow_list_keeps_only_its_tools(
    mcp_fake: FakeMcpServer, make_server: MakeServer, caplog: pytest.LogCaptureFixture
) -> None:
    server = make_server(mcp_fake.url, tools=("set_volume", "no_such_tool"))
    await server.start()
    assert [tool.spec.name for tool in server.tools] == ["set_volume"]
    assert "has no tool no_such_tool" in caplog.text


async def test_an_error_result_is_a_failed_result(
    mcp_fake: FakeMcpServer, make_server: MakeServer
) -> None:
    server = make_server(mcp_fake.url)
    await server.start()
    result = await run(server, "escalate", {"reason": "angry caller"})
    assert "nobody is on duty" in result.error
    assert json.loads(result.output) == {"error": result.error}
    assert mcp_fake.called("escalate") == [{"reason": "angry caller"}]


async def test_concurrent_calls_from_several_tasks(
    mcp_fake: FakeMcpServer, make_server: MakeServer
) -> None:
    server = make_server(mcp_fake.url)
    await server.start()
    started = time.monotonic()
    results = await asyncio.gather(
        *(asyncio.create_task(run(server, "slow_lookup", {"seconds": 0.5})) for _ in range(6))
    )
    assert [r.output for r in results] == ["looked up in 0.5 s"] * 6
    assert time.monotonic() - started < 2.0  # side by side, not one after another


async def test_a_slow_tool_times_out_and_the_connection_stays(
    mcp_fake: FakeMcpServer, make_server: MakeServer
) -> None:
    server = make_server(mcp_fake.url, timeout_s=0.5)
    await server.start()
    result = await run(server, "slow_lookup", {"seconds": 3})
    assert result.error == "timed out after 0.5 s"
    after = await run(server, "lookup_customer", {"phone": "+1"})
    assert json.loads(after.output) == CUSTOMER


async def test_a_call_cancelled_by_its_caller_leaves_the_connection(
    mcp_fake: FakeMcpServer, make_server: MakeServer
) -> None:
    """The toolbox gives up on a tool with ``asyncio.timeout``: that cancels the caller's
    request, never the connection other calls use."""
    server = make_server(mcp_fake.url, timeout_s=5)
    await server.start()
    other = asyncio.create_task(run(server, "slow_lookup", {"seconds": 0.6}))
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.2):
            await run(server, "slow_lookup", {"seconds": 3})
    assert server.connected
    assert (await other).output == "looked up in 0.6 s"
    assert json.loads((await run(server, "lookup_customer", {"phone": "+1"})).output) == CUSTOMER


async def test_a_bearer_token_from_the_environment(make_server: MakeServer) -> None:
    fake = FakeMcpServer(token=TOKEN).start()
    try:
        server = make_server(
            fake.url, {"MCP_TOKEN": TOKEN}, headers={"Authorization": "Bearer ${MCP_TOKEN}"}
        )
        await server.start()
        assert json.loads((await run(server, "lookup_customer", {"phone": "+1"})).output)
        assert fake.http and all(
            seen.headers["authorization"] == f"Bearer {TOKEN}" for seen in fake.http
        )
        assert server.redact(f"Bearer {TOKEN}") == "Bearer ${MCP_TOKEN}"
    finally:
        fake.stop()


async def test_a_refused_token_is_logged_not_raised(
    make_server: MakeServer, caplog: pytest.LogCaptureFixture
) -> None:
    fake = FakeMcpServer(token=TOKEN).start()
    try:
        server = make_server(
            fake.url, {"MCP_TOKEN": "wrong-token"}, headers={"Authorization": "Bearer ${MCP_TOKEN}"}
        )
        await server.start()
        assert server.tools == []
        assert "could not connect" in caplog.text and "HTTP 401" in caplog.text
        assert "wrong-token" not in caplog.text
    finally:
        fake.stop()


def test_a_missing_variable_fails_at_construction() -> None:
    with pytest.raises(ToolConfigError, match="MCP_TOKEN"):
        McpServer(McpServerConfig("http://x/mcp", {"Authorization": "Bearer ${MCP_TOKEN}"}), {})


async def test_a_hung_server_does_not_hold_up_start(
    silent_port: int, make_server: MakeServer, caplog: pytest.LogCaptureFixture
) -> None:
    server = make_server(f"http://127.0.0.1:{silent_port}/mcp", timeout_s=0.5)
    started = time.monotonic()
    await server.start()
    assert time.monotonic() - started < 1.5
    assert server.tools == []
    await eventually(lambda: "could not connect" in caplog.text, 3)


async def test_down_at_start_then_up(
    make_server: MakeServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "pipeline.tools.mcp")
    fake = FakeMcpServer().start()
    await asyncio.to_thread(fake.stop)  # its port is known, and nothing listens there
    server = make_server(fake.url, timeout_s=2)
    started = time.monotonic()
    await server.start()
    assert time.monotonic() - started < 1.0  # a refused connection is known at once
    assert server.tools == [] and not server.connected
    assert "could not connect" in caplog.text
    try:
        await asyncio.to_thread(fake.start)
        await eventually(lambda: len(server.tools) == len(ALL_TOOLS))
        assert json.loads((await run(server, "lookup_customer", {"phone": "+1"})).output)
    finally:
        await asyncio.to_thread(fake.stop)


@pytest.mark.parametrize("legacy", [False, True], ids=["stateless", "session"])
async def test_a_restarted_server_is_called_again(make_server: MakeServer, legacy: bool) -> None:
    """A restart between calls is not noticed (a session it forgot is opened again and the
    call sent once more); a call while it is down fails, and the next, once it is back,
    waits for the reconnection."""
    fake = FakeMcpServer(legacy=legacy).start()
    try:
        server = make_server(fake.url, timeout_s=5)
        await server.start()
        assert json.loads((await run(server, "lookup_customer", {"phone": "1"})).output)
        await asyncio.to_thread(fake.stop)
        await asyncio.to_thread(fake.start)
        assert json.loads((await run(server, "lookup_customer", {"phone": "2"})).output)

        await asyncio.to_thread(fake.stop)
        down = await run(server, "set_volume", {"level": 1})
        assert "tool server 127.0.0.1" in down.error
        await asyncio.to_thread(fake.start)
        back = await run(server, "set_volume", {"level": 2})
        assert back.output == "volume set to 2"
        assert fake.called("set_volume") == [{"level": 2}]
        # a new connection after the outage; with sessions, one after the restart as well
        opened = [seen.rpc for seen in fake.http if seen.rpc in ("initialize", "server/discover")]
        assert opened.count("initialize" if legacy else "server/discover") == (3 if legacy else 2)
    finally:
        await asyncio.to_thread(fake.stop)


async def test_calls_while_unreachable_fail_within_the_timeout(
    closed_port: int, make_server: MakeServer
) -> None:
    server = make_server(f"http://127.0.0.1:{closed_port}/mcp", timeout_s=0.3)
    await server.start()
    assert server.tools == []
    result = await server.call("lookup_customer", {"phone": "1"})
    assert result.error == f"the tool server 127.0.0.1:{closed_port}/mcp is not reachable"


async def test_aclose_is_clean(mcp_fake: FakeMcpServer, closed_port: int) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        up = McpServer(McpServerConfig(mcp_fake.url), {})
        down = McpServer(McpServerConfig(f"http://127.0.0.1:{closed_port}/mcp"), {})
        never = McpServer(McpServerConfig(mcp_fake.url), {})
        await asyncio.gather(up.start(), down.start())
        assert up.connected and not down.connected
        started = time.monotonic()
        await asyncio.gather(up.aclose(), down.aclose(), never.aclose())
        assert time.monotonic() - started < 1.0
        assert up.tools == [] and not up.connected
        assert [t for t in asyncio.all_tasks() if t is not asyncio.current_task()] == []
        gc.collect()
    unclosed = [str(w.message) for w in caught if "event loop" not in str(w.message)]
    assert unclosed == []
