"""BatchedWebSocketProtocol over real sockets: the fast-receive hook, frames cut at arbitrary
byte offsets, and the frames it leaves to websockets."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket

from bridge.server.config import uvicorn_options
from bridge.server.wsprotocol import BatchedWebSocketProtocol
from bridge.settings import Settings
from tests.bridge.server.rawclient import RawWebSocket
from tests.bridge.server.wire import chunked
from tests.support.serverthread import MakeServer, UvicornThread
from transports.fast_receive import ERROR_KEY, EXTENSION, FastReceive, fast_receive_of
from transports.twilio.emulator.model import FRAME_MS, ULAW_BYTES_PER_MS, TwilioModel

SILENCE = b"\xff"


# -- a small app that shows what reached it, and how --------------------------------------------


def _fast_handler(seen: list[str | bytes]) -> Any:
    def handle(message: str | bytes) -> dict[str, Any] | None:
        if message == "queue me":
            return {"type": "websocket.receive", "queued": True}
        if message == "boom":
            raise ValueError("boom")
        if message == "report":
            return {"type": "websocket.receive", "report": list(seen)}
        seen.append(message)
        return None

    return handle


async def probe_app(scope: Scope, receive: Receive, send: Send) -> None:
    """``/fast`` registers a fast handler and reports what it got; ``/echo`` echoes."""
    ws = WebSocket(scope, receive, send)
    await ws.accept()
    hook = fast_receive_of(ws)
    if scope["path"] == "/fast":
        assert hook is not None and isinstance(hook, FastReceive)
        hook.register(_fast_handler([]))
    while True:
        message = await ws.receive()
        if message["type"] == "websocket.disconnect":
            return
        if ERROR_KEY in message:
            await ws.send_text(f"error {message[ERROR_KEY]!r}")
        elif "queued" in message:
            await ws.send_text("queued")
        elif "report" in message:
            await ws.send_text(json.dumps([repr(m) for m in message["report"]]))
        elif message.get("text") is not None:
            await ws.send_text("echo " + message["text"])
        else:
            await ws.send_bytes(b"echo " + message["bytes"])


@pytest.fixture
def probe() -> Iterator[UvicornThread]:
    settings = Settings.from_env({}, dotenv_path=None)
    options = {**uvicorn_options(settings), "lifespan": "off"}
    assert options["ws"] is BatchedWebSocketProtocol
    server = UvicornThread(probe_app, **options).start()
    yield server
    server.stop()


async def test_scope_offers_the_protocol_as_the_fast_receive_hook() -> None:
    assert issubclass(BatchedWebSocketProtocol, FastReceive)
    assert EXTENSION == "bridge.fast_receive"


async def test_fast_handler_gets_text_and_binary_and_its_events_are_queued(
    probe: UvicornThread,
) -> None:
    async with await RawWebSocket.open(f"{probe.ws}/fast") as ws:
        await ws.write(ws.text_frame("hello") + ws.binary_frame(b"\x00\x01\xff"))
        await ws.write(ws.text_frame("queue me"))
        assert await ws.next_data() == "queued"
        await ws.write(ws.text_frame("boom"))
        assert await ws.next_data() == "error ValueError('boom')"
        await ws.write(ws.text_frame("report"))
        assert json.loads(str(await ws.next_data())) == ["'hello'", "b'\\x00\\x01\\xff'"]


async def test_without_a_handler_messages_take_the_ordinary_receive(probe: UvicornThread) -> None:
    async with await RawWebSocket.open(f"{probe.ws}/echo") as ws:
        await ws.write(ws.text_frame("plain") + ws.binary_frame(b"raw"))
        assert await ws.next_data() == "echo plain"
        assert await ws.next_data() == b"echo raw"


async def test_frames_after_a_control_frame_reach_the_app_through_the_library(
    probe: UvicornThread,
) -> None:
    async with await RawWebSocket.open(f"{probe.ws}/echo") as ws:
        await ws.write(ws.text_frame("a") + ws.ping_frame(b"are you there") + ws.text_frame("b"))
        # the pong is written by the protocol, the echoes by the app: their order is free
        got = {(f.opcode.name, bytes(f.data)) for f in [await ws.next_frame() for _ in range(3)]}
        assert got == {("TEXT", b"echo a"), ("PONG", b"are you there"), ("TEXT", b"echo b")}
        # the library now parses every frame, cut or not
        await ws.write_pieces(chunked(ws.text_frame("c" * 300), [1, 2, 3, 150]))
        assert await ws.next_data() == "echo " + "c" * 300


async def test_invalid_utf8_closes_1007(probe: UvicornThread) -> None:
    async with await RawWebSocket.open(f"{probe.ws}/echo") as ws:
        await ws.write(ws.text_frame("fine"))
        assert await ws.next_data() == "echo fine"
        ws.protocol.send_binary(b"\xc3\x28")
        bad = bytearray(b"".join(ws.protocol.data_to_send()))
        bad[0] = (bad[0] & 0xF0) | 0x1  # the same frame, as text
        await ws.write(bytes(bad))
        assert await ws.wait_close_code() == 1007


async def test_oversized_frame_closes_1009(probe: UvicornThread) -> None:
    limit = Settings.from_env({}, dotenv_path=None).max_message_bytes
    async with await RawWebSocket.open(f"{probe.ws}/echo") as ws:
        await ws.write(ws.binary_frame(bytes(limit + 1))[:20])  # the header says enough
        assert await ws.wait_close_code() == 1009


# -- a Twilio stream whose frames arrive cut at arbitrary byte offsets ---------------------------


async def test_twilio_stream_cut_at_arbitrary_offsets_is_heard_and_echoed(
    make_server: MakeServer, hello_ulaw: bytes
) -> None:
    server = make_server()
    model = TwilioModel(realtime_playback=False)
    frame_bytes = FRAME_MS * ULAW_BYTES_PER_MS
    audio = SILENCE * (300 * ULAW_BYTES_PER_MS) + hello_ulaw + SILENCE * (900 * ULAW_BYTES_PER_MS)
    rng = random.Random(20240611)
    async with await RawWebSocket.open(f"{server.ws}/stream") as ws:
        wire = ws.text_frame(json.dumps(model.connected()))
        wire += ws.text_frame(json.dumps(model.start()))
        for offset in range(0, len(audio), frame_bytes):
            wire += ws.text_frame(json.dumps(model.media(audio[offset : offset + frame_bytes])))
        cuts: list[int] = []
        while (cuts[-1] if cuts else 0) < len(wire):
            cuts.append((cuts[-1] if cuts else 0) + rng.choice([1, 2, 3, 7, 61, 150, 333, 700]))
        pieces = chunked(wire, cuts)
        assert len(pieces) > 100 and min(map(len, pieces)) == 1
        await ws.write_pieces(pieces, pause_s=0.001)

        while len(model.played) < 0.8 * len(hello_ulaw):
            frame = await ws.next_data(timeout_s=10)
            for echo in model.receive(frame, 0.0):
                await ws.write_pieces(chunked(ws.text_frame(json.dumps(echo)), [5, 40]))
        assert bytes(model.played) in audio

        stop = ws.text_frame(json.dumps(model.stop()))
        await ws.write_pieces(chunked(stop, list(range(len(stop)))), pause_s=0)
        assert await ws.wait_close_code(timeout_s=10) is not None
