"""One streamed Chat Completions request, cut into sentences while it streams.

Each sentence is handed on the moment its end arrives in the token stream, so speech of the
first sentence starts while the model is still writing the rest. The ``end_call`` tool lets
the model end the conversation after saying goodbye.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, cast

import openai
from openai.types.chat import ChatCompletionMessageParam, ChatCompletionToolParam

from pipeline.agents.sentences import SentenceCutter

END_CALL_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "end_call",
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


@dataclass(slots=True)
class ChatReply:
    """What one streamed answer amounted to."""

    text: str = ""
    sentences: int = 0
    end_call: bool = False


async def stream_sentences(
    client: openai.AsyncOpenAI,
    model: str,
    messages: list[dict[str, str]],
    on_sentence: Callable[[str], Awaitable[None]],
    on_progress: Callable[[], None],
    timeout_s: float,
) -> ChatReply:
    """Stream one answer; ``on_sentence`` gets each complete sentence as soon as it ends."""
    reply = ChatReply()
    cutter = SentenceCutter()
    tool_names: dict[int, str] = {}
    stream = await client.chat.completions.create(
        model=model,
        messages=cast("list[ChatCompletionMessageParam]", messages),
        tools=[cast("ChatCompletionToolParam", END_CALL_TOOL)],
        stream=True,
        timeout=timeout_s,
    )
    async with stream:
        async for chunk in stream:
            on_progress()
            if not chunk.choices:
                continue
            delta = chunk.choices[0].delta
            for call in delta.tool_calls or ():
                if call.function is not None and call.function.name:
                    tool_names[call.index] = call.function.name
            if delta.content:
                reply.text += delta.content
                for sentence in cutter.push(delta.content):
                    reply.sentences += 1
                    await on_sentence(sentence)
    for sentence in cutter.flush():
        reply.sentences += 1
        await on_sentence(sentence)
    reply.end_call = "end_call" in tool_names.values()
    return reply
