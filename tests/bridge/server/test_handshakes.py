"""Slow request headers and slow upgrade answers, over real sockets against the real server."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass
from types import SimpleNamespace

import httpx
import pytest
from starlette.types import Receive, Scope, Send
from websockets.asyncio.client import connect

from bridge.server.config import uvicorn_options
from bridge.server.handshakes import HandshakeGuard
from bridge.settings import Settings
from tests.bridge.server.slowclients import SlowResult, silent_connection, slow_upgrade
from tests.support.ops import sample, scrape
from tests.support.serverthread import MakeServer, ServerThread, UvicornThread
from tests.support.twilio_calls import assert_heard_own_words, open_call, say_and_listen

REJECTED = "bridge_rejected_connections_total"
IN_PROGRESS = "bridge_handshakes_in_progress"
TIMEOUT_S = 2.0
#: how late a close may come on a loaded test machine
SLACK_S = 2.0


def in_progress(server: ServerThread) -> int:
    count: int = server.app.state.bridge.handshakes.in_progress
    return count


async def wait_for(predicate: object, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.02)


def closed_in_time(result: SlowResult) -> bool:
    after = result.closed_after_s
    return after is not None and TIMEOUT_S - 0.1 <= after <= TIMEOUT_S + SLACK_S


async def test_slow_upgrades_are_closed_after_the_deadline_while_a_call_works(
    make_server: MakeServer, hello_ulaw: bytes
) -> None:
    server = make_server(BRIDGE_HANDSHAKE_TIMEOUT_S=TIMEOUT_S)
    give_up_s = TIMEOUT_S + 3 * SLACK_S
    slow = [
        asyncio.create_task(slow_upgrade(server.port, path, 0.5, give_up_s))
        for path in ("/stream", "/ws/esp32")
        for _ in range(50)
    ]
    await wait_for(lambda: in_progress(server) == 100, timeout_s=TIMEOUT_S)
    peer = await open_call(server)  # its handshake is done at once despite the hundred
    try:
        results = await asyncio.gather(*slow)
        assert all(r.received == b"" for r in results)  # cut off, never answered
        late = [r.closed_after_s for r in results if not closed_in_time(r)]
        assert late == []
        sent = await say_and_listen(peer, hello_ulaw, quiet_s=0.6, timeout_s=15)
        assert_heard_own_words(peer, hello_ulaw, sent)
    finally:
        await peer.close()
    samples = await scrape(server.http)
    assert sample(samples, REJECTED, route="handshake", reason="timeout") == 100
    assert sample(samples, REJECTED, route="handshake", reason="too_many") == 0
    assert sample(samples, IN_PROGRESS) == 0


async def test_beyond_the_bound_new_connections_are_closed_at_once(
    make_server: MakeServer,
) -> None:
    server = make_server(BRIDGE_HANDSHAKE_TIMEOUT_S=10, BRIDGE_MAX_HANDSHAKES=5)
    holding = [
        asyncio.create_task(slow_upgrade(server.port, "/stream", 0.3, give_up_s=20))
        for _ in range(5)
    ]
    await wait_for(lambda: in_progress(server) == 5)
    excess = await asyncio.gather(*(silent_connection(server.port, 5) for _ in range(5)))
    assert [r.received for r in excess] == [b""] * 5
    assert all(r.closed_after_s is not None and r.closed_after_s < 1.0 for r in excess)
    for task in holding:
        task.cancel()
    await asyncio.gather(*holding, return_exceptions=True)
    await wait_for(lambda: in_progress(server) == 0)
    samples = await scrape(server.http)  # a slot is free again
    assert sample(samples, REJECTED, route="handshake", reason="too_many") == 5
    assert sample(samples, REJECTED, route="handshake", reason="timeout") == 0


async def test_silent_connections_and_slow_next_requests_get_the_same_deadline(
    make_server: MakeServer,
) -> None:
    server = make_server(BRIDGE_HANDSHAKE_TIMEOUT_S=TIMEOUT_S)
    silent = await silent_connection(server.port, TIMEOUT_S + 3 * SLACK_S)
    assert closed_in_time(silent)

    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\nOK"), 5)
        assert head.startswith(b"HTTP/1.1 200")
        await asyncio.sleep(TIMEOUT_S + 0.3)  # idle keep-alive: uvicorn's own timeout (5 s)
        started = time.monotonic()
        for line in (b"GET /health HTTP/1.1\r\n", b"Host: x\r\n", b"X-A: 1\r\n", b"X-B: 2\r\n"):
            writer.write(line)
            await writer.drain()
            await asyncio.sleep(0.4)
        assert await asyncio.wait_for(reader.read(), 5) == b""
        assert TIMEOUT_S - 0.1 <= time.monotonic() - started <= TIMEOUT_S + SLACK_S + 1.6
    finally:
        writer.close()
    samples = await scrape(server.http)
    assert sample(samples, REJECTED, route="handshake", reason="timeout") == 2


async def test_prompt_requests_finish_their_handshake_at_once(make_server: MakeServer) -> None:
    server = make_server(BRIDGE_HANDSHAKE_TIMEOUT_S=TIMEOUT_S, BRIDGE_MAX_HANDSHAKES=1)
    async with httpx.AsyncClient(base_url=server.http) as http:
        for _ in range(3):  # one slot is enough for requests one after another
            assert (await http.get("/health")).status_code == 200
    peer = await open_call(server)
    try:
        await wait_for(lambda: in_progress(server) == 0)
        await asyncio.sleep(TIMEOUT_S + 0.3)
        assert not peer.is_closed
    finally:
        await peer.close()
    samples = await scrape(server.http)
    assert sample(samples, REJECTED, route="handshake", reason="timeout") == 0


class _Transport(asyncio.BaseTransport):
    def __init__(self) -> None:
        super().__init__()
        self.closed = False

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_protocol(self) -> asyncio.BaseProtocol:
        return asyncio.Protocol()


async def test_guard_counts_each_handshake_once() -> None:
    events: list[str] = []
    guard = HandshakeGuard(
        0.05,
        2,
        on_timeout=lambda: events.append("timeout"),
        on_refused=lambda: events.append("3rd"),
    )
    loop = asyncio.get_running_loop()
    first, second, third = _Transport(), _Transport(), _Transport()
    done = guard.begin(first, loop)
    late = guard.begin(second, loop)
    assert done is not None and late is not None and guard.begin(third, loop) is None
    done.finish()
    done.finish()
    assert guard.in_progress == 1 and events == ["3rd"]
    await asyncio.sleep(0.2)
    late.finish()  # the connection_lost that follows the close
    assert guard.in_progress == 0 and events == ["3rd", "timeout"]
    assert second.closed and not first.closed and not third.closed  # the caller closes a refusal


# -- the WebSocket half: our own answer to the upgrade ------------------------------------------


class GuardedApp:
    """``/slow`` never answers its upgrade; ``/ok`` accepts at once and waits for the close."""

    def __init__(self, guard: HandshakeGuard) -> None:
        self.state = SimpleNamespace(bridge=SimpleNamespace(handshakes=guard))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "websocket"
        await receive()  # websocket.connect
        if scope["path"] == "/ok":
            await send({"type": "websocket.accept"})
        while (await receive())["type"] != "websocket.disconnect":
            pass


@dataclass
class Guarded:
    server: UvicornThread
    guard: HandshakeGuard
    #: what the guard reported
    events: list[str]
    #: whether the WebSocket class takes the handshake over (ours) or not (uvicorn's stock one)
    takes_over: bool


@pytest.fixture(params=["batched", "websockets-sansio"])
def guarded(request: pytest.FixtureRequest) -> Iterator[Guarded]:
    events: list[str] = []
    guard = HandshakeGuard(TIMEOUT_S, 10, on_timeout=lambda: events.append("timeout"))
    settings = Settings.from_env({"BRIDGE_WS_IMPL": request.param}, dotenv_path=None)
    options = {**uvicorn_options(settings), "lifespan": "off"}
    server = UvicornThread(GuardedApp(guard), **options).start()
    yield Guarded(server, guard, events, takes_over=request.param == "batched")
    server.stop()


async def test_an_upgrade_we_do_not_answer_in_time_is_closed(guarded: Guarded) -> None:
    started = time.monotonic()
    with pytest.raises(Exception) as failure:
        async with connect(f"{guarded.server.ws}/slow", open_timeout=TIMEOUT_S + 3 * SLACK_S):
            pass
    assert not isinstance(failure.value, TimeoutError)
    assert TIMEOUT_S - 0.1 <= time.monotonic() - started <= TIMEOUT_S + SLACK_S
    assert guarded.events == ["timeout"]


async def test_an_accepted_upgrade_outlives_the_deadline(guarded: Guarded) -> None:
    guard = guarded.guard
    async with connect(f"{guarded.server.ws}/ok") as ws:
        if guarded.takes_over:  # released with the 101; the stock class at the deadline
            await wait_for(lambda: guard.in_progress == 0, timeout_s=TIMEOUT_S / 2)
        await asyncio.sleep(TIMEOUT_S + 0.3)
        await ws.ping()
    assert guard.in_progress == 0 and guarded.events == []
