"""Where a Deepgram model is reached: Deepgram itself, or Cloudflare Workers AI through AI
Gateway. The messages on the socket are Deepgram's either way; only the address, the way
the model is named and the credentials differ.

* Deepgram: ``wss://api.deepgram.com/v1/listen?model=nova-3&…`` (``/v2/listen`` for Flux,
  ``/v1/speak`` for Aura), header ``Authorization: Token <key>``.
* Cloudflare: ``wss://gateway.ai.cloudflare.com/v1/<account>/<gateway>/workers-ai?
  model=@cf/deepgram/nova-3&…``, header ``cf-aig-authorization: Bearer <token>``; Aura's
  voice is the ``speaker`` parameter there, not the model.

An operator's override (``BRIDGE_DEEPGRAM_URL``, ``BRIDGE_CLOUDFLARE_URL``) replaces only
the scheme, host and port; the paths and queries stay the provider's own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlencode

DEEPGRAM_URL = "wss://api.deepgram.com"
CLOUDFLARE_URL = "wss://gateway.ai.cloudflare.com"

Model = Literal["nova-3", "flux", "aura"]
#: each model's path at Deepgram
DEEPGRAM_PATHS: dict[Model, str] = {
    "nova-3": "/v1/listen",
    "flux": "/v2/listen",
    "aura": "/v1/speak",
}
#: each model's name at Workers AI
WORKERS_AI_MODELS: dict[Model, str] = {
    "nova-3": "@cf/deepgram/nova-3",
    "flux": "@cf/deepgram/flux",
    "aura": "@cf/deepgram/aura-2-en",
}


@dataclass(frozen=True, slots=True)
class DeepgramAccess:
    """How one process reaches Deepgram's models."""

    via: Literal["deepgram", "cloudflare"]
    #: scheme, host and port
    base_url: str
    #: a Deepgram API key, or a Cloudflare API token
    secret: str
    account_id: str = ""
    gateway_id: str = ""

    @property
    def provider(self) -> str:
        """The provider name settings use: ``deepgram`` or ``cloudflare``."""
        return self.via

    @property
    def key_setting(self) -> str:
        return (
            "BRIDGE_DEEPGRAM_API_KEY" if self.via == "deepgram" else "BRIDGE_CLOUDFLARE_API_TOKEN"
        )

    def url(
        self, model: Model, deepgram_model: str, query: Mapping[str, str | int | float | bool]
    ) -> str:
        """The socket's address for ``model`` with Deepgram's query parameters;
        ``deepgram_model`` is Deepgram's own model name (``nova-3``, ``flux-general-en``,
        ``aura-2-thalia-en``), which Workers AI names differently."""
        params = {k: _query_value(v) for k, v in query.items() if k != "model"}
        if self.via == "deepgram":
            params = {"model": deepgram_model, **params}
            return f"{self.base_url}{DEEPGRAM_PATHS[model]}?{urlencode(params)}"
        params = {"model": WORKERS_AI_MODELS[model], **params}
        path = f"/v1/{self.account_id}/{self.gateway_id}/workers-ai"
        return f"{self.base_url}{path}?{urlencode(params, safe='@/')}"

    def headers(self) -> dict[str, str]:
        if self.via == "deepgram":
            return {"Authorization": f"Token {self.secret}"}
        return {"cf-aig-authorization": f"Bearer {self.secret}"}

    def where(self, model: Model) -> str:
        """For logs: the address without the query (never the credentials)."""
        return self.url(model, "", {}).split("?")[0]


def _query_value(value: str | int | float | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
