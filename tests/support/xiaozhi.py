"""Shared pieces of the xiaozhi end-to-end tests."""

from __future__ import annotations

from typing import Any

from tests.support.serverthread import ServerThread
from transports.xiaozhi.emulator.client import FakeXiaozhi


def xiaozhi_url(server: ServerThread) -> str:
    return f"{server.ws}/xiaozhi/v1/"


async def open_device(
    server: ServerThread, listen: str | None = "auto", **kwargs: Any
) -> FakeXiaozhi:
    """A connected device (hello exchanged), listening in ``listen`` mode unless None."""
    device = await FakeXiaozhi(xiaozhi_url(server), **kwargs).connect()
    if listen is not None:
        await device.listen(listen)
    return device
