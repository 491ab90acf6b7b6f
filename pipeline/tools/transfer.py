"""The bridge's own ``transfer_call`` tool: hand a phone call to a person.

The persona lists who may be called (:class:`~pipeline.tools.base.TransferTarget`); the model
sees their names and descriptions and picks one. Running the tool lets what the agent said be
heard, then asks the call's transport to hand the call over (Twilio: the live call's TwiML
becomes a ``<Dial>``). A transfer that could not start is an error the model tells the caller
about; one that did is :attr:`~pipeline.tools.base.ToolResult.final`: the call has left the
agent, which says nothing more.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from pipeline.tools.base import (
    Tool,
    ToolContext,
    ToolResult,
    ToolSpec,
    TransferFailed,
    TransferTarget,
)

TRANSFER_TOOL = "transfer_call"
#: said before the transfer when the model said nothing (a persona's ``handoff`` replaces it)
DEFAULT_HANDOFF = "Please hold while I transfer your call."


class TransferTool(Tool):
    #: the handoff line must be heard first, then Twilio answers the REST request
    timeout_s = 30.0

    def __init__(self, targets: Sequence[TransferTarget]) -> None:
        self._targets = {target.name: target for target in targets}
        choices = "; ".join(f"{t.name}: {t.description}" for t in targets)
        self.spec = ToolSpec(
            TRANSFER_TOOL,
            "Transfer the caller to a person. Use it only when the caller asks for a person "
            "or you cannot help; tell the caller you are transferring them in the same reply. "
            f"Destinations: {choices}.",
            {
                "type": "object",
                "properties": {
                    "destination": {"type": "string", "enum": list(self._targets)},
                    "reason": {"type": "string", "description": "Why, in a few words."},
                },
                "required": ["destination"],
            },
        )

    async def run(self, arguments: dict[str, Any], context: ToolContext) -> ToolResult:
        target = self._targets[arguments["destination"]]
        try:
            await context.transfer(target)
        except TransferFailed as exc:
            return ToolResult.failed(f"the transfer to {target.name} failed: {exc}")
        return ToolResult(json.dumps({"transferred": True, "to": target.name}), final=True)
