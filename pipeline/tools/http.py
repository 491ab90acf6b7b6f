"""A tool that is one HTTP endpoint, as a personas file's ``[[personas.X.tools]]`` declares it.

Most of what an agent on the phone needs to look up (an order, an appointment, a balance) is
one REST call away, so a tool is a URL, a method and a JSON schema of the arguments:
``{name}`` in the URL's path takes the argument of that name, the rest go in the query (GET,
DELETE) or a JSON body (others). What comes back is made into something a model can read
and say out loud: the body as text (cut at :data:`MAX_OUTPUT_CHARS`, a long answer would
only be read slowly and expensively), or a short error it can pass on ("HTTP 404: no such
order"). Nothing here raises for an answer or an unreachable host: the caller hears about
it from the model. Secrets from the environment are expanded once, at start-up, and
redacted from every text that leaves the tool.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import httpx2

from pipeline.tools.base import Tool, ToolContext, ToolResult, ToolSpec
from pipeline.tools.config import HttpToolConfig
from pipeline.tools.secrets import Secrets

USER_AGENT = "voice-bridge (tools)"
#: what the model reads of an answer at most
MAX_OUTPUT_CHARS = 4000
#: what follows an answer cut at :data:`MAX_OUTPUT_CHARS`
TRUNCATED = "\n[truncated: the answer was longer]"
#: what an error result quotes of an error answer's body
MAX_ERROR_CHARS = 200
#: what is read of a body at most (an endpoint that streams megabytes is not read to the end)
MAX_BODY_BYTES = 1_000_000
PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
#: methods whose arguments go in the query string; the others send a JSON body
QUERY_METHODS = ("GET", "DELETE")


class HttpTool(Tool):
    """One endpoint called with a shared client (one connection pool for all tools)."""

    def __init__(
        self, config: HttpToolConfig, client: httpx2.AsyncClient, environ: Mapping[str, str]
    ) -> None:
        self.config = config
        self.spec = ToolSpec(config.name, config.description, config.parameters)
        self.timeout_s = config.timeout_s
        self._client = client
        self._secrets = Secrets(environ)
        url = urlsplit(self._secrets.expand(config.url))
        self._host = url.hostname or url.netloc
        #: the URL split around its path, whose placeholders are filled per call
        self._url = url
        self._path_names = PLACEHOLDER.findall(url.path)
        self._headers = {
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
            **{name: self._secrets.expand(value) for name, value in config.headers.items()},
        }

    def redact(self, text: str) -> str:
        return self._secrets.redact(text)

    async def run(self, arguments: dict[str, Any], context: ToolContext) -> ToolResult:
        rest = dict(arguments)
        missing = [name for name in self._path_names if name not in rest]
        if missing:
            return ToolResult.failed(f"missing argument {missing[0]!r}")
        path = PLACEHOLDER.sub(
            lambda m: quote(_text(rest.pop(m.group(1))), safe=""), self._url.path
        )
        url = httpx2.URL(urlunsplit(self._url._replace(path=path)))
        method = self.config.method
        body: Any = None
        if method in QUERY_METHODS:
            # merged, not passed as ``params=``: that would drop a query the URL already has
            url = url.copy_merge_params({key: _query_value(value) for key, value in rest.items()})
        else:
            body = rest
        try:
            request = self._client.build_request(
                method, url, headers=self._headers, json=body, timeout=self.config.timeout_s
            )
            response = await self._client.send(request, stream=True, follow_redirects=True)
            try:
                text = await _read(response)
            finally:
                await response.aclose()
        except httpx2.TimeoutException:
            return ToolResult.failed(
                self.redact(f"{self._host} did not answer within {self.config.timeout_s:g} s")
            )
        except httpx2.TransportError:
            return ToolResult.failed(self.redact(f"could not reach {self._host}"))
        text = self.redact(text)
        status = response.status_code
        if not 200 <= status < 300:
            excerpt = text[:MAX_ERROR_CHARS].strip()
            return ToolResult.failed(f"HTTP {status}: {excerpt}" if excerpt else f"HTTP {status}")
        if not text:
            return ToolResult(json.dumps({"ok": True, "status": status}))
        return ToolResult(clip(text))


def clip(text: str) -> str:
    """``text`` cut at :data:`MAX_OUTPUT_CHARS`, with a marker the model can read (it then
    knows there was more, instead of taking a half answer for a whole one)."""
    return f"{text[:MAX_OUTPUT_CHARS]}{TRUNCATED}" if len(text) > MAX_OUTPUT_CHARS else text


async def _read(response: httpx2.Response) -> str:
    """The body as text, no more than :data:`MAX_BODY_BYTES` of it."""
    data = bytearray()
    async for chunk in response.aiter_bytes():
        data += chunk
        if len(data) >= MAX_BODY_BYTES:
            del data[MAX_BODY_BYTES:]
            break
    try:
        return data.decode(response.charset_encoding or "utf-8", "replace")
    except LookupError:  # a charset Python does not know
        return data.decode("utf-8", "replace")


def _text(value: Any) -> str:
    """An argument as a path segment or query value: strings as they are, the rest as JSON
    (``true``, ``42``), which is what most APIs parse."""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _query_value(value: Any) -> str | list[str]:
    """A list repeats its key (``?id=1&id=2``); anything else is one value."""
    if isinstance(value, list):
        return [_text(item) for item in value]
    return _text(value)
