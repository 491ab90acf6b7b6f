"""Fixtures: a real server per test, speech fixtures, and leak checks on both sides."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from bridge.app import create_app
from bridge.settings import Settings
from pipeline.agents.base import AgentFactory
from tests.fakes.mcp_server import FakeMcpServer
from tests.fakes.tool_server import FakeToolServer
from tests.fakes.twilio_rest_server import FakeTwilioRest
from tests.support.audio import load_ulaw
from tests.support.serverthread import MakeServer, ServerThread


@pytest.fixture(scope="session")
def hello_ulaw() -> bytes:
    return load_ulaw("hello_16k.wav")


@pytest.fixture(scope="session")
def interrupt_ulaw() -> bytes:
    return load_ulaw("interrupt_16k.wav")


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator[MakeServer]:
    """Start servers with settings overrides (env-style names) and an optional agent factory.

    Call records go to a SQLite file of the test's own unless ``BRIDGE_RECORDS_URL`` is given.
    On teardown every server must be clean: no session, connection or task left behind.
    """
    servers: list[ServerThread] = []

    def make(factory: AgentFactory | None = None, **env: Any) -> ServerThread:
        env.setdefault("BRIDGE_AGENT", "echo")  # line tests; the local agent is opted into
        env.setdefault("BRIDGE_RECORDS_URL", f"sqlite:///{tmp_path / 'calls.db'}")
        # every test client shares one loopback address: the per-IP rate limit is off unless
        # a test turns it on (tests/e2e/test_ops_limits.py)
        env = {"BRIDGE_RATE_LIMIT_PER_S": 0, **env}
        settings = Settings.from_env({k: str(v) for k, v in env.items()}, dotenv_path=None)
        server = ServerThread(create_app(settings, factory), settings).start()
        servers.append(server)
        return server

    yield make
    try:
        for server in servers:
            leaks = server.wait_clean()
            assert leaks == {"tasks": [], "connections": 0, "sessions": 0}, leaks
    finally:
        for server in servers:
            server.stop()


@pytest.fixture
def server(make_server: MakeServer) -> ServerThread:
    return make_server()


@pytest.fixture(autouse=True)
async def no_client_task_leaks() -> AsyncIterator[None]:
    """The test's own loop must end with no task left running either."""
    yield
    current = asyncio.current_task()
    for _ in range(50):
        others = [t for t in asyncio.all_tasks() if t is not current and not t.done()]
        if not others:
            return
        await asyncio.sleep(0.02)
    pytest.fail(f"test leaked tasks: {sorted(t.get_name() for t in others)}")


# -- fakes of other people's services, on loopback -----------------------------------------


@pytest.fixture
def rest() -> Iterator[FakeTwilioRest]:
    """Twilio's REST API (call updates, creation with callbacks and AMD)."""
    fake = FakeTwilioRest().start()
    yield fake
    fake.stop()


@pytest.fixture
def tool_server() -> Iterator[FakeToolServer]:
    """A JSON API that HTTP tools call (orders, tickets)."""
    server = FakeToolServer().start()
    yield server
    server.stop()


@pytest.fixture
def mcp_fake() -> Iterator[FakeMcpServer]:
    """An MCP server (streamable HTTP) built with the official SDK."""
    server = FakeMcpServer().start()
    yield server
    server.stop()
