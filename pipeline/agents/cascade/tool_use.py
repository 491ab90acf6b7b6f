"""A cascade turn's tool rounds: the model asked for tools; run them and remember them.

The words the model said before asking have been spoken by then. If it asks to transfer the
call without having said anything, the persona's handoff line is said first: a caller is
never moved in silence. The tools run at once (``pipeline/tools/toolbox.py``), a filler line
covers a slow one, and each result goes into the conversation as it arrives, even after a
barge-in, so the model's next answer knows what happened (an order placed, a ticket opened).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from pipeline.agents.base import AgentOutput
from pipeline.agents.cascade.memory import Conversation, ToolRound
from pipeline.agents.cascade.stages import ChatReply
from pipeline.agents.persona import Persona
from pipeline.tools.toolbox import Toolbox
from pipeline.tools.transfer import DEFAULT_HANDOFF, TRANSFER_TOOL

#: rounds of tool calls one turn may take before the model must answer with what it has
MAX_TOOL_ROUNDS = 4
#: calls one reply may ask for; more are a model gone astray
MAX_CALLS_PER_ROUND = 8

#: speaks fixed text as a new part of the turn (``before``: a filler, placed in the
#: conversation with the words that asked for that round's tools)
Say = Callable[[str, ToolRound | None], Awaitable[None]]


class ToolUse:
    def __init__(self, toolbox: Toolbox, persona: Persona, memory: Conversation) -> None:
        self.toolbox = toolbox
        self._persona = persona
        self._memory = memory

    async def round(self, turn_id: int, chat: ChatReply, out: AgentOutput, say: Say) -> bool:
        """Run the tools ``chat`` asked for; True when the call has left the agent (a
        transfer went through) and nothing more is to be said."""
        requests = chat.tool_calls[:MAX_CALLS_PER_ROUND]
        if not chat.text.strip() and any(r.name == TRANSFER_TOOL for r in requests):
            await say(self._persona.handoff or DEFAULT_HANDOFF, None)
        round_ = self._memory.add_tools(requests)
        filler = self._persona.filler

        async def on_slow() -> None:
            await say(filler, round_)

        results = await self.toolbox.run(
            requests, turn_id, out, on_slow if filler else None, round_.settle
        )
        return any(result.final for result in results)
