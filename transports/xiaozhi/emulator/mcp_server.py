"""The MCP server of an emulated xiaozhi device, pure: JSON-RPC requests in, responses out.

Shaped like the firmware's (``main/mcp_server.cc``): ``initialize`` answers protocol
``2024-11-05`` and its ``serverInfo``; ``tools/list`` pages the tools (``nextCursor`` is the
name of the next tool, as the firmware's is), here a few per page so that pagination is
always exercised; ``tools/call`` checks the arguments against the tool's properties and
answers ``{"content": [{"type": "text", …}], "isError": false}``, or a JSON-RPC error.

Two real tools act on the device's state: ``self.get_device_status`` and
``self.audio_speaker.set_volume`` (``volume``, an integer 0-100). Faults for tests:
``listing`` and ``calls`` may each be ``"ok"``, ``"garbage"`` (answers of the wrong shape,
plus a stray message) or ``"silent"`` (never answers).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

PROTOCOL_VERSION = "2024-11-05"
FAULTS = ("ok", "garbage", "silent")

TOOLS: list[dict[str, Any]] = [
    {
        "name": "self.get_device_status",
        "description": "The device's real-time status: speaker volume, screen, battery, network. "
        "Use it to answer questions about the device, and before changing its settings.",
        "inputSchema": {"type": "object", "properties": {}},
    },
    {
        "name": "self.audio_speaker.set_volume",
        "description": "Set the volume of the audio speaker (0-100).",
        "inputSchema": {
            "type": "object",
            "properties": {"volume": {"type": "integer", "minimum": 0, "maximum": 100}},
            "required": ["volume"],
        },
    },
]


@dataclass
class DeviceMcp:
    volume: int = 70
    #: tools per ``tools/list`` page
    page_size: int = 1
    listing: str = "ok"
    calls: str = "ok"
    #: every request and notification received, in order
    received: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.listing not in FAULTS or self.calls not in FAULTS:
            raise ValueError(f"faults are one of {FAULTS}")

    @property
    def methods(self) -> list[str]:
        return [str(message.get("method")) for message in self.received]

    def handle(self, payload: dict[str, Any]) -> list[dict[str, Any]]:
        """The JSON-RPC messages to send back for ``payload`` (none for a notification)."""
        self.received.append(payload)
        method, request_id = payload.get("method"), payload.get("id")
        if request_id is None:
            return []
        params = payload.get("params")
        params = params if isinstance(params, dict) else {}
        fault = self.calls if method == "tools/call" else self.listing
        if fault == "silent":
            return []
        if fault == "garbage":
            stray = {"jsonrpc": "2.0", "id": "not-a-number", "result": {"x": 1}}
            return [
                stray,
                _result(request_id, "garbage" if method != "tools/list" else {"tools": 7}),
            ]
        if method == "initialize":
            return [
                _result(
                    request_id,
                    {
                        "protocolVersion": PROTOCOL_VERSION,
                        "capabilities": {"tools": {}},
                        "serverInfo": {"name": "fake-xiaozhi", "version": "1.0.0"},
                    },
                )
            ]
        if method == "tools/list":
            return [self._list(request_id, params)]
        if method == "tools/call":
            return [self._call(request_id, params)]
        return [_error(request_id, -32601, f"Method not implemented: {method}")]

    def _list(self, request_id: Any, params: dict[str, Any]) -> dict[str, Any]:
        cursor = params.get("cursor") or ""
        names = [tool["name"] for tool in TOOLS]
        start = names.index(cursor) if cursor in names else 0
        page = TOOLS[start : start + self.page_size]
        result: dict[str, Any] = {"tools": page}
        if start + self.page_size < len(TOOLS):
            result["nextCursor"] = TOOLS[start + self.page_size]["name"]
        return _result(request_id, result)

    def _call(self, request_id: Any, params: dict[str, Any]) -> dict[str, Any]:
        name = params.get("name")
        arguments = params.get("arguments")
        arguments = arguments if isinstance(arguments, dict) else {}
        if name == "self.get_device_status":
            status = {
                "audio_speaker": {"volume": self.volume},
                "screen": {"brightness": 80, "theme": "light"},
                "network": {"type": "wifi", "signal": "strong"},
            }
            return _result(request_id, _text(json.dumps(status)))
        if name == "self.audio_speaker.set_volume":
            volume = arguments.get("volume")
            if not isinstance(volume, int) or isinstance(volume, bool) or not 0 <= volume <= 100:
                return _error(request_id, -32602, "Invalid volume: an integer from 0 to 100")
            self.volume = volume
            return _result(request_id, _text("true"))
        return _error(request_id, -32601, f"Unknown tool: {name}")


def _text(text: str) -> dict[str, Any]:
    return {"content": [{"type": "text", "text": text}], "isError": False}


def _result(request_id: Any, result: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "result": result}


def _error(request_id: Any, code: int, message: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": message}}
