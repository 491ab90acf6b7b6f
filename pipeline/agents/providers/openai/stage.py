"""What the three OpenAI stages share: a client from the shared pool, and their errors."""

from __future__ import annotations

from pipeline.agents.providers.openai.clients import OpenAIClients, classify
from pipeline.agents.providers.openai.config import Endpoint
from pipeline.agents.retry import Retry


class OpenAIStage:
    """Mixed into each OpenAI stage class, ahead of its stage interface."""

    provider = "openai"
    kind: str

    def __init__(self, clients: OpenAIClients, endpoint: Endpoint) -> None:
        self._clients = clients
        self._endpoint = endpoint
        self.client = clients.client(endpoint)

    def classify(self, exc: Exception) -> Retry | None:
        return classify(exc)

    def report_permanent(self, exc: Exception) -> None:
        self._clients.report_permanent(self.kind, self._endpoint, exc)
