"""A real MCP server from the official SDK (``MCPServer`` and its streamable HTTP app) on
loopback, with tools a voice agent might call.

Its tools: ``lookup_customer(phone)`` -> ``{"name": "Ada", "tier": "gold"}``,
``set_volume(level)`` (recorded), ``slow_lookup(seconds)`` (answers after a while, for
concurrency and timeouts) and ``escalate(reason)`` (always an ``isError`` result). A small
ASGI gate in front of the SDK's app records every HTTP request, can demand a bearer token
(401 otherwise, like a real deployment behind auth), and can play a server of the
2025 protocol generation (``legacy=True``: it answers the 2026 ``server/discover`` probe
"method not found", so clients fall back to ``initialize`` and a session). ``stop()`` and
``start()`` again serve on the same port with a fresh server (sessions forgotten), as a
restarted deployment would.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import anyio
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tests.support.serverthread import UvicornThread

CUSTOMER = {"name": "Ada", "tier": "gold"}


@dataclass(slots=True)
class McpCall:
    tool: str
    arguments: dict[str, Any]


@dataclass(slots=True)
class HttpSeen:
    method: str
    #: lower-case names
    headers: dict[str, str]
    #: the JSON-RPC method of a POST, if it had one
    rpc: str = ""


@dataclass
class FakeMcpServer:
    #: when set, requests without ``Authorization: Bearer <token>`` get 401
    token: str | None = None
    #: play a 2025-era server: no ``server/discover``, sessions from ``initialize``
    legacy: bool = False
    calls: list[McpCall] = field(default_factory=list)
    http: list[HttpSeen] = field(default_factory=list)
    port: int = 0
    _thread: UvicornThread | None = None

    def start(self) -> FakeMcpServer:
        """Serve (again: on the same port, a new server knowing no session)."""
        thread = UvicornThread(
            _Gate(self, self._app()),
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=0.25,  # a session's event stream stays open till then
        )
        thread.server.config.port = self.port  # 0 the first time: any free port
        self._thread = thread.start()
        self.port = thread.port
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._thread.stop()
            self._thread = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"

    def called(self, tool: str) -> list[dict[str, Any]]:
        return [call.arguments for call in self.calls if call.tool == tool]

    def _app(self) -> ASGIApp:
        server: MCPServer[Any] = MCPServer("fake-tools")

        @server.tool()
        def lookup_customer(phone: str) -> dict[str, str]:
            """The customer who calls from this phone number."""
            self.calls.append(McpCall("lookup_customer", {"phone": phone}))
            return dict(CUSTOMER)

        @server.tool()
        def set_volume(level: int) -> str:
            """Set the speaker volume, 0 to 10."""
            self.calls.append(McpCall("set_volume", {"level": level}))
            return f"volume set to {level}"

        @server.tool()
        async def slow_lookup(seconds: float) -> str:
            """A lookup that takes a while."""
            self.calls.append(McpCall("slow_lookup", {"seconds": seconds}))
            await anyio.sleep(seconds)
            return f"looked up in {seconds} s"

        @server.tool()
        def escalate(reason: str) -> str:
            """Hand the case to a supervisor."""
            self.calls.append(McpCall("escalate", {"reason": reason}))
            raise ToolError("nobody is on duty")

        return server.streamable_http_app()


class _Gate:
    """Records, authenticates and (``legacy``) hides ``server/discover``, then passes on."""

    def __init__(self, fake: FakeMcpServer, app: ASGIApp) -> None:
        self.fake = fake
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        body = b""
        if scope["method"] == "POST":
            more = True
            while more:
                message = await receive()
                body += message.get("body", b"")
                more = message.get("more_body", False)
        rpc = _rpc(body)
        self.fake.http.append(HttpSeen(scope["method"], headers, rpc.get("method", "")))
        token = self.fake.token
        if token is not None and headers.get("authorization") != f"Bearer {token}":
            await JSONResponse({"error": "unauthorized"}, status_code=401)(scope, receive, send)
            return
        if self.fake.legacy and rpc.get("method") == "server/discover":
            error = {"code": -32601, "message": "Method not found: server/discover"}
            answer = {"jsonrpc": "2.0", "id": rpc.get("id"), "error": error}
            await JSONResponse(answer)(scope, receive, send)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if scope["method"] == "POST" and not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def _rpc(body: bytes) -> dict[str, Any]:
    try:
        message = json.loads(body) if body else {}
    except ValueError:
        return {}
    return message if isinstance(message, dict) else {}
