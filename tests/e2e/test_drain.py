"""Graceful drain: the real ``bridge serve`` process, a live call, and a SIGTERM mid-reply."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bridge.call_records.store import open_store
from bridge.call_records.url import parse_records_url
from tests.fakes.agents import FAREWELL_MS, Factory, ToneAgent
from tests.support.ops import is_busy, post_webhook
from tests.support.serveprocess import ServeProcess
from tests.support.serverthread import MakeServer, ServerThread
from tests.support.toys import open_toy, refused_status
from tests.support.twilio_calls import background, open_call, say
from transports.twilio.emulator.client import FakeTwilio

DRAIN_TIMEOUT_S = 1.5
#: what the process may take beyond the drain deadline: the reply's end, the final mark, exit
EXIT_SLACK_S = 10.0


@pytest.fixture
def serve_process(tmp_path: Path) -> Iterator[ServeProcess]:
    process = ServeProcess(tmp_path, BRIDGE_DRAIN_TIMEOUT_S=str(DRAIN_TIMEOUT_S))
    try:
        yield process
    finally:
        process.stop()


async def test_sigterm_lets_the_reply_finish_refuses_new_calls_and_exits_0(
    serve_process: ServeProcess, hello_ulaw: bytes
) -> None:
    bridge = serve_process
    await bridge.wait_ready()
    peer = FakeTwilio(f"{bridge.ws}/stream")
    await peer.connect()
    await peer.begin()
    await say(peer, hello_ulaw, tail_ms=700)
    talker = background(peer.silence(30_000))  # Twilio keeps sending media while listening
    await peer.wait_for_media(1, timeout_s=10)
    await asyncio.sleep(0.3)  # the echo is playing: the drain deadline falls mid-reply

    term_at = time.monotonic()
    bridge.proc.send_signal(signal.SIGTERM)
    async with httpx.AsyncClient() as client:
        for _ in range(50):
            healthz = await client.get(f"{bridge.http}/healthz")
            if healthz.json()["draining"]:
                break
            await asyncio.sleep(0.05)
        assert healthz.status_code == 503
        assert healthz.json()["draining"] is True and healthz.json()["ok"] is False
        assert healthz.json()["active_calls"]["twilio"] == 1
        health = await client.get(f"{bridge.http}/health")
        assert health.status_code == 200 and health.text == "OK"  # alive while it serves
    assert is_busy(await post_webhook(bridge.http))
    newcomer = await open_call(_as_server(bridge), begin=False)
    assert await newcomer.wait_closed(5) == 1013
    await newcomer.close()
    assert await refused_status(_as_server(bridge), token=None) == 503

    code = await peer.wait_closed(DRAIN_TIMEOUT_S + EXIT_SLACK_S)
    closed_at = time.monotonic()
    talker.cancel()
    await peer.close()
    assert code == 1001  # going away: the shutdown close the wire specs ask for
    assert closed_at - term_at >= DRAIN_TIMEOUT_S
    # the whole echo was heard, never cut or cleared, and every mark came back before the close
    assert len(peer.played) >= 0.8 * len(hello_ulaw)
    assert peer.timeline.clears == []
    assert len(peer.timeline.played_marks) == len(peer.timeline.media_times)
    assert peer.timeline.media_times[-1] < closed_at
    assert peer.timeline.media_times[-1] > term_at + DRAIN_TIMEOUT_S  # still playing at deadline

    exit_code = await asyncio.to_thread(bridge.proc.wait, DRAIN_TIMEOUT_S + EXIT_SLACK_S)
    assert exit_code == 0
    assert time.monotonic() - term_at < DRAIN_TIMEOUT_S + EXIT_SLACK_S
    messages = [str(entry["msg"]) for entry in bridge.log_entries()]
    assert "drained" in messages
    # start-up froze the long-lived heap, so full collections stay short (bridge/ops/heap.py)
    assert any(m.startswith("start-up heap settled") for m in messages)
    assert any(m.startswith("call ended reason=server shutdown") for m in messages)
    # the call record was flushed before exit: complete, with its turn and end reason
    target = parse_records_url(f"sqlite:///{bridge.cwd / 'data' / 'calls.db'}")
    assert target is not None
    store = open_store(target, create=False)
    try:
        found = store.call(peer.call_sid)
    finally:
        store.close()
    assert found is not None
    summary, turns = found.summary, found.turns
    assert summary.call.end_reason == "server shutdown" and summary.call.ended_at_s is not None
    assert [t.user_speech_ms is not None for t in turns].count(True) == 1
    assert all(t.latency_ms is not None for t in turns if t.user_speech_ms is not None)


async def test_sigterm_without_calls_exits_at_once(serve_process: ServeProcess) -> None:
    await serve_process.wait_ready()
    term_at = time.monotonic()
    serve_process.proc.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(serve_process.proc.wait, 10) == 0
    assert time.monotonic() - term_at < DRAIN_TIMEOUT_S  # nothing to wait for


class _Server:
    """Just enough of :class:`ServerThread` for the shared helpers (their ``ws`` URL)."""

    def __init__(self, process: ServeProcess) -> None:
        self.ws = process.ws


def _as_server(process: ServeProcess) -> ServerThread:
    return _Server(process)  # type: ignore[return-value]


async def test_drain_deadline_gives_phones_a_farewell_and_lets_toys_reconnect(
    make_server: MakeServer,
) -> None:
    """In process, both transports: a phone call hears the agent's farewell before 1001; a toy
    is closed with 1001 but no SESSION.END, which would put the device to sleep."""
    server = make_server(Factory(lambda call: ToneAgent(call)))
    phone = await open_call(server)
    talker = background(phone.silence(20_000))
    toy = await open_toy(server, token=None, idle_mic=True)
    await toy.wait_responses(1, 5)
    drainer = server.app.state.bridge.drainer
    assert server.loop is not None
    drained = asyncio.run_coroutine_threadsafe(drainer.drain(0.5), server.loop)
    assert await phone.wait_closed(10) == 1001
    talker.cancel()
    assert len(phone.played) == FAREWELL_MS * 8  # the whole farewell, then the close
    assert await toy.wait_closed(10) == 1001
    assert not toy.session_ended
    await asyncio.wrap_future(drained)
    await phone.close()
    await toy.close()
