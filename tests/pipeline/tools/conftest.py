"""Fakes on loopback for the tool tests, and a call context that tools here never use."""

from __future__ import annotations

import socket

import pytest

from pipeline.tools.base import TransferFailed, TransferTarget


class NoCall:
    """A :class:`~pipeline.tools.base.ToolContext` for tools that do not touch their call."""

    async def transfer(self, target: TransferTarget) -> None:
        raise TransferFailed("no call here")


@pytest.fixture
def call() -> NoCall:
    return NoCall()


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on (connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port
