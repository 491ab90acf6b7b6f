"""The chat stage: one streamed Chat Completions request, cut into sentences as it streams.

Any OpenAI-compatible server serves it (OpenAI, Cloudflare Workers AI's OpenAI-compatible
endpoint, Ollama, vLLM, ...).

Each sentence is handed on the moment its end arrives in the token stream, so speech of the
first sentence starts while the model is still writing the rest. The stream's events are
parsed here (:mod:`pipeline.agents.providers.openai.sse`) rather than by the library's typed models,
which cost more than the rest of a chunk's handling. The ``end_call`` tool lets
the model end the conversation after saying goodbye; the persona's tools are offered with
it, and the calls the model asks for (streamed as ``tool_calls`` deltas: id and name first,
the arguments in pieces, each keyed by its index) are gathered into the reply.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import openai

from pipeline.agents.base import CallInfo
from pipeline.agents.cascade.stages import (
    Attempt,
    Chat,
    ChatReply,
    Message,
    OnSentence,
    StageFactory,
)
from pipeline.agents.providers.openai.clients import CLIENT_REQUEST_ID, OpenAIClients, StreamError
from pipeline.agents.providers.openai.config import Endpoint
from pipeline.agents.providers.openai.sse import event_data
from pipeline.agents.providers.openai.stage import OpenAIStage
from pipeline.agents.sentences import SentenceCutter
from pipeline.tools.base import ToolRequest, ToolSpec

END_CALL_TOOL_NAME = "end_call"
END_CALL_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": END_CALL_TOOL_NAME,
        "description": (
            "End the call or conversation. Use it when the caller says goodbye or asks to "
            "end; say a short goodbye in the same reply before calling it."
        ),
        "parameters": {
            "type": "object",
            "properties": {
                "reason": {"type": "string", "description": "Why the call ends, briefly."}
            },
            "required": [],
        },
    },
}


@dataclass(frozen=True, slots=True)
class ChatOptions:
    endpoint: Endpoint
    model: str = "gpt-4o-mini"


class OpenAIChat(OpenAIStage, Chat):
    def __init__(self, clients: OpenAIClients, options: ChatOptions) -> None:
        super().__init__(clients, options.endpoint)
        self._model = options.model

    async def reply(
        self,
        messages: list[Message],
        on_sentence: OnSentence,
        on_progress: Callable[[], None],
        attempt: Attempt,
        tools: Sequence[ToolSpec] = (),
    ) -> ChatReply:
        return await stream_sentences(
            self.client,
            self._model,
            messages,
            on_sentence,
            on_progress,
            attempt.timeout_s,
            attempt.request_id,
            tools,
        )


class OpenAIChatFactory(StageFactory[OpenAIChat]):
    provider = "openai"

    def __init__(self, clients: OpenAIClients, options: ChatOptions) -> None:
        self.clients = clients
        self.options = options

    def create(self, call: CallInfo) -> OpenAIChat:
        chat = OpenAIChat(self.clients, self.options)
        chat.provider = self.provider  # a backup server's factory is named "chat-fallback"
        return chat

    async def aclose(self) -> None:
        await self.clients.aclose()


async def stream_sentences(
    client: openai.AsyncOpenAI,
    model: str,
    messages: list[Message],
    on_sentence: OnSentence,
    on_progress: Callable[[], None],
    timeout_s: float,
    request_id: str,
    tools: Sequence[ToolSpec] = (),
) -> ChatReply:
    """Stream one answer; ``on_sentence`` gets each complete sentence as soon as it ends."""
    reply = ChatReply()
    cutter = SentenceCutter()
    calls: dict[int, _Call] = {}
    done = False
    async with client.chat.completions.with_streaming_response.create(
        model=model,
        # The history and tools go in as they are. Passed as typed parameters, the library
        # walks them against its type hints first (about 0.4 ms a message here), so every
        # turn of a long call would wait longer than the one before: 16 ms at 40 messages.
        messages=[],
        extra_body={
            "messages": messages,
            "tools": [END_CALL_TOOL, *(tool.chat_tool() for tool in tools)],
        },
        stream=True,
        timeout=timeout_s,
        extra_headers={CLIENT_REQUEST_ID: request_id},
    ) as response:
        # read to the end even after [DONE], so the connection can be reused
        async for data in event_data(response.iter_lines()):
            if done:
                continue
            if data == "[DONE]":
                done = True
                continue
            chunk = json.loads(data)
            if not isinstance(chunk, dict):
                continue
            if error := chunk.get("error"):
                raise StreamError(_message(error), response.http_request, body=error)
            on_progress()
            choices = chunk.get("choices") or ()
            delta = (choices[0].get("delta") or {}) if choices else {}
            for piece in delta.get("tool_calls") or ():
                call = calls.setdefault(piece.get("index", 0), _Call())
                call.add(piece)
            if content := delta.get("content"):
                reply.text += content
                for sentence in cutter.push(content):
                    reply.sentences += 1
                    await on_sentence(sentence)
    for sentence in cutter.flush():
        reply.sentences += 1
        await on_sentence(sentence)
    for call in calls.values():
        if call.name == END_CALL_TOOL_NAME:
            reply.end_call = True
        elif call.name:
            reply.tool_calls.append(ToolRequest(call.id, call.name, call.arguments))
    return reply


class _Call:
    """One tool call as its deltas arrive."""

    def __init__(self) -> None:
        self.id = ""
        self.name = ""
        self.arguments = ""

    def add(self, piece: dict[str, Any]) -> None:
        self.id = piece.get("id") or self.id
        function = piece.get("function") or {}
        self.name = function.get("name") or self.name
        self.arguments += function.get("arguments") or ""


def _message(error: Any) -> str:
    """The text of an error event, as the openai library words it."""
    message = error.get("message") if isinstance(error, dict) else None
    return message if isinstance(message, str) and message else "An error occurred during streaming"
