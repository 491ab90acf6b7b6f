"""Admission limits over real sockets: each one tripped while a healthy call keeps talking."""

from __future__ import annotations

import asyncio

import pytest
from starlette.datastructures import Headers
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from bridge.ops.admission import ClientAddress, TokenBuckets
from tests.support.clock import FakeClock
from tests.support.ops import connects, echo_factory, is_busy, post_webhook, sample, scrape
from tests.support.serverthread import MakeServer, ServerThread
from tests.support.toys import open_toy, refused_status
from tests.support.twilio_calls import (
    assert_heard_own_words,
    background,
    open_call,
    say_and_listen,
)
from tests.support.twilio_signing import TOKEN, signed_webhook, stream_headers
from transports.twilio.emulator.client import FakeTwilio, new_sid

HEALTHY_IP = "198.51.100.1"
FLOOD_IP = "203.0.113.9"
OTHER_IP = "198.51.100.2"
REJECTED = "bridge_rejected_connections_total"


async def healthy_exchange(peer: FakeTwilio, hello_ulaw: bytes) -> None:
    """The healthy call says something and must hear all of it back."""
    sent = await say_and_listen(peer, hello_ulaw, quiet_s=0.6, timeout_s=15)
    assert_heard_own_words(peer, hello_ulaw, sent)
    assert peer.timeline.clears == [] and not peer.is_closed


async def stream_refused_with(server: ServerThread, headers: dict[str, str] | None = None) -> int:
    """Open a /stream that must be accepted and closed; returns the close code."""
    peer = FakeTwilio(f"{server.ws}/stream", headers=headers)
    await peer.connect()
    try:
        code = await peer.wait_closed(5)
        assert code is not None
        return code
    finally:
        await peer.close()


async def stream_denied_status(server: ServerThread, headers: dict[str, str]) -> int:
    """Open a /stream that must be refused before the 101; returns the HTTP status."""
    try:
        async with connect(f"{server.ws}/stream", additional_headers=headers, open_timeout=5):
            pass
    except InvalidStatus as exc:
        return exc.response.status_code
    raise AssertionError("the upgrade was accepted")


# -- concurrent calls ----------------------------------------------------------------------


async def test_full_twilio_capacity_answers_busy_and_closes_1013(
    make_server: MakeServer, hello_ulaw: bytes
) -> None:
    server = make_server(echo_factory(), BRIDGE_MAX_TWILIO_CALLS=1)
    assert connects(await post_webhook(server.http))
    healthy = await open_call(server)
    talking = background(healthy_exchange(healthy, hello_ulaw))
    await asyncio.sleep(0.5)  # the healthy caller is mid-sentence
    assert is_busy(await post_webhook(server.http))
    assert await stream_refused_with(server) == 1013
    assert await stream_refused_with(server) == 1013
    await talking
    samples = await scrape(server.http)
    assert sample(samples, REJECTED, route="twiml", reason="capacity") == 1
    assert sample(samples, REJECTED, route="stream", reason="capacity") == 2
    await healthy.send_stop()
    await healthy.wait_closed(5)
    await healthy.close()
    await asyncio.to_thread(server.wait_clean)
    assert connects(await post_webhook(server.http))  # the slot is free again


async def test_full_toy_capacity_refuses_503_before_the_upgrade(
    make_server: MakeServer, hello_ulaw: bytes
) -> None:
    server = make_server(echo_factory(), BRIDGE_MAX_TOY_SESSIONS=1)
    toy = await open_toy(server, token=None, idle_mic=True)
    await toy.wait_responses(1, 5)
    healthy = await open_call(server)  # phone calls have their own limit
    talking = background(healthy_exchange(healthy, hello_ulaw))
    assert await refused_status(server, token=None) == 503
    await talking
    assert not toy.is_closed
    await toy.close()
    await healthy.close()
    samples = await scrape(server.http)
    assert sample(samples, REJECTED, route="esp32", reason="capacity") == 1


async def test_total_capacity_counts_toys_and_calls_together(
    make_server: MakeServer, hello_ulaw: bytes
) -> None:
    server = make_server(echo_factory(), BRIDGE_MAX_CALLS=1)
    healthy = await open_call(server)
    talking = background(healthy_exchange(healthy, hello_ulaw))
    assert await refused_status(server, token=None) == 503
    assert is_busy(await post_webhook(server.http))
    await talking
    await healthy.close()


async def test_start_timeout_closes_1008_while_a_healthy_call_talks(
    make_server: MakeServer, hello_ulaw: bytes
) -> None:
    server = make_server(echo_factory(), BRIDGE_START_TIMEOUT_S=0.5, BRIDGE_MAX_TWILIO_CALLS=2)
    healthy = await open_call(server)
    talking = background(healthy_exchange(healthy, hello_ulaw))
    silent = await open_call(server, begin=False)
    assert await silent.wait_closed(3) == 1008
    # the silent stream's slot was given back: a new call fits beside the healthy one
    assert connects(await post_webhook(server.http))
    await talking
    await silent.close()
    await healthy.close()


# -- per-IP rate ---------------------------------------------------------------------------


async def test_a_flooding_ip_is_rate_limited_and_nobody_else(
    make_server: MakeServer, hello_ulaw: bytes
) -> None:
    server = make_server(
        echo_factory(),
        BRIDGE_TRUST_FORWARDED="true",
        BRIDGE_RATE_LIMIT_PER_S=0.1,
        BRIDGE_RATE_LIMIT_BURST=4,
    )
    healthy = await open_call(server, headers={"X-Forwarded-For": HEALTHY_IP})
    talking = background(healthy_exchange(healthy, hello_ulaw))
    flood = {"X-Forwarded-For": f"10.9.9.9, {FLOOD_IP}"}  # the proxy appended the last entry
    for _ in range(4):
        assert connects(await post_webhook(server.http, flood))
    assert is_busy(await post_webhook(server.http, flood))
    assert await stream_denied_status(server, flood) == 429
    toy_flood = {"X-Forwarded-For": FLOOD_IP}
    assert await refused_status(server, token=None, extra_headers=toy_flood) == 429
    # another address still gets through, on every route
    assert connects(await post_webhook(server.http, {"X-Forwarded-For": OTHER_IP}))
    other = await open_toy(
        server, token=None, extra_headers={"X-Forwarded-For": "192.168.1.20"}, idle_mic=True
    )
    await other.wait_responses(1, 5)
    await talking
    await other.close()
    await healthy.close()
    samples = await scrape(server.http)
    rejected = "bridge_rejected_connections_total"
    assert sample(samples, rejected, route="twiml", reason="rate_limited") == 1
    assert sample(samples, rejected, route="stream", reason="rate_limited") == 1
    assert sample(samples, rejected, route="esp32", reason="rate_limited") == 1


async def test_twilio_bursts_with_valid_signatures_are_never_rate_limited(
    make_server: MakeServer,
) -> None:
    """Twilio connects calls in bursts from a few shared addresses: 100 signed webhooks and
    100 signed stream upgrades within seconds pass a limit of 4; the unsigned and the badly
    signed are still limited (and the latter then refused as unauthenticated)."""
    server = make_server(
        echo_factory(),
        TWILIO_AUTH_TOKEN=TOKEN,
        BRIDGE_RATE_LIMIT_PER_S=0.1,
        BRIDGE_RATE_LIMIT_BURST=4,
    )
    calls = 100
    for _ in range(calls):
        twiml = await signed_webhook(server, new_sid("CA"))
        assert "<Connect>" in twiml
    headers = stream_headers(server)
    for _ in range(calls):
        async with connect(f"{server.ws}/stream", additional_headers=headers, open_timeout=5):
            pass
    bad = {"X-Twilio-Signature": "bm90LWEtc2lnbmF0dXJl"}
    statuses = [await stream_denied_status(server, bad) for _ in range(6)]
    assert statuses == [403] * 4 + [429] * 2
    for _ in range(4):  # the unsigned webhooks share the same exhausted bucket
        assert is_busy(await post_webhook(server.http, {}))
    samples = await scrape(server.http)
    assert sample(samples, REJECTED, route="stream", reason="rate_limited") == 2
    assert sample(samples, REJECTED, route="stream", reason="auth") == 4
    assert sample(samples, REJECTED, route="twiml", reason="rate_limited") == 4


async def test_forwarded_for_is_ignored_unless_trusted(make_server: MakeServer) -> None:
    server = make_server(echo_factory(), BRIDGE_RATE_LIMIT_PER_S=0.1, BRIDGE_RATE_LIMIT_BURST=2)
    for n in range(2):  # a client cannot escape its bucket by inventing addresses
        assert connects(await post_webhook(server.http, {"X-Forwarded-For": f"192.0.2.{n}"}))
    assert is_busy(await post_webhook(server.http, {"X-Forwarded-For": "192.0.2.77"}))


# -- the pure parts ------------------------------------------------------------------------


def test_token_bucket_refills_at_the_rate_up_to_the_burst() -> None:
    clock = FakeClock()
    buckets = TokenBuckets(2.0, 3, clock=clock)
    assert [buckets.take("a") for _ in range(4)] == [True, True, True, False]
    assert buckets.take("b")  # keys are independent
    clock.advance(0.5)  # one token back
    assert buckets.take("a") and not buckets.take("a")
    clock.advance(60.0)  # never more than the burst
    assert [buckets.take("a") for _ in range(4)] == [True, True, True, False]


def test_token_bucket_memory_is_bounded() -> None:
    buckets = TokenBuckets(1.0, 1, max_keys=500, clock=FakeClock())
    for n in range(50_000):
        buckets.take(f"10.0.{n >> 8}.{n & 255}")
        assert len(buckets) <= 500
    assert len(buckets) == 500


def test_token_bucket_off_admits_everything() -> None:
    buckets = TokenBuckets(0.0, 1)
    assert all(buckets.take("a") for _ in range(1000)) and len(buckets) == 0


@pytest.mark.parametrize(
    ("trust", "header", "expected"),
    [
        (True, "203.0.113.5", "203.0.113.5"),
        (True, "1.2.3.4, 203.0.113.5", "203.0.113.5"),  # the first entry is the client's word
        (True, "2001:db8::1", "2001:db8::1"),
        (True, "not-an-ip", "127.0.0.1"),
        (True, "", "127.0.0.1"),
        (False, "203.0.113.5", "127.0.0.1"),
    ],
)
def test_client_address(trust: bool, header: str, expected: str) -> None:
    address = ClientAddress(trust)
    assert address("127.0.0.1", Headers({"x-forwarded-for": header})) == expected
    assert address("127.0.0.1", Headers({})) == "127.0.0.1"
