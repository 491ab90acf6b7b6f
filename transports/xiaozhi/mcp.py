"""Sans-I/O MCP client messages for a xiaozhi device's own tools (JSON-RPC 2.0).

A xiaozhi device is an MCP *server*: its firmware (``main/mcp_server.cc``) offers tools such
as ``self.audio_speaker.set_volume``, and the server is the client. The messages travel as
the ``payload`` of ``{"type": "mcp"}`` text frames. The conversation, as the reference
server holds it: ``initialize`` (protocol ``2024-11-05``), the ``notifications/initialized``
notification, ``tools/list`` page by page (``nextCursor`` until it is absent or empty), then
``tools/call {name, arguments}`` whenever the model uses a tool; a result is
``{"content": [{"type": "text", "text": …}], "isError": …}``, a failure a JSON-RPC
``error``.

Everything the device sends is untrusted: parsing never raises anything but
:class:`McpError`, and what is kept is bounded (tools, description lengths, schemas that
really are JSON schemas of an object).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import jsonschema

PROTOCOL_VERSION = "2024-11-05"
CLIENT_INFO = {"name": "voice-bridge", "version": "0.1.0"}
#: most tools one device may offer a call (the firmware has about a dozen)
MAX_TOOLS = 64
MAX_NAME_CHARS = 128
MAX_DESCRIPTION_CHARS = 2000
#: most of a tool's answer the model reads
MAX_RESULT_CHARS = 4000
#: what a tool whose schema is missing or broken takes: any object
ANY_OBJECT: dict[str, Any] = {"type": "object", "properties": {}}


class McpError(Exception):
    """The device's MCP server failed us: no answer, garbage, or a JSON-RPC error."""


@dataclass(frozen=True, slots=True)
class Response:
    """A JSON-RPC response to one of our requests: ``result``, or ``error`` (non-empty)."""

    id: int
    result: Any = None
    error: str = ""


@dataclass(frozen=True, slots=True)
class DeviceToolSpec:
    """One tool as the device lists it (its own name, dots and all)."""

    name: str
    description: str
    input_schema: dict[str, Any] = field(default_factory=lambda: dict(ANY_OBJECT))


@dataclass(frozen=True, slots=True)
class ToolPage:
    tools: list[DeviceToolSpec]
    #: empty: the last page
    next_cursor: str = ""


@dataclass(frozen=True, slots=True)
class CallOutcome:
    """What a ``tools/call`` gave: its text, and whether the tool said it failed."""

    text: str
    is_error: bool = False


# -- what we send ------------------------------------------------------------------------------


def request(request_id: int, method: str, params: dict[str, Any]) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}


def notification(method: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "method": method}


def initialize_params() -> dict[str, Any]:
    return {"protocolVersion": PROTOCOL_VERSION, "capabilities": {}, "clientInfo": CLIENT_INFO}


def list_params(cursor: str) -> dict[str, Any]:
    return {"cursor": cursor} if cursor else {}


def call_params(name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "arguments": arguments}


# -- what the device sends -----------------------------------------------------------------


def parse_response(payload: dict[str, Any]) -> Response | None:
    """A response to one of our requests, or None (a notification, a request of its own, or
    something with no usable id: nothing waits for it)."""
    request_id = payload.get("id")
    if not isinstance(request_id, int) or isinstance(request_id, bool):
        return None
    if "error" in payload:
        error = payload["error"]
        message = error.get("message") if isinstance(error, dict) else None
        text = message if isinstance(message, str) and message else "unspecified error"
        return Response(request_id, error=_clip(text, 300))
    if "result" in payload:
        return Response(request_id, payload["result"])
    return Response(request_id, error="an answer with neither result nor error")


def parse_initialize(result: Any) -> str:
    """The server's name and protocol version, for the log; garbage is an error."""
    if not isinstance(result, dict):
        raise McpError("initialize: the answer is not an object")
    info = result.get("serverInfo")
    name = info.get("name") if isinstance(info, dict) else None
    version = result.get("protocolVersion")
    return f"{name if isinstance(name, str) else '?'} (MCP {version})"


def parse_tool_page(result: Any) -> ToolPage:
    """One ``tools/list`` page. Malformed tools are skipped; a malformed page is an error."""
    if not isinstance(result, dict) or not isinstance(result.get("tools"), list):
        raise McpError("tools/list: the answer has no list of tools")
    tools = [tool for item in result["tools"] if (tool := _tool(item)) is not None]
    cursor = result.get("nextCursor")
    return ToolPage(tools, cursor if isinstance(cursor, str) else "")


def parse_call_result(result: Any) -> CallOutcome:
    """A ``tools/call`` result: the text parts of ``content``, joined; ``isError``."""
    if not isinstance(result, dict) or not isinstance(result.get("content"), list):
        raise McpError("tools/call: the answer has no content")
    texts = [
        part["text"]
        for part in result["content"]
        if isinstance(part, dict)
        and part.get("type") == "text"
        and isinstance(part.get("text"), str)
    ]
    return CallOutcome(_clip("\n".join(texts), MAX_RESULT_CHARS), result.get("isError") is True)


def _tool(item: Any) -> DeviceToolSpec | None:
    if not isinstance(item, dict):
        return None
    name, description = item.get("name"), item.get("description", "")
    if not isinstance(name, str) or not name or len(name) > MAX_NAME_CHARS:
        return None
    description = _clip(description, MAX_DESCRIPTION_CHARS) if isinstance(description, str) else ""
    return DeviceToolSpec(name, description, _schema(item.get("inputSchema")))


def _schema(schema: Any) -> dict[str, Any]:
    """The tool's argument schema if it is a valid JSON schema of an object, else any object
    (the device's own checks still apply when it is called)."""
    if not isinstance(schema, dict) or schema.get("type") != "object":
        return dict(ANY_OBJECT)
    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
        json.dumps(schema)
    except Exception:  # hostile input: any failure to read it means "not a schema"
        return dict(ANY_OBJECT)
    return schema


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
