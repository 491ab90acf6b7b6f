"""Tools as a personas file declares them, checked when the bridge starts.

::

    [personas.shop]
    filler = "One moment, let me check."

    [[personas.shop.tools]]               # an HTTP tool
    name = "order_status"
    description = "The status of an order, by its number."
    url = "https://api.example.com/orders/{order_id}"
    method = "GET"                        # GET: arguments in the query; others: a JSON body
    headers = { Authorization = "Bearer ${ORDERS_API_KEY}" }
    timeout_s = 5
    [personas.shop.tools.parameters]      # JSON schema of the arguments
    type = "object"
    properties = { order_id = { type = "string" } }
    required = ["order_id"]

    [[personas.shop.mcp]]                 # an MCP server (streamable HTTP)
    url = "https://tools.example.com/mcp"
    headers = { Authorization = "Bearer ${MCP_TOKEN}" }
    tools = ["lookup_customer"]           # optional: only these of its tools

    [[personas.shop.transfer]]            # a person the agent may hand the call to
    name = "billing"
    to = "+15551230002"                   # or "sip:billing@pbx.example.com"
    description = "Billing questions, refunds and invoices."
    caller_id = "+15551230001"            # optional; default: the caller's number
    ring_timeout_s = 20
    no_answer = "agent"                   # or "message"
    no_answer_message = "Nobody is free right now. Please call again later."

``${NAME}`` in a URL or a header is the environment variable ``NAME``, read at start-up; its
value is never written to logs or call records (``secrets.py``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pipeline.tools.base import TransferTarget

#: what a model accepts as a function name
TOOL_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
E164 = re.compile(r"\+[1-9][0-9]{6,14}")
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
NO_ANSWER = ("agent", "message")
DEFAULT_TIMEOUT_S = 10.0
#: names the bridge's own tools take
RESERVED = frozenset({"end_call", "transfer_call"})


class ToolConfigError(ValueError):
    """A tool, MCP server or transfer entry is malformed (raised at start-up)."""


@dataclass(frozen=True, slots=True)
class HttpToolConfig:
    name: str
    description: str
    url: str
    method: str = "POST"
    parameters: Mapping[str, Any] = field(
        default_factory=lambda: {"type": "object", "properties": {}}
    )
    #: values may hold ``${ENV}`` references
    headers: Mapping[str, str] = field(default_factory=dict)
    timeout_s: float = DEFAULT_TIMEOUT_S


@dataclass(frozen=True, slots=True)
class McpServerConfig:
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    timeout_s: float = DEFAULT_TIMEOUT_S
    #: only these of the server's tools (empty: all)
    tools: tuple[str, ...] = ()


def http_tools(entries: Any, where: str) -> tuple[HttpToolConfig, ...]:
    out: list[HttpToolConfig] = []
    for i, entry in enumerate(_entries(entries, where)):
        at = f"{where}[{i}]"
        _only(
            entry,
            {"name", "description", "url", "method", "parameters", "headers", "timeout_s"},
            at,
        )
        name = _text(entry, "name", at, required=True)
        if not TOOL_NAME.fullmatch(name) or name in RESERVED:
            raise ToolConfigError(
                f"{at}: name {name!r} must be 1-64 of [A-Za-z0-9_-], not reserved"
            )
        method = _text(entry, "method", at, default="POST").upper()
        if method not in METHODS:
            raise ToolConfigError(f"{at}: method must be one of {', '.join(METHODS)}")
        url = _text(entry, "url", at, required=True)
        if not url.startswith(("http://", "https://")):
            raise ToolConfigError(f"{at}: url must be http(s)")
        parameters = entry.get("parameters", {"type": "object", "properties": {}})
        if not isinstance(parameters, Mapping) or parameters.get("type", "object") != "object":
            raise ToolConfigError(f"{at}: parameters must be a JSON schema of type object")
        out.append(
            HttpToolConfig(
                name=name,
                description=_text(entry, "description", at, required=True),
                url=url,
                method=method,
                parameters=dict(parameters),
                headers=_headers(entry, at),
                timeout_s=_timeout(entry, at),
            )
        )
    _unique([t.name for t in out], where)
    return tuple(out)


def mcp_servers(entries: Any, where: str) -> tuple[McpServerConfig, ...]:
    out: list[McpServerConfig] = []
    for i, entry in enumerate(_entries(entries, where)):
        at = f"{where}[{i}]"
        _only(entry, {"url", "headers", "timeout_s", "tools"}, at)
        url = _text(entry, "url", at, required=True)
        if not url.startswith(("http://", "https://")):
            raise ToolConfigError(f"{at}: url must be http(s) (streamable HTTP)")
        tools = entry.get("tools", [])
        if not isinstance(tools, list) or not all(isinstance(t, str) for t in tools):
            raise ToolConfigError(f"{at}: tools must be a list of names")
        out.append(McpServerConfig(url, _headers(entry, at), _timeout(entry, at), tuple(tools)))
    return tuple(out)


def transfer_targets(entries: Any, where: str) -> tuple[TransferTarget, ...]:
    out: list[TransferTarget] = []
    for i, entry in enumerate(_entries(entries, where)):
        at = f"{where}[{i}]"
        _only(
            entry,
            {
                "name",
                "to",
                "description",
                "caller_id",
                "ring_timeout_s",
                "no_answer",
                "no_answer_message",
            },
            at,
        )
        to = _text(entry, "to", at, required=True)
        if not (E164.fullmatch(to) or re.fullmatch(r"sips?:[^\s<>]+@[^\s<>]+", to)):
            raise ToolConfigError(f"{at}: to must be an E.164 number or a SIP URI")
        caller_id = _text(entry, "caller_id", at)
        if caller_id and not E164.fullmatch(caller_id):
            raise ToolConfigError(f"{at}: caller_id must be an E.164 number")
        ring = entry.get("ring_timeout_s", 20)
        if not isinstance(ring, int) or not 5 <= ring <= 600:
            raise ToolConfigError(f"{at}: ring_timeout_s must be a whole number, 5 to 600")
        no_answer = _text(entry, "no_answer", at, default="agent")
        if no_answer not in NO_ANSWER:
            raise ToolConfigError(f"{at}: no_answer must be 'agent' or 'message'")
        message = _text(entry, "no_answer_message", at)
        if no_answer == "message" and not message:
            raise ToolConfigError(f"{at}: no_answer = 'message' needs no_answer_message")
        out.append(
            TransferTarget(
                name=_text(entry, "name", at, required=True),
                to=to,
                description=_text(entry, "description", at, required=True),
                caller_id=caller_id,
                ring_timeout_s=ring,
                no_answer=no_answer,
                no_answer_message=message,
            )
        )
    _unique([t.name for t in out], where)
    return tuple(out)


def _entries(entries: Any, where: str) -> list[Mapping[str, Any]]:
    if entries is None:
        return []
    if not isinstance(entries, list) or not all(isinstance(e, Mapping) for e in entries):
        raise ToolConfigError(f"{where} must be an array of tables ([[...]])")
    return entries


def _only(entry: Mapping[str, Any], keys: set[str], at: str) -> None:
    unknown = set(entry) - keys
    if unknown:
        raise ToolConfigError(f"{at}: unknown keys {sorted(unknown)}")


def _text(
    entry: Mapping[str, Any], key: str, at: str, *, required: bool = False, default: str = ""
) -> str:
    value = entry.get(key, default)
    if not isinstance(value, str) or (required and not value):
        raise ToolConfigError(
            f"{at}.{key} must be a non-empty string" if required else f"{at}.{key} must be a string"
        )
    return value


def _headers(entry: Mapping[str, Any], at: str) -> dict[str, str]:
    headers = entry.get("headers", {})
    if not isinstance(headers, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
    ):
        raise ToolConfigError(f"{at}.headers must be a table of strings")
    return dict(headers)


def _timeout(entry: Mapping[str, Any], at: str) -> float:
    value = entry.get("timeout_s", DEFAULT_TIMEOUT_S)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 120:
        raise ToolConfigError(f"{at}.timeout_s must be a number of seconds, up to 120")
    return float(value)


def _unique(names: list[str], where: str) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ToolConfigError(f"{where}: {name!r} is declared twice")
        seen.add(name)
