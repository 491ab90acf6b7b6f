"""The process's tools: every persona's HTTP tools and MCP servers, built and started once.

Tools outlive calls: an HTTP tool is a URL and a connection pool, an MCP server a connection
kept up in the background, and neither should be set up again for each call (a caller would
wait for it). So the shelf builds them all when the bridge starts (a missing ``${VAR}`` fails
start-up there and then), shares one HTTP client among the HTTP tools and one connection
among the personas that name the same MCP server (same URL and headers), and hands each
call its persona's share (:meth:`ToolShelf.tools_for`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
from collections.abc import Mapping

import httpx2

from pipeline.agents.persona import Persona, PersonaBook
from pipeline.tools.base import Tool
from pipeline.tools.config import HttpToolConfig, McpServerConfig
from pipeline.tools.http import HttpTool
from pipeline.tools.mcp import McpServer

log = logging.getLogger("pipeline.tools.shelf")

#: concurrent connections to all HTTP tools' hosts together
MAX_CONNECTIONS = 100

McpKey = tuple[str, tuple[tuple[str, str], ...]]


class ToolShelf:
    def __init__(self, book: PersonaBook, environ: Mapping[str, str] | None = None) -> None:
        environ = os.environ if environ is None else environ
        self._personas = [book.default, *book.personas.values()]
        self._client = httpx2.AsyncClient(
            limits=httpx2.Limits(max_connections=MAX_CONNECTIONS),
            timeout=httpx2.Timeout(10.0),
        )
        #: by value: personas that inherit or repeat a tool share one
        self._http: dict[str, HttpTool] = {}
        for persona in self._personas:
            for config in persona.tools:
                key = _http_key(config)
                if key not in self._http:
                    self._http[key] = HttpTool(config, self._client, environ)
        self._servers: dict[McpKey, McpServer] = {
            key: McpServer(config, environ)
            for key, config in _merged_servers(
                [config for persona in self._personas for config in persona.mcp]
            ).items()
        }
        #: (persona, tool) pairs already warned about, so a clash is logged once, not per call
        self._warned: set[tuple[str, str]] = set()

    @property
    def empty(self) -> bool:
        """No persona declares an HTTP tool or an MCP server: the bridge can skip the shelf."""
        return not self._http and not self._servers

    def __bool__(self) -> bool:
        return not self.empty

    @property
    def servers(self) -> list[McpServer]:
        return list(self._servers.values())

    async def start(self) -> None:
        """Connect to every MCP server at once, each for at most its own timeout; one that
        does not answer is logged and keeps being tried in the background (never raises)."""
        results = await asyncio.gather(
            *(server.start() for server in self._servers.values()), return_exceptions=True
        )
        for server, result in zip(self._servers.values(), results, strict=True):
            if isinstance(result, BaseException):
                log.error("MCP server %s failed to start: %r", server.label, result)

    async def aclose(self) -> None:
        await asyncio.gather(
            *(server.aclose() for server in self._servers.values()), return_exceptions=True
        )
        await self._client.aclose()

    def tools_for(self, persona: Persona) -> list[Tool]:
        """``persona``'s HTTP tools, then the tools its MCP servers have now (only those its
        ``tools`` list names, when it has one). A name taken twice goes to the first."""
        tools: list[Tool] = []
        taken: set[str] = set()

        def add(tool: Tool, source: str) -> None:
            name = tool.spec.name
            if name not in taken:
                taken.add(name)
                tools.append(tool)
            elif (persona.name, name) not in self._warned:
                self._warned.add((persona.name, name))
                log.warning(
                    "persona %s: tool %s of %s skipped: another tool has that name",
                    persona.name,
                    name,
                    source,
                )

        for http in persona.tools:
            if (tool := self._http.get(_http_key(http))) is not None:
                add(tool, http.url)
        for mcp in persona.mcp:
            if (server := self._servers.get(_mcp_key(mcp))) is None:
                continue
            allowed = set(mcp.tools)
            for listed in server.tools:
                if not allowed or listed.spec.name in allowed:
                    add(listed, f"MCP server {server.label}")
        return tools


def _http_key(config: HttpToolConfig) -> str:
    return json.dumps(dataclasses.asdict(config), sort_keys=True, default=str)


def _mcp_key(config: McpServerConfig) -> McpKey:
    return config.url, tuple(sorted(config.headers.items()))


def _merged_servers(configs: list[McpServerConfig]) -> dict[McpKey, McpServerConfig]:
    """One config per distinct server. Personas may allow it different tools and give it
    different timeouts: the shared connection lists every tool any of them may use (all,
    if one of them has no list) and waits as long as the most patient."""
    merged: dict[McpKey, McpServerConfig] = {}
    for config in configs:
        key = _mcp_key(config)
        seen = merged.get(key)
        if seen is None:
            merged[key] = config
            continue
        tools = () if not seen.tools or not config.tools else (*seen.tools, *config.tools)
        merged[key] = dataclasses.replace(
            seen,
            timeout_s=max(seen.timeout_s, config.timeout_s),
            tools=tuple(dict.fromkeys(tools)),
        )
    return merged
