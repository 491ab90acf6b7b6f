"""The fake ElevenLabs server: a raw ASGI app served by uvicorn on loopback.

It answers ``/v1/text-to-speech/<voice_id>/stream-input`` and ``…/multi-stream-input`` (the two
channels of the AsyncAPI definition) on one port, and nothing else. Tests run it in a
background thread (:meth:`FakeElevenLabs.start`, like the other fakes); benchmarks run it in a
process of its own (:meth:`FakeElevenLabs.serve`, ``python -m tests.fakes.elevenlabs_server``).

A handshake is refused only by an injected :class:`~.records.Fault` (HTTP status and
``{"detail": {"status", "message"}}`` body) or for ``model_id=eleven_v3``, which the docs say
has no WebSocket ("WebSockets are not available for the ``eleven_v3`` model", guide
``developer-guides/websockets.mdx``; a 403 in livekit/agents#3235). A wrong key is not refused
at the handshake: the key may also come in the first message (AsyncAPI
``InitializeConnection.xi-api-key``), so the socket is accepted and then failed with 1008, as
pipecat-ai/pipecat#1006 saw for a wrong key.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Callable
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode

import uvicorn
from starlette.types import Receive, Scope, Send

from tests.fakes.elevenlabs import wire
from tests.fakes.elevenlabs.records import Connection, Endpoint, Fault, redact
from tests.fakes.elevenlabs.session import Session
from tests.fakes.faults import FaultSchedule
from tests.support.serverthread import UvicornThread

API_KEY = "xi-test-elevenlabs"
_PATH = re.compile(r"/v1/text-to-speech/(?P<voice>[^/]+)/(?P<endpoint>(multi-)?stream-input)")


class FakeElevenLabs:
    """Settings are plain attributes: a test may change them between (or during) sessions."""

    def __init__(
        self,
        api_key: str = API_KEY,
        *,
        pace: float = 4.0,
        first_audio_delay_s: float = 0.0,
        inactivity_timeout_s: float = wire.DEFAULT_INACTIVITY_TIMEOUT_S,
        max_contexts: int = wire.MAX_CONTEXTS,
        chars_per_message: int = 10,
        close_drains_flushed: bool = True,
    ) -> None:
        if pace <= 0:
            raise ValueError("pace must be > 0 (math.inf: no pacing)")
        self.api_key = api_key
        #: ``authorization`` tokens accepted instead of a key (the API's single-use tokens)
        self.auth_tokens: set[str] = set()
        #: audio goes out this many times faster than real time
        self.pace = pace
        #: a wait before the first audio of every generation (a provider's latency)
        self.first_audio_delay_s = first_audio_delay_s
        #: used when the URL has no ``inactivity_timeout``
        self.inactivity_timeout_s = inactivity_timeout_s
        self.max_contexts = max_contexts
        #: characters per audio message (each message's alignment covers exactly its audio)
        self.chars_per_message = chars_per_message
        #: ``close_context`` lets audio already flushed finish, as the docs say; False cuts it
        self.close_drains_flushed = close_drains_flushed
        self.connections: list[Connection] = []
        self.stopping = False
        self.port = 0
        self._schedule: FaultSchedule[str, Fault] = FaultSchedule()
        self._thread: UvicornThread | None = None
        self._uvicorn: uvicorn.Server | None = None
        self._release: asyncio.Event | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> FakeElevenLabs:
        """Serve on a free loopback port, in a background thread."""
        thread = UvicornThread(
            self,
            log_config=None,
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=2,
        )
        self._thread, self._uvicorn = thread, thread.server
        thread.start()
        self.port = thread.port
        self._release = thread.call_in_loop(_new_event)
        return self

    def stop(self) -> None:
        self.stopping = True
        thread, release = self._thread, self._release
        if thread is not None:
            if thread.loop is not None and release is not None:
                thread.loop.call_soon_threadsafe(release.set)  # let stalled sessions end
            thread.stop()

    def __enter__(self) -> FakeElevenLabs:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def serve(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Serve in this thread until the process is killed (the command line)."""
        config = uvicorn.Config(self, host=host, port=port, lifespan="off", access_log=False)
        self._uvicorn = uvicorn.Server(config)
        self.port = port
        self._uvicorn.run()

    # -- addresses ---------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """What replaces ``wss://api.elevenlabs.io`` for a client."""
        return f"ws://127.0.0.1:{self.port}"

    def url(
        self, voice_id: str = "voice1", endpoint: Endpoint = "stream-input", **query: object
    ) -> str:
        """The endpoint's URL; ``query`` values are sent as given (booleans as true/false)."""
        params = {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in query.items()}
        tail = f"?{urlencode(params)}" if params else ""
        return f"{self.base_url}/v1/text-to-speech/{voice_id}/{endpoint}{tail}"

    # -- faults and records (test side) ------------------------------------------------------

    def fail(
        self, endpoint: Endpoint | Literal["any"], fault: Fault, times: int | None = 1
    ) -> None:
        """The next ``times`` connections to ``endpoint`` get ``fault`` (None: all of them)."""
        self._schedule.fail(endpoint, fault, times)

    def heal(self) -> None:
        self._schedule.heal()

    def to(self, endpoint: Endpoint) -> list[Connection]:
        return [c for c in self.connections if c.endpoint == endpoint]

    @property
    def last(self) -> Connection:
        return self.connections[-1]

    async def wait_for(
        self, ready: Callable[[], bool], timeout_s: float = 5.0, what: str = "condition"
    ) -> None:
        deadline = time.monotonic() + timeout_s
        while not ready():
            if time.monotonic() > deadline:
                raise AssertionError(f"fake ElevenLabs: timed out waiting for {what}")
            await asyncio.sleep(0.01)

    # -- ASGI --------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            body = json.dumps(wire.http_error_body(404, "Not Found")).encode()
            await send({"type": "http.response.start", "status": 404, "headers": _JSON})
            await send({"type": "http.response.body", "body": body})
            return
        if scope["type"] != "websocket":
            return
        await receive()  # websocket.connect
        match = _PATH.fullmatch(scope["path"])
        if match is None:
            await _deny(send, 404, "Not Found")
            return
        endpoint: Endpoint = "stream-input"
        if match["endpoint"] == "multi-stream-input":
            endpoint = "multi-stream-input"
        query = dict(parse_qsl(scope["query_string"].decode()))
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        conn = Connection(endpoint, match["voice"], redact(query), redact(headers))
        conn.fault = self._next_fault(endpoint)
        self.connections.append(conn)
        fault = conn.fault
        refusal: tuple[int, str, str | None] | None = None
        if fault is not None and fault.kind == "status":
            refusal = (fault.status, f"injected {fault.status}", fault.retry_after)
        elif query.get("model_id") == "eleven_v3":
            refusal = (403, "WebSockets are not available for the eleven_v3 model", None)
        if refusal is not None:
            conn.status, conn.closed_at_s = refusal[0], time.monotonic()
            await _deny(send, *refusal)
            return
        await send({"type": "websocket.accept"})
        conn.status = 101
        await Session(self, conn, scope, (receive, send), query, headers).run()

    def _next_fault(self, endpoint: Endpoint) -> Fault | None:
        return self._schedule.next(endpoint, "any")

    # -- for sessions ------------------------------------------------------------------------

    def abort(self, client: Any) -> None:
        """Cut the TCP connection of the WebSocket from ``client``, with no close frame.

        ASGI has no way to do this, so it reaches into uvicorn: every protocol instance it
        serves (websockets, websockets-sansio or wsproto) keeps ``client`` and ``transport``.
        """
        server = self._uvicorn
        if server is None or client is None:
            return
        for protocol in list(server.server_state.connections):
            if getattr(protocol, "client", None) == tuple(client):
                transport = getattr(protocol, "transport", None)
                if transport is not None:
                    transport.abort()

    async def wait_released(self) -> None:
        """Wait until :meth:`stop` (what a stalled session does)."""
        if self._release is None:
            self._release = asyncio.Event()
        if not self.stopping:
            await self._release.wait()


_JSON = [(b"content-type", b"application/json")]


async def _deny(send: Send, status: int, message: str, retry_after: str | None = None) -> None:
    """Refuse the upgrade with an HTTP response (the ASGI ``websocket.http.response``
    extension, which uvicorn implements)."""
    headers = list(_JSON)
    if retry_after is not None:
        headers.append((b"retry-after", retry_after.encode()))
    body = json.dumps(wire.http_error_body(status, message)).encode()
    await send({"type": "websocket.http.response.start", "status": status, "headers": headers})
    await send({"type": "websocket.http.response.body", "body": body})


async def _new_event() -> asyncio.Event:
    return asyncio.Event()
