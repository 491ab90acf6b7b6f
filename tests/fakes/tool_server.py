"""A fake REST API on loopback for HTTP tools: an order lookup and a ticket desk.

It answers the way a typical JSON API does (the shapes a personas file's tools are written
against): ``GET /orders/{order_id}`` gives the order or a 404 JSON error, ``POST /tickets``
creates a ticket from its JSON body (201), ``DELETE /tickets/{ticket_id}`` answers 204 with no
body, and ``GET /big?chars=N`` an answer too long for a model to read whole. Tests make it
slow per path (:attr:`FakeToolServer.delay_s`), fail the next request with a status
(:meth:`FakeToolServer.fail_next`), and read back every request (method, path, query,
headers, JSON body) to check what a tool sent, e.g. that ``Authorization`` arrived.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.support.serverthread import UvicornThread

ORDERS: dict[str, dict[str, Any]] = {
    "42": {"order_id": "42", "status": "shipped", "eta": "Friday"},
    "A100": {"order_id": "A100", "status": "shipped", "eta": "Friday"},
    "A/7 b": {"order_id": "A/7 b", "status": "packing", "eta": "Monday"},
}


@dataclass(slots=True)
class ToolRequest:
    method: str
    path: str
    #: each key's values in order (``?id=1&id=2`` -> ``{"id": ["1", "2"]}``)
    query: dict[str, list[str]]
    #: lower-case names
    headers: dict[str, str]
    #: the JSON body, or None when there was none
    body: Any = None
    #: time.monotonic() when it arrived
    at: float = field(default_factory=time.monotonic)


@dataclass
class FakeToolServer:
    #: seconds to wait before answering, per exact path ("/orders/A100")
    delay_s: dict[str, float] = field(default_factory=dict)
    requests: list[ToolRequest] = field(default_factory=list)
    _failures: deque[int] = field(default_factory=deque)
    _tickets: int = 0

    def __post_init__(self) -> None:
        app = Starlette(
            routes=[
                Route("/orders/{order_id:path}", self._order, methods=["GET"]),
                Route("/tickets", self._create_ticket, methods=["POST"]),
                Route("/tickets/{ticket_id}", self._delete_ticket, methods=["DELETE"]),
                Route("/big", self._big, methods=["GET"]),
            ]
        )
        self._server = UvicornThread(
            app, log_config=None, access_log=False, lifespan="off", timeout_graceful_shutdown=1
        )

    def start(self) -> FakeToolServer:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    @property
    def base_url(self) -> str:
        return self._server.http

    def fail_next(self, status: int) -> None:
        """The next request (any path) is answered ``status`` with a JSON error body."""
        self._failures.append(status)

    # -- endpoints -------------------------------------------------------------------------

    async def _prelude(self, request: Request) -> Response | None:
        """Record the request, wait its path's delay, and answer an injected failure."""
        raw = await request.body()
        query: dict[str, list[str]] = {}
        for key, value in request.query_params.multi_items():
            query.setdefault(key, []).append(value)
        self.requests.append(
            ToolRequest(
                request.method,
                request.url.path,
                query,
                {k.lower(): v for k, v in request.headers.items()},
                json.loads(raw) if raw else None,
            )
        )
        delay = self.delay_s.get(request.url.path, 0.0)
        if delay:
            await asyncio.sleep(delay)
        if self._failures:
            status = self._failures.popleft()
            return JSONResponse({"error": f"injected failure {status}"}, status_code=status)
        return None

    async def _order(self, request: Request) -> Response:
        if failed := await self._prelude(request):
            return failed
        order = ORDERS.get(request.path_params["order_id"])
        if order is None:
            return JSONResponse({"error": "no such order"}, status_code=404)
        return JSONResponse(order)

    async def _create_ticket(self, request: Request) -> Response:
        if failed := await self._prelude(request):
            return failed
        self._tickets += 1
        body = self.requests[-1].body or {}
        return JSONResponse(
            {"ticket_id": f"T-{self._tickets}", "summary": body.get("summary", "")},
            status_code=201,
        )

    async def _delete_ticket(self, request: Request) -> Response:
        if failed := await self._prelude(request):
            return failed
        return Response(status_code=204)

    async def _big(self, request: Request) -> Response:
        if failed := await self._prelude(request):
            return failed
        chars = int(request.query_params.get("chars", "10000"))
        return JSONResponse({"text": "x" * chars})
