"""The transport conformance kit: what every way into the bridge must do, over real sockets
against the real server, one run per driver (``drivers.py``). A new transport passes it by
adding a driver; nothing here names a wire."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest

from bridge.call_records.model import CallSummary
from bridge.call_records.store import open_store
from bridge.call_records.url import parse_records_url
from pipeline.agents.base import AgentOutput, CallInfo
from pipeline.session import CallSession
from tests.conformance.drivers import DRIVERS, Driver
from tests.fakes.agents import Factory, FailingTurnAgent, HangUpAgent, ToneAgent, tone_pcm
from tests.support.serverthread import MakeServer, ServerThread
from tests.support.toys import hello_16k

pytestmark = pytest.mark.parametrize("driver", DRIVERS, ids=lambda d: d.name)

GREETING_MS = 600
REPLY_MS = 1200
#: what the far end hears may differ from what was sent by a chunk or frame at each end
TOLERANCE_MS = 150
TIMEOUT_S = 20.0


def tones(**kwargs: int) -> Factory:
    return Factory(lambda call: ToneAgent(call, **kwargs))


async def test_connect_and_greeting(driver: Driver, make_server: MakeServer) -> None:
    server = make_server(tones(greeting_ms=GREETING_MS))
    peer = await driver.connect(server)
    assert await peer.greeting_ms(TIMEOUT_S) == pytest.approx(GREETING_MS, abs=TOLERANCE_MS)
    await peer.close()


async def test_a_turn(driver: Driver, make_server: MakeServer) -> None:
    factory = tones(greeting_ms=GREETING_MS, reply_ms=REPLY_MS)
    server = make_server(factory)
    peer = await driver.connect(server)
    await peer.greeting_ms(TIMEOUT_S)
    await peer.say(hello_16k())
    assert await peer.reply_ms(TIMEOUT_S) == pytest.approx(REPLY_MS, abs=TOLERANCE_MS)
    agent = factory.agents[0]
    assert isinstance(agent, ToneAgent) and len(agent.utterances) == 1
    await peer.close()


async def test_barge_in_reports_what_was_heard(driver: Driver, make_server: MakeServer) -> None:
    factory = tones(greeting_ms=GREETING_MS, reply_ms=8000)
    server = make_server(factory)
    peer = await driver.connect(server)
    await peer.greeting_ms(TIMEOUT_S)
    await peer.say(hello_16k())
    await peer.reply_started(TIMEOUT_S)
    await asyncio.sleep(1.5)
    heard_ms = await peer.barge_in(hello_16k())
    agent = factory.agents[0]
    assert isinstance(agent, ToneAgent)
    async with asyncio.timeout(5):
        while not agent.interruptions:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
    ((turn_id, reported_ms),) = agent.interruptions
    assert turn_id == 2  # the greeting was turn 1
    assert reported_ms == pytest.approx(heard_ms, abs=TOLERANCE_MS)
    assert 1000 < reported_ms < 8000
    assert agent.cancelled_turns == [2]
    await peer.close()


async def test_hang_up_after_the_final_audio(driver: Driver, make_server: MakeServer) -> None:
    server = make_server(Factory(lambda call: HangUpAgent(call, reply_ms=REPLY_MS)))
    peer = await driver.connect(server)
    await peer.say(hello_16k())
    assert await peer.reply_ms(TIMEOUT_S) == pytest.approx(REPLY_MS, abs=TOLERANCE_MS)
    assert await peer.closed(TIMEOUT_S) == 1000
    await peer.close()


async def test_agent_failure_gives_the_transports_failure_signal(
    driver: Driver, make_server: MakeServer
) -> None:
    server = make_server(Factory(lambda call: FailingTurnAgent(call)))
    peer = await driver.connect(server)
    await peer.say(hello_16k())
    await peer.reply_ms(TIMEOUT_S)
    assert peer.failure_signalled()
    await peer.close()


async def test_bad_input_closes_that_call_and_no_other(
    driver: Driver, make_server: MakeServer
) -> None:
    server = make_server(tones(greeting_ms=GREETING_MS, reply_ms=REPLY_MS))
    healthy = await driver.connect(server)
    hostile = await driver.connect(server)
    await hostile.send_garbage()
    assert await hostile.closed(TIMEOUT_S) == driver.garbage_close_code
    await healthy.greeting_ms(TIMEOUT_S)
    await healthy.say(hello_16k())
    assert await healthy.reply_ms(TIMEOUT_S) == pytest.approx(REPLY_MS, abs=TOLERANCE_MS)
    await hostile.close()
    await healthy.close()


class Endless(ToneAgent):
    """A minute of reply, written as a TTS stream would: 100 ms at a time."""

    def __init__(self, call: CallInfo) -> None:
        super().__init__(call, reply_ms=60_000)
        self.written_ms = 0

    async def respond(self, turn_id: int, utterance: bytes, out: AgentOutput) -> None:
        for _ in range(600):
            await out.audio(turn_id, tone_pcm(100))
            self.written_ms += 100


def backlog(server: ServerThread) -> tuple[float, float, int]:
    """The live call's queued playout, unconfirmed audio and unsent socket bytes."""

    async def read() -> tuple[float, float, int]:
        (session,) = server.app.state.bridge.switchboard.sessions()
        assert isinstance(session, CallSession)
        # the ASGI send of the fast path is the server protocol's own bound method
        protocol = session.port._link.ws._send.__self__  # type: ignore[attr-defined]
        unsent = protocol.transport.get_write_buffer_size()
        return session.playout.queued_ms, session.port.unacked_ms(), unsent

    return server.call_in_loop(read)


async def test_a_slow_reader_costs_bounded_memory(driver: Driver, make_server: MakeServer) -> None:
    factory = Factory(Endless)
    server = make_server(factory)
    peer = await driver.connect(server)
    await peer.say(hello_16k())
    await peer.reply_started(TIMEOUT_S)
    peer.stop_reading()
    samples = []
    for _ in range(5):
        await asyncio.sleep(1.0)
        samples.append(await asyncio.to_thread(backlog, server))
    agent = factory.agents[0]
    assert isinstance(agent, Endless)
    assert agent.written_ms < 20_000  # the agent is held back, not buffered without end
    for queued_ms, unacked_ms, unsent_bytes in samples:
        assert queued_ms <= 2000 + 100
        assert unacked_ms <= 2000 + 200
        assert unsent_bytes <= 256 * 1024
    await peer.close()


def recorded_calls(url: str, transport: str, timeout_s: float = 10.0) -> list[CallSummary]:
    """The transport's ended calls in the records, once the writer thread has put them."""
    target = parse_records_url(url)
    assert target is not None
    deadline = time.monotonic() + timeout_s
    while True:
        store = open_store(target, create=False)
        try:
            calls = [
                c
                for c in store.recent_calls(20)
                if c.call.transport == transport and c.call.ended_at_s is not None
            ]
        finally:
            store.close()
        if calls or time.monotonic() > deadline:
            return calls
        time.sleep(0.05)


async def test_the_call_is_recorded_and_counted_under_its_transport(
    driver: Driver, make_server: MakeServer, tmp_path: Path
) -> None:
    records_url = f"sqlite:///{tmp_path / 'conformance.db'}"
    server = make_server(
        tones(greeting_ms=GREETING_MS, reply_ms=REPLY_MS), BRIDGE_RECORDS_URL=records_url
    )
    peer = await driver.connect(server)
    await peer.greeting_ms(TIMEOUT_S)
    await peer.say(hello_16k())
    await peer.reply_ms(TIMEOUT_S)
    await peer.close()
    (call,) = await asyncio.to_thread(recorded_calls, records_url, driver.name)
    assert call.turns == 1  # the caller's turn (a greeting is no turn of the caller's)
    async with httpx.AsyncClient() as http:
        metrics = (await http.get(f"{server.http}/metrics")).text
    ended = [
        line
        for line in metrics.splitlines()
        if line.startswith("bridge_calls_ended_total") and f'transport="{driver.name}"' in line
    ]
    assert ended and float(ended[0].rsplit(" ", 1)[1]) == 1.0
