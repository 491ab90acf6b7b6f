"""Which tools a call is offered: its persona's, and transfers where a call can be handed on.

The HTTP tools and MCP servers of every persona are the process's (a shelf built and
started once, ``shelf.py``); each call takes its persona's share into a toolbox of its own.
``transfer_call`` joins them on a phone call whose persona lists destinations, when the
bridge can update live calls (Twilio REST credentials and a public host): a toy has no one
to hand over to. A call whose far end brings tools of its own (``CallInfo.tools``: a xiaozhi
device's) is offered those too, for that call only.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from typing import Protocol

from pipeline.agents.base import CallInfo
from pipeline.agents.persona import Persona
from pipeline.call_logger import CallLog
from pipeline.tools.base import Tool
from pipeline.tools.toolbox import Toolbox
from pipeline.tools.transfer import TransferTool


class Shelf(Protocol):
    """The process's tools (``shelf.py``)."""

    def tools_for(self, persona: Persona) -> list[Tool]: ...

    async def start(self) -> None: ...

    async def aclose(self) -> None: ...


class ToolOffer:
    def __init__(self, shelf: Shelf | None = None, transfers: Collection[str] = ()) -> None:
        self._shelf = shelf
        #: transports whose calls can be handed to a person
        self._transfers = frozenset(transfers)

    def toolbox(self, persona: Persona, call: CallInfo, log: CallLog | logging.Logger) -> Toolbox:
        tools = self._shelf.tools_for(persona) if self._shelf is not None else []
        if persona.transfer and call.transport in self._transfers:
            tools = [*tools, TransferTool(persona.transfer)]
        sources = [call.tools] if call.tools is not None else []
        return Toolbox(tools, log, sources=sources)

    async def start(self) -> None:
        if self._shelf is not None:
            await self._shelf.start()

    async def aclose(self) -> None:
        if self._shelf is not None:
            await self._shelf.aclose()
