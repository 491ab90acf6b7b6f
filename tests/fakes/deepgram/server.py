"""The fake Deepgram: one loopback port serving Nova-3, Flux and Aura over WebSockets,
straight (``/v1/listen``, ``/v2/listen``, ``/v1/speak`` with ``Authorization: Token <key>``)
and as Cloudflare AI Gateway serves them from Workers AI
(``/v1/<account>/<gateway>/workers-ai?model=@cf/deepgram/...`` with
``cf-aig-authorization: Bearer <token>``).

Sources: the spec notes (``/work/shared/spec/speech-providers.md``); Deepgram's
authentication ("Header sent on every request: Authorization: Token <api_key>",
``deepgram-python-sdk``; browsers pass ``["token", key]`` as subprotocols); Cloudflare's
"Realtime WebSockets API" page (``cloudflare-docs``
``src/content/docs/ai-gateway/usage/websockets-api/realtime-api.mdx``: the ``workers-ai``
path, ``model=@cf/deepgram/nova-3``, ``@cf/deepgram/flux``, ``@cf/deepgram/aura-1``, the
``cf-aig-authorization`` header or ``cf-aig-authorization.<token>`` subprotocol) and its
"Authenticated Gateway" page (a request without the header fails). Those pages show the
token both bare and after ``Bearer``; the fake takes both and records which
(``Connection.auth_scheme``).

A test scripts transcripts (:attr:`FakeDeepgram.transcripts`), tunes the timing
(:attr:`FakeDeepgram.tuning`), injects faults per endpoint (:meth:`FakeDeepgram.fail`) and a
delay before each first answer (:attr:`FakeDeepgram.first_result_delay_s`), then reads what
was received from :attr:`FakeDeepgram.connections`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import time
import uuid
from collections import deque
from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket

from tests.fakes.deepgram.aura import AuraSession
from tests.fakes.deepgram.flux import FluxStream
from tests.fakes.deepgram.link import Link
from tests.fakes.deepgram.nova import NovaStream
from tests.fakes.deepgram.params import AuraParams, FluxParams, NovaParams, ParamError
from tests.fakes.deepgram.records import (
    ClientMessage,
    Connection,
    Endpoint,
    Fault,
    Route,
    Tuning,
    redact,
    subprotocol_secret,
)
from tests.fakes.faults import FaultSchedule
from tests.support.serverthread import UvicornThread

API_KEY = "dg-test-key"
CF_TOKEN = "cf-test-token"
DIRECT_PATHS: dict[str, Endpoint] = {
    "/v1/listen": "nova",
    "/v2/listen": "flux",
    "/v1/speak": "aura",
}
WORKERS_AI_MODELS: dict[str, Endpoint] = {
    "@cf/deepgram/nova-3": "nova",
    "@cf/deepgram/flux": "flux",
    "@cf/deepgram/aura-1": "aura",
    "@cf/deepgram/aura-2-en": "aura",
    "@cf/deepgram/aura-2-es": "aura",
}
GATEWAY_PATH = re.compile(r"^/v1/(?P<account>[^/]+)/(?P<gateway>[^/]+)/workers-ai/?$")
#: Deepgram's error bodies carry ``err_code`` and ``err_msg`` (its REST errors and SDK)
ERR_CODES = {400: "Bad Request", 401: "INVALID_AUTH", 429: "TOO_MANY_REQUESTS"}


class FakeDeepgram:
    def __init__(
        self,
        api_key: str | None = API_KEY,
        cf_token: str | None = CF_TOKEN,
        tuning: Tuning | None = None,
    ) -> None:
        #: the Deepgram key (``Authorization: Token``); None: any credentials pass
        self.api_key = api_key
        #: the AI Gateway token (``cf-aig-authorization``); None: any credentials pass
        self.cf_token = cf_token
        self.tuning = tuning or Tuning()
        #: one transcript per stretch of speech, Nova-3 and Flux alike
        self.transcripts: deque[str] = deque()
        self.default_transcript = "Hello there."
        #: endpoint -> seconds before each first answer (utterance, turn, flush)
        self.first_result_delay_s: dict[Endpoint, float] = {}
        self.connections: list[Connection] = []
        #: paths that matched no endpoint (refused with 404)
        self.unknown_paths: list[str] = []
        self._schedule: FaultSchedule[Endpoint, Fault] = FaultSchedule()
        self.app = Starlette(routes=[WebSocketRoute("/{path:path}", self._serve)])
        self._server: UvicornThread | None = None

    # -- control (test side) -----------------------------------------------------------

    def start(self) -> FakeDeepgram:
        self._server = UvicornThread(
            self.app,
            log_config=None,
            access_log=False,
            lifespan="off",
            ws="websockets-sansio",
            timeout_graceful_shutdown=2,
        ).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()

    @property
    def ws(self) -> str:
        """``ws://127.0.0.1:<port>``: Deepgram's paths go after it."""
        assert self._server is not None, "start() the fake first"
        return self._server.ws

    def gateway_url(self, account: str = "acct", gateway: str = "gw") -> str:
        """The Workers AI endpoint of an AI Gateway (add ``?model=@cf/deepgram/...``)."""
        return f"{self.ws}/v1/{account}/{gateway}/workers-ai"

    def fail(self, endpoint: Endpoint, fault: Fault, times: int | None = 1) -> None:
        """The next ``times`` connections to ``endpoint`` get ``fault`` (None: all)."""
        self._schedule.fail(endpoint, fault, times)

    def heal(self) -> None:
        self._schedule.heal()

    def to(self, endpoint: Endpoint) -> list[Connection]:
        return [c for c in self.connections if c.endpoint == endpoint]

    async def wait_for(
        self, ready: Callable[[], bool], timeout_s: float = 10.0, what: str = "condition"
    ) -> None:
        deadline = time.monotonic() + timeout_s
        while not ready():
            if time.monotonic() > deadline:
                raise AssertionError(f"fake Deepgram: timed out waiting for {what}")
            await asyncio.sleep(0.01)

    # -- handshake ---------------------------------------------------------------------

    async def _serve(self, ws: WebSocket) -> None:
        path = ws.url.path
        query = dict(ws.query_params)
        found = self._route(path, query)
        if found is None:
            self.unknown_paths.append(path)
            await _deny(ws, "deepgram", 404, f"no endpoint at {path}")
            return
        endpoint, route, account, gateway = found
        headers, credentials = redact({k.lower(): v for k, v in ws.headers.items()})
        record = Connection(endpoint, route, path, query, headers, account, gateway, ws.url.query)
        self.connections.append(record)
        subprotocol = self._authenticate(record, credentials, ws)
        if record.status == 401:
            message = "Invalid credentials." if route == "deepgram" else "Unauthorized"
            await _deny(ws, route, 401, message)
            return
        record.fault = self._next_fault(endpoint)
        if record.fault is not None and record.fault.kind == "status":
            record.status = record.fault.status
            retry_after = record.fault.retry_after
            extra = {"retry-after": retry_after} if retry_after else {}
            await _deny(ws, route, record.status, f"injected {record.status}", extra)
            return
        try:
            params = _parse(endpoint, query, gateway=route == "gateway")
        except ParamError as error:
            record.status = 400
            await _deny(ws, route, 400, str(error))
            return
        await ws.accept(subprotocol=subprotocol)
        try:
            await self._session(ws, record, params)
        finally:
            record.closed_at = record.closed_at or time.monotonic()

    def _route(self, path: str, query: dict[str, str]) -> tuple[Endpoint, Route, str, str] | None:
        """(endpoint, route, account, gateway) for a path, or None when nothing serves it."""
        if path in DIRECT_PATHS:
            return DIRECT_PATHS[path], "deepgram", "", ""
        match = GATEWAY_PATH.match(path)
        if match is None:
            return None
        endpoint = WORKERS_AI_MODELS.get(query.get("model", ""))
        if endpoint is None:
            return None
        return endpoint, "gateway", match["account"], match["gateway"]

    def _authenticate(
        self, record: Connection, credentials: dict[str, tuple[str, str]], ws: WebSocket
    ) -> str | None:
        """Sets ``record.status`` to 401 on bad credentials; returns the subprotocol to
        accept when the credentials came as one."""
        schemes: tuple[str, ...]
        if record.route == "deepgram":
            expected, header, schemes = self.api_key, "authorization", ("token",)
        else:
            expected, header, schemes = self.cf_token, "cf-aig-authorization", ("bearer", "")
        scheme, secret = credentials.get(header, ("", ""))
        subprotocol = None
        offered = ws.scope.get("subprotocols") or []
        chosen = subprotocol_secret(list(offered))
        wanted = "token" if record.route == "deepgram" else "cf-aig-authorization."
        if not secret and chosen is not None and chosen[0].startswith(wanted):
            scheme, secret, subprotocol = "subprotocol", chosen[1], chosen[0]
        record.auth_scheme = scheme if secret else ""
        record.keep_secret(secret)
        scheme_ok = scheme == "subprotocol" or scheme.lower() in schemes
        if expected is not None and not (secret == expected and scheme_ok):
            record.status = 401
        return subprotocol

    def _next_fault(self, endpoint: Endpoint) -> Fault | None:
        return self._schedule.next(endpoint)

    def _next_transcript(self) -> str:
        return self.transcripts.popleft() if self.transcripts else self.default_transcript

    # -- sessions ----------------------------------------------------------------------

    async def _session(self, ws: WebSocket, record: Connection, params: object) -> None:
        tuning = dataclasses.replace(self.tuning)
        request_id = str(uuid.uuid4())

        def delay_s() -> float:
            return self.first_result_delay_s.get(record.endpoint, 0.0)

        if isinstance(params, NovaParams):
            nova = NovaStream(params, self._next_transcript, tuning, request_id)
            link = Link(ws, record, delay_s=delay_s)

            async def on_nova(message: ClientMessage) -> None:
                if message.data is not None:
                    link.emit(nova.audio(message.data))
                elif message.type == "Finalize":
                    link.emit(nova.finalize())
                elif message.type == "CloseStream":
                    link.emit(nova.close_stream())

            await link.run(on_nova, tuning.idle_timeout_s)
        elif isinstance(params, FluxParams):
            flux = FluxStream(params, self._next_transcript, tuning, request_id)

            def error_event() -> dict[str, Any]:
                event = flux.error("INTERNAL_SERVER_ERROR", "injected fault").event
                assert event is not None
                return event

            link = Link(ws, record, delay_s=delay_s, error_event=error_event)
            link.emit([flux.connected()])

            async def on_flux(message: ClientMessage) -> None:
                if message.data is not None:
                    link.emit(flux.audio(message.data))
                elif message.type == "ForceEndTurn":
                    link.emit(flux.force_end_turn())
                elif message.type == "CloseStream":
                    link.emit(flux.close_stream())

            await link.run(on_flux, None)
        elif isinstance(params, AuraParams):
            link = Link(ws, record, delay_s=delay_s)
            aura = AuraSession(link, params, tuning, request_id)
            aura.open()
            try:
                await link.run(aura.handle, None)
            finally:
                await aura.close()


def _parse(endpoint: Endpoint, query: dict[str, str], *, gateway: bool) -> object:
    if endpoint == "nova":
        return NovaParams.parse(query)
    if endpoint == "flux":
        return FluxParams.parse(query, gateway=gateway)
    return AuraParams.parse(query, gateway=gateway)


async def _deny(
    ws: WebSocket, route: Route, status: int, message: str, headers: dict[str, str] | None = None
) -> None:
    """Refuse the upgrade with an HTTP status, in the service's error shape (Deepgram's
    ``err_code``/``err_msg``; for the gateway a Cloudflare-style ``errors`` list, whose exact
    body the fake could not confirm)."""
    body: dict[str, Any]
    if route == "deepgram":
        code = ERR_CODES.get(status, "INTERNAL_SERVER_ERROR" if status >= 500 else "ERROR")
        body = {"err_code": code, "err_msg": message, "request_id": str(uuid.uuid4())}
    else:
        body = {"success": False, "errors": [{"message": message}]}
    await ws.send_denial_response(JSONResponse(body, status_code=status, headers=headers))
