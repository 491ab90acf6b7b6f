"""Makes a cascade per call: the persona's stages, or the settings' default for each kind.

The providers a process can use are the stage factories it was given (built at start-up from
settings, each checked for its credentials there); a persona that names another fails at
start-up, not on its first call.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from pipeline.agents.base import Agent, AgentFactory, CallInfo
from pipeline.agents.cascade.agent import CascadeAgent
from pipeline.agents.cascade.config import CascadeConfig
from pipeline.agents.cascade.failover import Failovers
from pipeline.agents.cascade.stages import (
    CascadeStages,
    Chat,
    SpeechToText,
    Stage,
    StageFactory,
    TextToSpeech,
)
from pipeline.agents.persona import PersonaBook, PersonaError
from pipeline.call_logger import CallLog
from pipeline.tools.offer import ToolOffer

log = logging.getLogger("pipeline.agents.cascade")


class CascadeAgentFactory(AgentFactory):
    def __init__(
        self,
        name: str,
        config: CascadeConfig,
        stt: Mapping[str, StageFactory[SpeechToText]],
        chat: StageFactory[Chat],
        tts: Mapping[str, StageFactory[TextToSpeech]],
        personas: PersonaBook,
        default_stt: str,
        default_tts: str,
        failovers: Failovers | None = None,
        tools: ToolOffer | None = None,
    ) -> None:
        self.name = name
        #: each call's tools (its persona's, and transfers on phone lines)
        self.tools = tools or ToolOffer()
        self.config = config
        self._stt = stt
        self._chat = chat
        self._tts = tts
        self._default_stt = default_stt
        self._default_tts = default_tts
        self.personas = personas
        #: switches to a backup stage, for the metrics
        self.failovers = failovers or Failovers()
        self._check_personas()

    def _check_personas(self) -> None:
        for persona in (self.personas.default, *self.personas.personas.values()):
            for kind, chosen, available in (
                ("stt", persona.stt, self._stt),
                ("tts", persona.tts, self._tts),
            ):
                if chosen and chosen not in available:
                    raise PersonaError(
                        f"persona {persona.name!r}: {kind} = {chosen!r} is not configured "
                        f"here (configured: {', '.join(sorted(available))})"
                    )

    def create(self, call: CallInfo) -> Agent:
        persona = self.personas.for_call(call)
        stages = CascadeStages(
            stt=self._stt[persona.stt or self._default_stt].create(call),
            chat=self._chat.create(call),
            tts=self._tts[persona.tts or self._default_tts].create(call),
        )
        toolbox = self.tools.toolbox(persona, call, CallLog.of(log, call.call_id, call.transport))
        return CascadeAgent(call, persona, stages, self.config, toolbox)

    async def start(self) -> None:
        await self.tools.start()

    async def aclose(self) -> None:
        await self.tools.aclose()
        factories: list[StageFactory[Stage]] = [
            *self._stt.values(),
            self._chat,
            *self._tts.values(),
        ]
        for factory in factories:
            await factory.aclose()
