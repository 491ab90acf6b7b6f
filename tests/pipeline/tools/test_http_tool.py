"""HTTP tools against a fake REST API on loopback: what they send, and what the model reads."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx2
import pytest

from pipeline.tools.config import HttpToolConfig, ToolConfigError
from pipeline.tools.http import MAX_OUTPUT_CHARS, TRUNCATED, USER_AGENT, HttpTool
from tests.fakes.tool_server import FakeToolServer
from tests.pipeline.tools.conftest import NoCall

SECRET = "sk-live-5f1e2d"
ENV = {"ORDERS_API_KEY": SECRET}


@pytest.fixture
async def client() -> AsyncIterator[httpx2.AsyncClient]:
    async with httpx2.AsyncClient() as client:
        yield client


def tool(client: httpx2.AsyncClient, url: str, method: str = "GET", **fields: Any) -> HttpTool:
    config = HttpToolConfig(
        name=fields.pop("name", "order_status"),
        description="The status of an order.",
        url=url,
        method=method,
        **fields,
    )
    return HttpTool(config, client, ENV)


async def test_get_fills_the_path_and_sends_the_rest_as_query(
    tool_server: FakeToolServer, client: httpx2.AsyncClient, call: NoCall
) -> None:
    orders = tool(
        client,
        f"{tool_server.base_url}/orders/{{order_id}}?key=${{ORDERS_API_KEY}}",
        headers={"Authorization": "Bearer ${ORDERS_API_KEY}"},
        timeout_s=5,
    )
    result = await orders.run({"order_id": "A100", "verbose": True, "ids": [1, 2]}, call)
    assert result.error == ""
    assert json.loads(result.output) == {"order_id": "A100", "status": "shipped", "eta": "Friday"}
    seen = tool_server.requests[-1]
    assert (seen.method, seen.path, seen.body) == ("GET", "/orders/A100", None)
    # the URL's own query stays; arguments join it (JSON scalars, lists repeated)
    assert seen.query == {"key": [SECRET], "verbose": ["true"], "ids": ["1", "2"]}
    assert seen.headers["authorization"] == f"Bearer {SECRET}"
    assert seen.headers["accept"] == "application/json"
    assert seen.headers["user-agent"] == USER_AGENT
    assert orders.timeout_s == 5
    assert orders.spec.name == "order_status"


async def test_a_path_argument_is_quoted(
    tool_server: FakeToolServer, client: httpx2.AsyncClient, call: NoCall
) -> None:
    orders = tool(client, f"{tool_server.base_url}/orders/{{order_id}}")
    result = await orders.run({"order_id": "A/7 b"}, call)
    assert json.loads(result.output)["status"] == "packing"
    assert tool_server.requests[-1].query == {}


async def test_post_sends_a_json_body(
    tool_server: FakeToolServer, client: httpx2.AsyncClient, call: NoCall
) -> None:
    tickets = tool(client, f"{tool_server.base_url}/tickets", "POST", name="open_ticket")
    result = await tickets.run({"summary": "Broken toaster", "priority": 2}, call)
    assert json.loads(result.output) == {"ticket_id": "T-1", "summary": "Broken toaster"}
    seen = tool_server.requests[-1]
    assert (seen.method, seen.query) == ("POST", {})
    assert seen.body == {"summary": "Broken toaster", "priority": 2}
    assert seen.headers["content-type"] == "application/json"


async def test_delete_with_an_empty_answer(
    tool_server: FakeToolServer, client: httpx2.AsyncClient, call: NoCall
) -> None:
    cancel = tool(client, f"{tool_server.base_url}/tickets/{{ticket_id}}", "DELETE")
    result = await cancel.run({"ticket_id": "T-9", "reason": "solved"}, call)
    assert result.error == ""
    assert json.loads(result.output) == {"ok": True, "status": 204}
    seen = tool_server.requests[-1]
    assert (seen.method, seen.path, seen.query, seen.body) == (
        "DELETE",
        "/tickets/T-9",
        {"reason": ["solved"]},
        None,
    )


async def test_secrets_are_redacted(client: httpx2.AsyncClient) -> None:
    orders = tool(
        client,
        "https://api.example.com/orders/{order_id}",
        headers={"Authorization": "Bearer ${ORDERS_API_KEY}"},
    )
    assert orders.redact(f'{{"auth": "Bearer {SECRET}"}}') == '{"auth": "Bearer ${ORDERS_API_KEY}"}'
    assert SECRET not in orders.redact(f"{SECRET}{SECRET}")


def test_a_missing_variable_fails_at_construction(client: httpx2.AsyncClient) -> None:
    with pytest.raises(ToolConfigError, match="NOT_SET_KEY"):
        tool(client, "https://api.example.com/x", headers={"X-Key": "${NOT_SET_KEY}"})
    with pytest.raises(ToolConfigError, match="NOT_SET_HOST"):
        tool(client, "https://${NOT_SET_HOST}/x")


@pytest.mark.parametrize(
    ("order", "fail", "status", "says"),
    [("Z999", None, 404, "no such order"), ("A100", 500, 500, "injected failure 500")],
)
async def test_error_answers_are_failed_results(
    tool_server: FakeToolServer,
    client: httpx2.AsyncClient,
    call: NoCall,
    order: str,
    fail: int | None,
    status: int,
    says: str,
) -> None:
    if fail is not None:
        tool_server.fail_next(fail)
    orders = tool(client, f"{tool_server.base_url}/orders/{{order_id}}")
    result = await orders.run({"order_id": order}, call)
    assert result.error.startswith(f"HTTP {status}: ")
    assert says in result.error
    assert json.loads(result.output) == {"error": result.error}


async def test_an_unreachable_host_is_a_failed_result(
    client: httpx2.AsyncClient, call: NoCall, closed_port: int
) -> None:
    orders = tool(
        client,
        f"http://127.0.0.1:{closed_port}/orders/{{order_id}}?key=${{ORDERS_API_KEY}}",
        headers={"Authorization": "Bearer ${ORDERS_API_KEY}"},
    )
    result = await orders.run({"order_id": "A100"}, call)
    assert result.error == "could not reach 127.0.0.1"
    assert SECRET not in result.output


async def test_a_slow_answer_times_out(
    tool_server: FakeToolServer, client: httpx2.AsyncClient, call: NoCall
) -> None:
    tool_server.delay_s["/orders/A100"] = 2.0
    orders = tool(client, f"{tool_server.base_url}/orders/{{order_id}}", timeout_s=0.3)
    result = await orders.run({"order_id": "A100"}, call)
    assert result.error == "127.0.0.1 did not answer within 0.3 s"


async def test_a_long_answer_is_truncated(
    tool_server: FakeToolServer, client: httpx2.AsyncClient, call: NoCall
) -> None:
    big = tool(client, f"{tool_server.base_url}/big", name="big")
    result = await big.run({"chars": 10_000}, call)
    assert result.error == ""
    assert result.output == '{"text":"' + "x" * (MAX_OUTPUT_CHARS - 9) + TRUNCATED
    short = await big.run({"chars": 10}, call)
    assert json.loads(short.output) == {"text": "x" * 10}


async def test_a_missing_path_argument_is_a_failed_result(
    tool_server: FakeToolServer, client: httpx2.AsyncClient, call: NoCall
) -> None:
    orders = tool(client, f"{tool_server.base_url}/orders/{{order_id}}")
    result = await orders.run({}, call)
    assert result.error == "missing argument 'order_id'"
    assert tool_server.requests == []
