"""Client events of the Realtime API (GA interface), built as plain dicts.

Pure functions, no I/O: what the agent sends is decided here and nowhere else, so the shape of
the protocol can be read (and checked against the API reference) in one place.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

from pipeline.agents.persona import Persona
from pipeline.agents.realtime.config import RealtimeConfig
from pipeline.audio import ULAW_8K, AudioSpec
from pipeline.tools.base import ToolSpec

Event = dict[str, Any]

END_CALL_TOOL = "end_call"
#: key in a response's ``metadata`` that ties it to the bridge turn that asked for it
TURN_METADATA_KEY = "bridge_turn"

_END_CALL: Event = {
    "type": "function",
    "name": END_CALL_TOOL,
    "description": (
        "End the call. Call this after you have said goodbye, when the caller wants to end "
        "the conversation."
    ),
    "parameters": {
        "type": "object",
        "properties": {"reason": {"type": "string", "description": "Why the call ends."}},
        "required": [],
    },
}


def audio_format(spec: AudioSpec) -> Event:
    """μ-law 8 kHz is G.711 ``audio/pcmu``; anything else is PCM16 at 24 kHz."""
    if spec == ULAW_8K:
        return {"type": "audio/pcmu"}
    return {"type": "audio/pcm", "rate": 24000}


def turn_detection(config: RealtimeConfig) -> Event:
    """The server finds the caller's turns; the bridge owns barge-in (it judges each sound
    over a reply, cancels and truncates at what the caller heard) and asks for each answer
    itself, so a cough or an "uh-huh" over a reply is never answered (``judged.py``)."""
    if config.turn_detection == "semantic_vad":
        return {"type": "semantic_vad", "create_response": False, "interrupt_response": False}
    return {
        "type": "server_vad",
        "silence_duration_ms": config.silence_ms,
        "create_response": False,
        "interrupt_response": False,
    }


def session_update(
    config: RealtimeConfig, persona: Persona, spec: AudioSpec, tools: Sequence[ToolSpec] = ()
) -> Event:
    audio_in: Event = {"format": audio_format(spec), "turn_detection": turn_detection(config)}
    if config.transcribe_model:
        audio_in["transcription"] = {"model": config.transcribe_model}
    audio_out: Event = {"format": audio_format(spec)}
    if persona.voice:
        audio_out["voice"] = persona.voice
    return {
        "type": "session.update",
        "session": {
            "type": "realtime",
            "model": config.model,
            "output_modalities": ["audio"],
            "instructions": persona.system_prompt,
            "audio": {"input": audio_in, "output": audio_out},
            "tools": session_tools(tools),
            "tool_choice": "auto",
        },
    }


def session_tools(tools: Sequence[ToolSpec]) -> list[Event]:
    """The session's ``tools``: ``end_call`` first, then the call's toolbox."""
    return [_END_CALL, *(tool.realtime_tool() for tool in tools)]


def tools_update(tools: Sequence[ToolSpec]) -> Event:
    """Offer the tools as they are now, mid-session: a ``session.update`` changes only the
    fields it names (``type`` is required), and a response in progress keeps the tools it
    was created with, so it can go out at any time; the next response sees the new list."""
    return {
        "type": "session.update",
        "session": {"type": "realtime", "tools": session_tools(tools)},
    }


def append_audio(audio: bytes) -> Event:
    return {"type": "input_audio_buffer.append", "audio": base64.b64encode(audio).decode("ascii")}


def response_create(turn_id: int, instructions: str = "") -> Event:
    response: Event = {"metadata": {TURN_METADATA_KEY: str(turn_id)}}
    if instructions:
        response["instructions"] = instructions
    return {"type": "response.create", "response": response}


def answer() -> Event:
    """Answer the caller's committed turn (the server does not by itself)."""
    return {"type": "response.create"}


def item_delete(item_id: str) -> Event:
    """Forget a user item: a sound over a reply that was not an interruption."""
    return {"type": "conversation.item.delete", "item_id": item_id}


def response_cancel(response_id: str) -> Event:
    return {"type": "response.cancel", "response_id": response_id}


def truncate(item_id: str, audio_end_ms: int) -> Event:
    return {
        "type": "conversation.item.truncate",
        "item_id": item_id,
        "content_index": 0,
        "audio_end_ms": audio_end_ms,
    }


def history_item(role: str, text: str) -> Event:
    """A past turn replayed as text after a reconnect (audio is not kept), or what the
    caller gave that is not speech (keys pressed)."""
    kind = "input_text" if role == "user" else "output_text"
    return {
        "type": "conversation.item.create",
        "item": {"type": "message", "role": role, "content": [{"type": kind, "text": text}]},
    }


def function_output(call_id: str, output: str) -> Event:
    return {
        "type": "conversation.item.create",
        "item": {"type": "function_call_output", "call_id": call_id, "output": output},
    }


def greeting_instructions(first_message: str) -> str:
    return f"Greet the caller by saying exactly this, and nothing else: {first_message}"


FAREWELL_INSTRUCTIONS = (
    "The call is ending now because of inactivity or its time limit. Say one short, friendly "
    "goodbye sentence and nothing else."
)
GOODBYE_INSTRUCTIONS = "Say one short goodbye sentence; the call ends right after it."
