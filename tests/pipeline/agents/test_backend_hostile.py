"""A hostile or broken backend never crashes a call: bad frames are logged and ignored, a frame
beyond the size bound closes that socket (and the link reconnects)."""

from __future__ import annotations

import asyncio
import base64
import json

import pytest
from websockets.asyncio.server import ServerConnection, serve

from bridge.agents import build_agent_factory
from bridge.settings import Settings
from pipeline.agents.backend.agent import BackendAgent
from tests.fakes.agents import Factory
from tests.fakes.backend_server import tone_ulaw
from tests.support.realtime import PhoneLine, wait_for
from tests.support.serverthread import MakeServer
from tests.support.twilio_calls import open_call


async def test_bad_frames_are_ignored_and_a_huge_one_reconnects(
    make_server: MakeServer, caplog: pytest.LogCaptureFixture
) -> None:
    reply = tone_ulaw(400)
    connections: list[list[dict[str, object]]] = []

    async def hostile(ws: ServerConnection) -> None:
        got: list[dict[str, object]] = []
        connections.append(got)
        sid = ""
        async for raw in ws:
            message = json.loads(raw)
            got.append(message)
            if message["event"] != "start":
                continue
            sid = str(message["streamSid"])
            if len(connections) > 1:
                continue
            await ws.send("{not json")
            await ws.send(b"\x00\x01 binary")
            await ws.send(json.dumps({"event": "hangup", "streamSid": sid}))
            await ws.send(json.dumps({"event": "media", "media": {"payload": "AAAA"}}))
            await ws.send(json.dumps({"event": "media", "streamSid": sid, "media": {}}))
            payload = base64.b64encode(reply).decode()
            await ws.send(
                json.dumps({"event": "media", "streamSid": sid, "media": {"payload": payload}})
            )
            await ws.send(json.dumps({"event": "mark", "streamSid": sid, "mark": {"name": "a"}}))
            await asyncio.sleep(1.5)
            await ws.send("x" * (5 * 1024 * 1024))  # beyond the bound: that socket closes

    async with serve(hostile, "127.0.0.1", 0, max_size=None) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        env = {"BRIDGE_AGENT": "backend", "BRIDGE_BACKEND_URL": f"ws://127.0.0.1:{port}/s"}
        settings = Settings.from_env(env, dotenv_path=None)
        factory = Factory(build_agent_factory(settings).create)
        bridge = make_server(factory, **env)
        peer = await open_call(bridge)
        line = PhoneLine(peer)
        await wait_for(lambda: len(peer.played) >= len(reply), what="the valid audio")
        await wait_for(lambda: len(connections) == 2, what="the reconnection")
        await wait_for(
            lambda: any(m["event"] == "mark" for m in connections[0]), what="the mark echo"
        )
        await line.stop()
        await peer.close()

    assert bytes(peer.played) == reply  # nothing else was played, no apology for a bad frame
    (agent,) = factory.agents
    assert isinstance(agent, BackendAgent)
    assert agent.rejected == 5 and agent.connections == 2
    assert sum("ignoring a backend message" in r.getMessage() for r in caplog.records) == 5
