"""Tools from an MCP server (streamable HTTP), as a personas file's ``[[personas.X.mcp]]``
declares it, through the official SDK's client.

A tool server is someone else's service: it may be down when the bridge starts, restart in
the middle of the day, or forget its sessions. None of that may stop the bridge or a call,
so :class:`McpServer` keeps its connection in one background task of its own: the SDK's
client is built on anyio task groups that must be entered and left by the same task, and a
transport failure inside them cancels the task that entered them, which must never be a
call's task. Calls from any task send their requests through the connection that task
holds. :meth:`McpServer.start` waits for the first attempt at most the server's timeout and
never raises; after that the task reconnects on its own (1 s, doubling up to 30 s), lists the
tools again, and calls made meanwhile wait for it within their own timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Mapping
from contextlib import AsyncExitStack
from typing import Any
from urllib.parse import urlsplit

import httpx2
import mcp_types
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from pipeline.tools.base import Tool, ToolContext, ToolResult, ToolSpec
from pipeline.tools.config import RESERVED, TOOL_NAME, McpServerConfig
from pipeline.tools.http import USER_AGENT, clip
from pipeline.tools.secrets import Secrets

log = logging.getLogger("pipeline.tools.mcp")

BACKOFF_FIRST_S = 1.0
BACKOFF_MAX_S = 30.0
#: how long a connection may take to end politely (a legacy session's DELETE) on close
CLOSE_TIMEOUT_S = 3.0
#: a streamed (SSE) answer may pause this long between events; calls have their own timeout
SSE_READ_TIMEOUT_S = 300.0
#: a paginated listing that never ends is cut here
MAX_PAGES = 100
CLIENT_INFO = mcp_types.Implementation(name="voice-bridge", version="0.1.0")


class McpServer:
    """One MCP server's connection, kept up by a background task, and its listed tools."""

    def __init__(self, config: McpServerConfig, environ: Mapping[str, str]) -> None:
        self.config = config
        self._secrets = Secrets(environ)
        self.url = self._secrets.expand(config.url)
        self._headers = {
            "User-Agent": USER_AGENT,
            **{name: self._secrets.expand(value) for name, value in config.headers.items()},
        }
        url = urlsplit(self.url)
        port = f":{url.port}" if url.port else ""
        #: how logs and errors name it (no credentials, no query)
        self.label = self.redact(f"{url.hostname}{port}{url.path}")
        self._client: Client | None = None
        self._tools: list[McpTool] = []
        #: set while a connection is open and listed
        self._connected = asyncio.Event()
        #: set once the first attempt is over, either way (``start`` waits for it)
        self._tried = asyncio.Event()
        #: ends the current connection (a call saw its session gone, or closing)
        self._wake = asyncio.Event()
        self._closed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        #: the last error status an HTTP answer had (the SDK reports a 401 only as an error)
        self._last_status = 0
        #: whether the current attempt got as far as listing the tools
        self._held = False

    @property
    def tools(self) -> list[Tool]:
        """The tools as last listed: empty until the server first answers, kept while it
        reconnects (a call's tools do not come and go with the connection)."""
        return list(self._tools)

    @property
    def connected(self) -> bool:
        return self._client is not None

    def redact(self, text: str) -> str:
        return self._secrets.redact(text)

    async def start(self) -> None:
        """Start connecting; return once the tools are listed, the first attempt failed (it is
        logged, and retried in the background), or the server's timeout passed."""
        if self._task is None and not self._closed.is_set():
            self._task = asyncio.create_task(self._run(), name=f"mcp {self.label}")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.config.timeout_s):
                await self._tried.wait()

    async def aclose(self) -> None:
        """End the connection (politely if it is open) and the background task."""
        self._closed.set()
        self._wake.set()
        task, self._task = self._task, None
        if task is not None:
            if self._client is None:
                task.cancel()  # connecting or waiting to retry: nothing to end politely
            done, _ = await asyncio.wait({task}, timeout=CLOSE_TIMEOUT_S)
            if not done:
                task.cancel()
                await asyncio.wait({task})
        self._tools = []

    async def call(self, name: str, arguments: dict[str, Any]) -> ToolResult:
        """Call tool ``name`` within the server's timeout (waiting for a reconnection if one is
        under way); every failure is a result the model can pass on."""
        loop = asyncio.get_running_loop()
        timeout = self.config.timeout_s
        deadline = loop.time() + timeout
        for attempt in (1, 2):
            client = await self._ready(deadline)
            if client is None:
                return ToolResult.failed(f"the tool server {self.label} is not reachable")
            try:
                result = await client.call_tool(
                    name, arguments, read_timeout_seconds=max(0.05, deadline - loop.time())
                )
            except MCPError as exc:
                if exc.code == mcp_types.REQUEST_TIMEOUT:
                    return ToolResult.failed(f"timed out after {timeout:g} s")
                if _session_gone(exc):
                    # the server restarted or forgot the session: it never ran this call, so
                    # it is sent once more over a new session
                    self._reconnect(client)
                    if attempt == 1:
                        continue
                if exc.code == mcp_types.CONNECTION_CLOSED:
                    self._reconnect(client)
                    return ToolResult.failed(f"lost the connection to the tool server {self.label}")
                return ToolResult.failed(self.redact(exc.message or "the tool server refused"))
            except Exception as exc:  # an answer the SDK could not read, a client closing
                reason = self.redact(_reason(exc))
                log.warning("MCP server %s: tool %s failed: %s", self.label, name, reason)
                return ToolResult.failed(f"the tool server failed: {reason}")
            return self._result(result)
        return ToolResult.failed(f"the tool server {self.label} keeps losing its session")

    # -- the connection (background task) --------------------------------------------------

    async def _run(self) -> None:
        """Connect, hold, and connect again until closed: after a failed attempt in 1 s,
        doubling to 30 s (a server that is down is not hammered, one back is soon found);
        after a connection that worked, 1 s, or at once if a call found its session gone."""
        delay = BACKOFF_FIRST_S
        failures = 0
        while not self._closed.is_set():
            self._wake.clear()
            self._held = False
            try:
                await self._hold()
                error = ""
            except Exception as exc:
                # an error status explains a failed connect, not a connection lost later
                error = self.redact(_reason(exc, 0 if self._held else self._last_status))
            finally:
                self._client = None
                self._connected.clear()
                self._tried.set()
            if self._closed.is_set():
                return
            if self._held:
                delay, failures = BACKOFF_FIRST_S, 0
                if not error:
                    continue  # a call found the session gone: the server is up, reconnect now
                log.warning("MCP server %s: connection lost (%s); reconnecting", self.label, error)
            else:
                failures += 1
                (log.error if failures == 1 else log.warning)(
                    "MCP server %s: could not connect (%s); its tools are missing until it "
                    "answers, next try in %g s",
                    self.label,
                    error,
                    delay,
                )
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._closed.wait()
            if not self._held:
                delay = min(delay * 2, BACKOFF_MAX_S)

    async def _hold(self) -> None:
        """Open one connection, list the tools and keep it until woken. Raises when it could
        not be opened or broke (the SDK's task group then cancels this task's wait)."""
        self._last_status = 0
        async with AsyncExitStack() as stack:
            async with asyncio.timeout(self.config.timeout_s):
                http = await stack.enter_async_context(
                    httpx2.AsyncClient(
                        headers=self._headers,
                        timeout=httpx2.Timeout(self.config.timeout_s, read=SSE_READ_TIMEOUT_S),
                        event_hooks={"response": [self._saw]},
                    )
                )
                client = await stack.enter_async_context(
                    Client(
                        streamable_http_client(self.url, http_client=http),
                        cache=None,
                        read_timeout_seconds=self.config.timeout_s,
                        client_info=CLIENT_INFO,
                    )
                )
                listed = await _list_tools(client)
            self._publish(client, listed)
            self._held = True
            await self._wake.wait()

    async def _saw(self, response: httpx2.Response) -> None:
        if response.status_code >= 400:
            self._last_status = response.status_code

    def _publish(self, client: Client, listed: list[mcp_types.Tool]) -> None:
        wanted = set(self.config.tools)
        tools: list[McpTool] = []
        for tool in listed:
            if wanted and tool.name not in wanted:
                continue
            if not TOOL_NAME.fullmatch(tool.name) or tool.name in RESERVED:
                log.warning(
                    "MCP server %s: tool %r skipped: models take names of 1-64 of "
                    "[A-Za-z0-9_-], and %s are the bridge's",
                    self.label,
                    tool.name,
                    ", ".join(sorted(RESERVED)),
                )
                continue
            tools.append(McpTool(self, tool))
        missing = wanted - {tool.name for tool in listed}
        if missing:
            log.warning(
                "MCP server %s has no tool %s (named in the personas file)",
                self.label,
                ", ".join(sorted(missing)),
            )
        self._tools = tools
        self._client = client
        self._connected.set()
        self._tried.set()
        log.info(
            "MCP server %s: connected, tools: %s",
            self.label,
            ", ".join(tool.spec.name for tool in tools) or "none",
        )

    def _reconnect(self, client: Client) -> None:
        """A call found ``client``'s connection or session gone: no call is sent through it
        any more (they wait for the next one), and a new one is opened (once, however many
        calls found out)."""
        if client is self._client:
            self._client = None
            self._connected.clear()
            self._wake.set()

    async def _ready(self, deadline: float) -> Client | None:
        if self._client is None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout_at(deadline):
                    await self._connected.wait()
        return self._client

    def _result(self, result: mcp_types.CallToolResult) -> ToolResult:
        parts = [_describe(block) for block in result.content]
        structured = result.structured_content
        if structured is not None and not any(_says(part, structured) for part in parts):
            parts.append(json.dumps(structured, ensure_ascii=False))
        text = self.redact("\n".join(part for part in parts if part))
        if result.is_error:
            return ToolResult.failed(clip(text) or "the tool failed")
        return ToolResult(clip(text) if text else json.dumps({"ok": True}))


class McpTool(Tool):
    """One tool of an :class:`McpServer`, called through its connection."""

    def __init__(self, server: McpServer, tool: mcp_types.Tool) -> None:
        self.server = server
        self.spec = ToolSpec(
            tool.name, tool.description or tool.title or tool.name, dict(tool.input_schema)
        )
        self.timeout_s = server.config.timeout_s

    async def run(self, arguments: dict[str, Any], context: ToolContext) -> ToolResult:
        return await self.server.call(self.spec.name, arguments)

    def redact(self, text: str) -> str:
        return self.server.redact(text)


async def _list_tools(client: Client) -> list[mcp_types.Tool]:
    tools: list[mcp_types.Tool] = []
    cursor: str | None = None
    for _ in range(MAX_PAGES):
        page = await client.list_tools(cursor=cursor)
        tools.extend(page.tools)
        cursor = page.next_cursor
        if cursor is None:
            break
    return tools


def _session_gone(exc: MCPError) -> bool:
    """The server no longer knows the session (restarted, or it expired): "Session not
    found" from the server, "Session terminated" from the SDK on a 404."""
    return exc.code == mcp_types.INVALID_REQUEST and "session" in exc.message.lower()


def _describe(block: mcp_types.ContentBlock) -> str:
    """A content item as text; what a voice agent cannot use is named, not included."""
    if isinstance(block, mcp_types.TextContent):
        return block.text
    if isinstance(block, mcp_types.ImageContent | mcp_types.AudioContent):
        return f"[{block.type}, {block.mime_type}]"
    if isinstance(block, mcp_types.ResourceLink):
        return f"[resource link: {block.name} {block.uri}]"
    if isinstance(block.resource, mcp_types.TextResourceContents):
        return block.resource.text
    return f"[resource: {block.resource.uri}, {block.resource.mime_type or 'binary'}]"


def _says(text: str, structured: Any) -> bool:
    """Whether a text item already says what the structured content does: its JSON text, or
    (the SDKs wrap a plain return value as ``{"result": value}``) that value."""
    if isinstance(structured, dict) and set(structured) == {"result"}:
        value = structured["result"]
        if text == value:
            return True
    else:
        value = structured
    try:
        return bool(json.loads(text) == value)
    except ValueError:
        return False


def _reason(exc: BaseException, status: int = 0) -> str:
    """What went wrong, in one line: the first real error inside a task group's group, and
    the HTTP status behind an SDK error that does not name it."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    if isinstance(exc, TimeoutError):
        text = "no answer in time"
    else:
        text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return f"{text} (HTTP {status})" if status else text
