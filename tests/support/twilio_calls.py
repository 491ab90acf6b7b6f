"""Small helpers shared by the Twilio end-to-end tests."""

from __future__ import annotations

import asyncio
import base64
import contextlib
from typing import Any

from tests.support.serverthread import ServerThread
from transports.twilio.emulator.client import FakeTwilio

SILENCE = b"\xff"


async def open_call(server: ServerThread, begin: bool = True, **kwargs: Any) -> FakeTwilio:
    peer = FakeTwilio(f"{server.ws}/stream", **kwargs)
    await peer.connect()
    if begin:
        await peer.begin()
    return peer


async def say(peer: FakeTwilio, ulaw: bytes, lead_ms: int = 300, tail_ms: int = 800) -> bytes:
    """Silence, the utterance, then enough silence to end the turn. Returns all that was sent."""
    sent = SILENCE * (lead_ms * 8) + ulaw + SILENCE * (tail_ms * 8)
    await peer.stream(sent)
    return sent


async def say_and_listen(
    peer: FakeTwilio, ulaw: bytes, quiet_s: float = 0.8, timeout_s: float = 20.0, lead_ms: int = 300
) -> bytes:
    """Say ``ulaw``, keep the line alive with silence (as Twilio does) until the reply has
    finished playing, and return everything that was sent."""
    replies_before = len(peer.timeline.media_times)
    sent = await say(peer, ulaw, lead_ms=lead_ms)
    talker = background(peer.silence(int(timeout_s * 1000)))
    try:
        # the reply must start first: a slow agent answers after the utterance's silent tail,
        # and earlier audio (a greeting) must not count as "the reply went quiet"
        await peer.wait_for_media(replies_before + 1, timeout_s=timeout_s)
        await peer.wait_quiet(quiet_s=quiet_s, timeout_s=timeout_s)
    finally:
        talker.cancel()
    return sent


def assert_heard_own_words(peer: FakeTwilio, utterance: bytes, sent: bytes) -> None:
    """Echo check: most of the utterance came back, byte for byte from this caller's stream."""
    heard = bytes(peer.played)
    assert len(heard) > 0.8 * len(utterance)
    assert heard in sent


def media_payloads(peer: FakeTwilio) -> list[bytes]:
    return [base64.b64decode(m["media"]["payload"]) for m in peer.outbound("media")]


async def keep_talking_silence(peer: FakeTwilio, seconds: float) -> None:
    """Twilio sends media during silence too; keep the line alive in the background."""
    with contextlib.suppress(Exception):
        await peer.silence(int(seconds * 1000))


def background(coro: Any) -> asyncio.Task[Any]:
    return asyncio.create_task(coro)
