"""One shape for every tool, whoever implements it: what the model is shown, how it runs, and
what the call records keep of each call.

A tool is declared to the model as a name, a description and a JSON schema of its arguments
(:class:`ToolSpec`), the same for the cascade's Chat Completions and for Realtime. Running
it gives a :class:`ToolResult`: the text the model reads next (a JSON document, a clear
error), never an exception; the toolbox turns exceptions and timeouts into results, so the
model can always say something.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """What the model is told about one tool."""

    name: str
    description: str
    #: JSON schema of the arguments (``{"type": "object", ...}``)
    parameters: Mapping[str, Any] = field(
        default_factory=lambda: {"type": "object", "properties": {}}
    )

    def chat_tool(self) -> dict[str, Any]:
        """The Chat Completions ``tools`` entry."""
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": dict(self.parameters),
            },
        }

    def realtime_tool(self) -> dict[str, Any]:
        """The Realtime ``session.tools`` entry."""
        return {
            "type": "function",
            "name": self.name,
            "description": self.description,
            "parameters": dict(self.parameters),
        }


@dataclass(frozen=True, slots=True)
class ToolRequest:
    """One call the model asked for."""

    #: the model's id for it (a tool message answers it by this id)
    call_id: str
    name: str
    #: the arguments as the model wrote them (JSON text, maybe malformed)
    arguments: str


@dataclass(frozen=True, slots=True)
class ToolResult:
    """What one tool call gave: ``output`` is what the model reads."""

    output: str
    #: empty on success; else a short reason ("timed out after 5.0 s", "HTTP 503")
    error: str = ""
    #: the call has left the agent (handed to a person): nothing more is to be said
    final: bool = False

    @classmethod
    def failed(cls, error: str) -> ToolResult:
        """An error the model is told about in words it can pass on."""
        import json

        return cls(json.dumps({"error": error}), error)


class Tool(ABC):
    """One callable tool. ``run`` may raise: the toolbox turns that into an error result."""

    spec: ToolSpec
    #: the toolbox gives up on a call after this long (the model hears it timed out)
    timeout_s: float = 10.0

    @abstractmethod
    async def run(self, arguments: dict[str, Any], context: ToolContext) -> ToolResult:
        """Run with arguments already checked against ``spec.parameters``."""

    def redact(self, text: str) -> str:
        """``text`` without this tool's secrets (for logs and call records)."""
        return text


@dataclass(frozen=True, slots=True)
class TransferTarget:
    """A person the agent may hand a phone call to (a persona's ``[[transfer]]`` entry)."""

    #: what the model names it by ("sales")
    name: str
    #: an E.164 number or a SIP URI ("sip:desk@pbx.example.com")
    to: str
    #: what the model reads to choose it
    description: str
    #: the caller ID shown to the person; empty: the caller's own number
    caller_id: str = ""
    ring_timeout_s: int = 20
    #: nobody answered: "agent" (back to the agent) or "message" (say it, hang up)
    no_answer: str = "agent"
    no_answer_message: str = ""

    @property
    def is_sip(self) -> bool:
        return self.to.startswith(("sip:", "sips:"))


class TransferFailed(Exception):
    """The transfer could not be started (the REST request failed); the call goes on."""


class ToolContext(Protocol):
    """What a running tool may do to its call (the bridge's own tools need it)."""

    async def transfer(self, target: TransferTarget) -> None:
        """Let what was said be heard, then hand the call to ``target``; raises
        :class:`TransferFailed` when the call could not be handed over."""


@dataclass(slots=True)
class ToolCallRecord:
    """One tool call as the call records keep it (secrets redacted)."""

    #: 1, 2, ... in the order the model asked, per call
    seq: int
    turn_id: int
    name: str
    #: the arguments as JSON text, redacted
    arguments: str
    #: wall-clock (Unix) time the call started
    started_at_s: float
    #: the start of what the tool answered (redacted), or empty
    result: str = ""
    error: str = ""
    #: None while it runs
    duration_ms: float | None = None
    #: the caller interrupted before the answer built on this result was spoken; the tool's
    #: side effect still happened (a barge-in cancels speech, never a tool)
    speech_cancelled: bool = False
