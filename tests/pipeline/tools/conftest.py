"""Fakes on loopback for the tool tests, and a call context that tools here never use."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from pipeline.tools.base import TransferFailed, TransferTarget
from tests.fakes.mcp_server import FakeMcpServer
from tests.fakes.tool_server import FakeToolServer


class NoCall:
    """A :class:`~pipeline.tools.base.ToolContext` for tools that do not touch their call."""

    async def transfer(self, target: TransferTarget) -> None:
        raise TransferFailed("no call here")


@pytest.fixture
def call() -> NoCall:
    return NoCall()


@pytest.fixture
def tool_server() -> Iterator[FakeToolServer]:
    server = FakeToolServer().start()
    yield server
    server.stop()


@pytest.fixture
def mcp_fake() -> Iterator[FakeMcpServer]:
    server = FakeMcpServer().start()
    yield server
    server.stop()


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on (connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port
