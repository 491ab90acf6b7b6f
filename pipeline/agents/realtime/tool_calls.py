"""The Realtime model's tool calls: run them, hand back the results, have it answer.

A response that calls tools ends (``response.done``) with ``function_call`` items in its
output. The tools run at once (``pipeline/tools/toolbox.py``); a slow one is covered by the
persona's filler line, which the model is asked to say word for word; each result goes back
as a ``function_call_output`` item, then one ``response.create`` asks for the answer built
on them, in a turn of its own.

If the caller took the turn meanwhile (spoke, cut the filler off), their turn is answered
instead (the results are already in the conversation, so that answer can use them), and a
second, unasked-for answer is not sent over them.
A transfer with nothing said first gets the persona's handoff line before the call moves.

The tools offered can grow during the call (a xiaozhi device lists its own a moment after
the session opened, ``pipeline/tools/call_tools.py``), while the session was told its tools
when it opened. So before each ``response.create`` the agent asks :meth:`RealtimeTools.changed`
(a comparison of the spec lists, no I/O) and, when they differ, a ``session.update`` of the
tools alone goes out first: that response, and every one after it, may call them.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from pipeline.agents.base import AgentOutput
from pipeline.agents.persona import Persona
from pipeline.agents.realtime import events
from pipeline.agents.realtime.turns import Response, Turns
from pipeline.tools.base import ToolRequest, ToolSpec
from pipeline.tools.toolbox import Toolbox
from pipeline.tools.transfer import DEFAULT_HANDOFF, TRANSFER_TOOL

#: says ``text`` word for word as a new turn of the call, once it has been generated
SayExactly = Callable[[str], Awaitable[None]]


class RealtimeTools:
    def __init__(
        self,
        toolbox: Toolbox,
        persona: Persona,
        turns: Turns,
        send: Callable[[events.Event], None],
        say: SayExactly,
    ) -> None:
        self.toolbox = toolbox
        self._persona = persona
        self._turns = turns
        self._send = send
        self._say = say
        #: answer turns of tool results -> the turn whose tools they were
        self._answers: dict[int, int] = {}
        #: real interruptions so far: the caller who cut in is answered, not the tools
        self._cuts = 0
        #: the tools the session was last told of (None: not yet)
        self._offered: list[ToolSpec] | None = None

    def session_tools(self) -> list[ToolSpec]:
        """The tools to open a session with, remembered as offered."""
        self._offered = self.toolbox.specs
        return self._offered

    def changed(self) -> events.Event | None:
        """A ``session.update`` of the tools when they differ from those last offered (a
        device listed its own since), remembered as offered; None when they do not."""
        specs = self.toolbox.specs
        if self._offered is None or specs == self._offered:
            return None
        self._offered = specs
        return events.tools_update(specs)

    def requested(self, response: Response, requests: list[ToolRequest], out: AgentOutput) -> None:
        """``response`` called tools: run them in a task of the call."""
        out.tasks.spawn(self._run(response, requests, out), f"tools-{response.response_id}")

    async def _run(self, response: Response, requests: list[ToolRequest], out: AgentOutput) -> None:
        turn = response.turn_id if response.turn_id is not None else self._turns.last_turn
        if response.turn_id is None and any(r.name == TRANSFER_TOOL for r in requests):
            await self._say(self._persona.handoff or DEFAULT_HANDOFF)
        answered, cuts = self._turns.user_turns, self._cuts
        filler = self._persona.filler

        async def on_slow() -> None:
            await self._say(filler)

        results = await self.toolbox.run(requests, turn, out, on_slow if filler else None)
        for request, result in zip(requests, results, strict=True):
            self._send(events.function_output(request.call_id, result.output))
        if any(result.final for result in results):
            return  # the call went to a person
        if self._turns.user_turns != answered or self._cuts != cuts:
            self.toolbox.speech_cancelled(turn, out)  # the caller's turn is answered instead
            return
        answer = out.begin_turn()
        self._answers[answer] = turn
        self._turns.pending = answer
        self._send(events.response_create(answer))

    def interrupted(self, turn_id: int, out: AgentOutput) -> None:
        """The caller cut ``turn_id`` off: if it spoke tool results, their records say so;
        tools still running will not be answered (the caller's turn will be)."""
        self._cuts += 1
        self.toolbox.speech_cancelled(self._answers.pop(turn_id, turn_id), out)


def tool_calls_of(body: dict[str, Any]) -> list[ToolRequest]:
    """The function calls a finished response asked for (``end_call`` aside)."""
    return [
        ToolRequest(
            str(item.get("call_id", "")), str(item["name"]), str(item.get("arguments") or "")
        )
        for item in body.get("output") or []
        if item.get("type") == "function_call"
        and item.get("name")
        and item.get("name") != events.END_CALL_TOOL
    ]


def say_exactly(text: str) -> str:
    """Instructions for a response that says ``text`` and nothing else."""
    return f"Say exactly this, word for word, and nothing else: {json.dumps(text)}"
