"""A phone call and a toy reach the same agent at the same time, each hearing only itself."""

from __future__ import annotations

import asyncio

from pipeline.agents.echo import EchoAgent
from tests.fakes.agents import Factory
from tests.support.serverthread import MakeServer
from tests.support.toys import hello_16k, open_toy
from tests.support.twilio_calls import open_call, say_and_listen


async def test_phone_call_and_toy_share_one_agent_concurrently(
    make_server: MakeServer, hello_ulaw: bytes
) -> None:
    factory = Factory(lambda call: EchoAgent(call.native_in))
    server = make_server(factory)
    phone = await open_call(server)
    toy = await open_toy(server, token=None, idle_mic=True)
    await toy.wait_responses(1, 5)

    async def phone_turn() -> bytes:
        return await say_and_listen(phone, hello_ulaw, quiet_s=1.0)

    async def toy_turn() -> None:
        await toy.speak(hello_16k())
        await toy.wait_responses(2, 20)

    sent, _ = await asyncio.gather(phone_turn(), toy_turn())
    assert {agent.input_spec.rate_hz for agent in factory.agents} == {8000, 16000}
    heard = bytes(phone.played)
    assert len(heard) > 0.8 * len(hello_ulaw) and heard in sent
    reply = toy.responses[1]
    assert reply.ok and reply.decoded_ms >= 0.8 * len(hello_16k()) / 32
    assert toy.protocol_errors == []
    await phone.close()
    await toy.close()
