"""The process's tools: built once from a personas file, shared, and handed out per persona."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from pipeline.agents.persona import Persona, PersonaBook
from pipeline.tools.config import ToolConfigError, http_tools, mcp_servers
from pipeline.tools.shelf import ToolShelf
from tests.fakes.mcp_server import CUSTOMER, FakeMcpServer
from tests.fakes.tool_server import FakeToolServer
from tests.pipeline.tools.conftest import NoCall

ENV = {"ORDERS_API_KEY": "sk-orders", "MCP_TOKEN": "mcp-secret"}

MakeShelf = Callable[..., ToolShelf]


@pytest.fixture
async def make_shelf() -> AsyncIterator[MakeShelf]:
    made: list[ToolShelf] = []

    def make(book: PersonaBook, environ: dict[str, str] | None = None) -> ToolShelf:
        shelf = ToolShelf(book, ENV if environ is None else environ)
        made.append(shelf)
        return shelf

    yield make
    for shelf in made:
        await shelf.aclose()


def order_tool(base_url: str, name: str = "order_status") -> dict[str, Any]:
    return {
        "name": name,
        "description": "The status of an order, by its number.",
        "url": f"{base_url}/orders/{{order_id}}",
        "method": "GET",
        "headers": {"Authorization": "Bearer ${ORDERS_API_KEY}"},
        "parameters": {
            "type": "object",
            "properties": {"order_id": {"type": "string"}},
            "required": ["order_id"],
        },
    }


def mcp(url: str, *tools: str, token: bool = True) -> dict[str, Any]:
    entry: dict[str, Any] = {"url": url, "tools": list(tools)}
    if token:
        entry["headers"] = {"Authorization": "Bearer ${MCP_TOKEN}"}
    return entry


def book(personas: dict[str, Any], default: Persona | None = None) -> PersonaBook:
    return PersonaBook.from_dict({"personas": personas}, default or Persona(), where="test")


def names(shelf: ToolShelf, persona: Persona) -> list[str]:
    return [tool.spec.name for tool in shelf.tools_for(persona)]


async def test_each_persona_gets_its_own_tools(
    tool_server: FakeToolServer, make_shelf: MakeShelf
) -> None:
    fake = FakeMcpServer(token=ENV["MCP_TOKEN"]).start()
    try:
        personas = book(
            {
                "shop": {
                    "tools": [order_tool(tool_server.base_url)],
                    "mcp": [mcp(fake.url, "lookup_customer")],
                },
                "toy": {"mcp": [mcp(fake.url, "set_volume", "slow_lookup")]},
                "plain": {"system_prompt": "No tools."},
            }
        )
        shelf = make_shelf(personas)
        assert shelf and not shelf.empty
        assert len(shelf.servers) == 1  # same URL and headers: one connection for both
        assert names(shelf, personas.personas["shop"]) == ["order_status"]  # not listed yet
        await shelf.start()
        shop, toy = personas.personas["shop"], personas.personas["toy"]
        assert names(shelf, shop) == ["order_status", "lookup_customer"]
        assert names(shelf, toy) == ["set_volume", "slow_lookup"]
        assert names(shelf, personas.personas["plain"]) == []
        assert names(shelf, personas.default) == []

        tools = {tool.spec.name: tool for tool in shelf.tools_for(shop)}
        order = await tools["order_status"].run({"order_id": "A100"}, NoCall())
        assert json.loads(order.output)["status"] == "shipped"
        assert tool_server.requests[-1].headers["authorization"] == "Bearer sk-orders"
        customer = await tools["lookup_customer"].run({"phone": "+1"}, NoCall())
        assert json.loads(customer.output) == CUSTOMER
    finally:
        await shelf.aclose()
        fake.stop()


async def test_the_default_persona_and_inheritance(
    tool_server: FakeToolServer, make_shelf: MakeShelf
) -> None:
    personas = book({"pirate": {"voice": "ash"}, "shop": {"tools": []}})
    default_only = PersonaBook(
        Persona(tools=http_tools([order_tool(tool_server.base_url)], "default"))
    )
    assert make_shelf(personas).empty
    shelf = make_shelf(default_only)
    assert names(shelf, default_only.default) == ["order_status"]
    inheriting = book({"pirate": {"voice": "ash"}}, default=default_only.default)
    shelf = make_shelf(inheriting)
    pirate = inheriting.personas["pirate"]
    assert names(shelf, pirate) == ["order_status"]
    # one tool object for the default and the persona that inherits it
    assert shelf.tools_for(pirate)[0] is shelf.tools_for(inheriting.default)[0]


async def test_distinct_servers_by_url_and_headers(make_shelf: MakeShelf) -> None:
    url = "http://127.0.0.1:9/mcp"
    personas = book(
        {
            "a": {"mcp": [mcp(url, "lookup_customer")]},
            "b": {"mcp": [mcp(url)]},
            "c": {"mcp": [mcp(url, token=False)]},
            "d": {"mcp": [mcp("http://127.0.0.1:9/other")]},
        }
    )
    shelf = make_shelf(personas)
    assert len(shelf.servers) == 3
    # persona b takes all its tools: the shared connection lists them all
    assert {server.config.tools for server in shelf.servers} == {()}


async def test_allow_lists_are_merged_for_a_shared_server(make_shelf: MakeShelf) -> None:
    url = "http://127.0.0.1:9/mcp"
    shelf = make_shelf(book({"a": {"mcp": [mcp(url, "x")]}, "b": {"mcp": [mcp(url, "y", "x")]}}))
    assert [server.config.tools for server in shelf.servers] == [("x", "y")]


async def test_a_name_taken_twice_goes_to_the_first(
    tool_server: FakeToolServer,
    mcp_fake: FakeMcpServer,
    make_shelf: MakeShelf,
    caplog: pytest.LogCaptureFixture,
) -> None:
    personas = book(
        {
            "shop": {
                "tools": [order_tool(tool_server.base_url, name="lookup_customer")],
                "mcp": [mcp(mcp_fake.url, token=False)],
            }
        }
    )
    shelf = make_shelf(personas)
    await shelf.start()
    shop = personas.personas["shop"]
    tools = shelf.tools_for(shop)
    assert sorted(tool.spec.name for tool in tools) == sorted(
        ["lookup_customer", "set_volume", "slow_lookup", "escalate"]
    )
    assert tools[0].spec.description == "The status of an order, by its number."
    shelf.tools_for(shop)
    assert caplog.text.count("tool lookup_customer of MCP server") == 1


@pytest.mark.parametrize("missing", ["ORDERS_API_KEY", "MCP_TOKEN"])
def test_a_missing_variable_fails_construction(missing: str) -> None:
    personas = book(
        {"shop": {"tools": [order_tool("https://api.example.com")]}},
        default=Persona(mcp=mcp_servers([mcp("https://tools.example.com/mcp")], "default")),
    )
    environ = {k: v for k, v in ENV.items() if k != missing}
    with pytest.raises(ToolConfigError, match=missing):
        ToolShelf(personas, environ)


async def test_start_never_raises_for_a_server_that_is_down(
    closed_port: int, make_shelf: MakeShelf, caplog: pytest.LogCaptureFixture
) -> None:
    personas = book({"toy": {"mcp": [mcp(f"http://127.0.0.1:{closed_port}/mcp")]}})
    shelf = make_shelf(personas)
    await shelf.start()
    assert names(shelf, personas.personas["toy"]) == []
    assert "could not connect" in caplog.text
