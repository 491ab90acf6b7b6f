"""One driver per transport: its emulated far end, behind the interface the conformance suite
speaks. A new transport joins the suite by adding a driver here (and to :data:`DRIVERS`).

Each driver knows its wire's own ways: how a caller speaks (Twilio streams μ-law; a toy's
microphone streams only while it listens), how it interrupts (a phone caller talks over the
reply; the half-duplex toy sends ``INTERRUPT``), what its failure signal is (a phone hears
the packaged apology; a toy gets ``RESPONSE.ERROR``) and what garbage trips its limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from typing import Any, Protocol

from pipeline.audio import PCM16_16K, ULAW_8K, AudioSpec, Converter
from tests.support.serverthread import ServerThread
from tests.support.talk_page import FakePage
from tests.support.toys import open_toy
from tests.support.twilio_calls import open_call, say
from tests.support.xiaozhi import open_device
from transports.browser.protocol import MAX_CONSECUTIVE_INVALID as PAGE_MAX_INVALID
from transports.esp32.emulator.client import FakeToy
from transports.twilio.emulator.client import FakeTwilio
from transports.twilio.protocol import MAX_CONSECUTIVE_INVALID as TWILIO_MAX_INVALID
from transports.xiaozhi.emulator.client import FakeXiaozhi

ULAW_BYTES_PER_MS = 8
#: a reply is over once this much quiet follows it
QUIET_S = 0.8


class Peer(Protocol):
    """One emulated far end, connected to the bridge."""

    async def greeting_ms(self, timeout_s: float) -> float:
        """Wait for the greeting to finish playing; how much of it was heard."""
        ...

    async def say(self, pcm16_16k: bytes) -> None:
        """Speak, then stay quiet long enough for the turn to end."""

    async def reply_ms(self, timeout_s: float) -> float:
        """Wait for the next reply to finish playing; how much of it was heard."""
        ...

    async def reply_started(self, timeout_s: float) -> None:
        """Wait until the next reply can be heard."""

    async def barge_in(self, pcm16_16k: bytes) -> float:
        """Interrupt the reply now (this wire's way); how much of it the far end played."""
        ...

    def failure_signalled(self) -> bool:
        """The transport's failure signal reached the far end."""
        ...

    async def send_garbage(self) -> None:
        """Enough unusable messages to trip the protocol's limit."""

    def stop_reading(self) -> None:
        """Stop reading the socket, as a stuck device or network does."""

    async def closed(self, timeout_s: float) -> int | None:
        """Wait for the bridge to close the connection; its close code."""
        ...

    async def close(self) -> None: ...


class Driver(Protocol):
    name: str
    #: the close code of a connection closed for its garbage
    garbage_close_code: int

    async def connect(self, server: ServerThread) -> Peer: ...


def _convert(pcm16_16k: bytes, spec: AudioSpec) -> bytes:
    converter = Converter(PCM16_16K, spec)
    return converter.process(pcm16_16k) + converter.flush()


class TwilioPeer:
    def __init__(self, peer: FakeTwilio) -> None:
        self.peer = peer
        self._heard_at_reply = 0
        self._line: asyncio.Task[None] | None = None

    def _heard_ms(self) -> float:
        return len(self.peer.played) / ULAW_BYTES_PER_MS

    def _keep_line_alive(self) -> None:
        """Twilio streams media all call long: silence between the caller's words."""
        self._line = asyncio.get_running_loop().create_task(
            self._silence(), name="conformance-twilio-line"
        )

    async def _silence(self) -> None:
        with contextlib.suppress(Exception):
            await self.peer.silence(60_000)

    async def _quiet_line(self) -> None:
        line, self._line = self._line, None
        if line is not None:
            line.cancel()
            await asyncio.gather(line, return_exceptions=True)

    async def greeting_ms(self, timeout_s: float) -> float:
        self._keep_line_alive()
        await self.peer.wait_for_media(1, timeout_s)
        await self.peer.wait_quiet(QUIET_S, timeout_s)
        return self._heard_ms()

    async def say(self, pcm16_16k: bytes) -> None:
        await self._quiet_line()
        self._heard_at_reply = len(self.peer.played)
        await say(self.peer, _convert(pcm16_16k, ULAW_8K))
        self._keep_line_alive()

    async def reply_started(self, timeout_s: float) -> None:
        async with asyncio.timeout(timeout_s):
            while len(self.peer.played) <= self._heard_at_reply:  # noqa: ASYNC110
                await asyncio.sleep(0.01)

    async def reply_ms(self, timeout_s: float) -> float:
        await self.reply_started(timeout_s)
        await self.peer.wait_quiet(QUIET_S, timeout_s)
        return (len(self.peer.played) - self._heard_at_reply) / ULAW_BYTES_PER_MS

    async def barge_in(self, pcm16_16k: bytes) -> float:
        """Talk over the reply; what was heard is what had played when the ``clear`` came."""
        clears = len(self.peer.timeline.clears)
        reply_began = self._heard_at_reply
        talking = asyncio.get_running_loop().create_task(self.say(pcm16_16k), name="barge-in")
        try:
            async with asyncio.timeout(10):
                while len(self.peer.timeline.clears) == clears:  # noqa: ASYNC110
                    await asyncio.sleep(0.005)
            heard_ms = (len(self.peer.played) - reply_began) / ULAW_BYTES_PER_MS
        finally:
            await talking
        return heard_ms

    def failure_signalled(self) -> bool:
        return len(self.peer.played) > self._heard_at_reply  # the apology was heard

    async def send_garbage(self) -> None:
        await self._quiet_line()
        for _ in range(TWILIO_MAX_INVALID):
            await self.peer.send_json({"not": "an event"})

    def stop_reading(self) -> None:
        self.peer.stop_reading()

    async def closed(self, timeout_s: float) -> int | None:
        return await self.peer.wait_closed(timeout_s)

    async def close(self) -> None:
        await self._quiet_line()
        await self.peer.close()


class ToyPeer:
    def __init__(self, toy: FakeToy) -> None:
        self.toy = toy
        self._replies = 0

    def _ended(self) -> int:
        return sum(1 for r in self.toy.responses if r.ended_at is not None)

    async def greeting_ms(self, timeout_s: float) -> float:
        (greeting,) = await self.toy.wait_responses(1, timeout_s)
        return greeting.decoded_ms

    async def say(self, pcm16_16k: bytes) -> None:
        # the reply is the next response to end (a greeting slot, even a bare one, came first)
        await self.toy.wait_responses(1)
        self._replies = self._ended() + 1
        await self.toy.speak(pcm16_16k)

    async def reply_started(self, timeout_s: float) -> None:
        await self.toy.wait_state("SPEAKING", timeout_s)
        async with asyncio.timeout(timeout_s):
            while self.toy.played_ms() <= 0:  # noqa: ASYNC110
                await asyncio.sleep(0.01)

    async def reply_ms(self, timeout_s: float) -> float:
        responses = await self.toy.wait_responses(self._replies, timeout_s)
        return responses[-1].decoded_ms

    async def barge_in(self, pcm16_16k: bytes) -> float:
        played_ms = self.toy.played_ms()
        await self.toy.send_instruction("INTERRUPT", audio_end_ms=int(played_ms))
        return played_ms

    def failure_signalled(self) -> bool:
        ended = [r for r in self.toy.responses if r.ended_at is not None]
        return bool(ended) and ended[-1].ok is False

    async def send_garbage(self) -> None:
        for _ in range(101):
            await self.toy.send_text(json.dumps({"type": "nonsense"}))

    def stop_reading(self) -> None:
        self.toy.stop_reading()

    async def closed(self, timeout_s: float) -> int | None:
        return await self.toy.wait_closed(timeout_s)

    async def close(self) -> None:
        await self.toy.close()


class TwilioDriver:
    name = "twilio"
    garbage_close_code = 1008

    async def connect(self, server: ServerThread) -> Peer:
        return TwilioPeer(await open_call(server))


class ToyDriver:
    name = "esp32"
    garbage_close_code = 1008

    def __init__(self) -> None:
        self._devices = itertools.count(1)

    async def connect(self, server: ServerThread) -> Peer:
        mac = f"24:0A:C4:00:00:{next(self._devices) % 256:02X}"  # one device per connection
        return ToyPeer(await open_toy(server, token=None, mac=mac, idle_mic=True))


DRIVERS: list[Driver] = [TwilioDriver(), ToyDriver()]


class XiaozhiPeer:
    """A xiaozhi device: half duplex, it says ``abort`` to interrupt; a failed turn is an
    ``alert``."""

    def __init__(self, device: FakeXiaozhi) -> None:
        self.device = device
        self._replies = 0
        self._alerts = 0

    async def greeting_ms(self, timeout_s: float) -> float:
        await self.device.wait_replies(1, timeout_s)
        return self.device.played_ms(0)

    async def say(self, pcm16_16k: bytes) -> None:
        self._replies = self.device.stopped_replies() + 1
        self._alerts = len(self.device.model.alerts)
        await self.device.speak(pcm16_16k)

    async def reply_started(self, timeout_s: float) -> None:
        device = self.device
        await device.wait(
            lambda: len(device.played) >= self._replies and device.played_ms() > 0, timeout_s
        )

    async def reply_ms(self, timeout_s: float) -> float:
        """The reply's length; a failed turn has none (the device gets an ``alert``)."""
        device = self.device
        await device.wait(
            lambda: (
                device.stopped_replies() >= self._replies or len(device.model.alerts) > self._alerts
            ),
            timeout_s,
        )
        return device.played_ms() if device.stopped_replies() >= self._replies else 0.0

    async def barge_in(self, pcm16_16k: bytes) -> float:
        """What its speaker had played when it aborted."""
        heard_ms = self.device.heard_ms()
        await self.device.send_text(self.device.model.abort())
        return heard_ms

    def failure_signalled(self) -> bool:
        return bool(self.device.model.alerts)

    async def send_garbage(self) -> None:
        for _ in range(51):
            await self.device.send_text("[]")

    def stop_reading(self) -> None:
        self.device.stop_reading()

    async def closed(self, timeout_s: float) -> int | None:
        return await self.device.wait_closed(timeout_s)

    async def close(self) -> None:
        await self.device.close()


class XiaozhiDriver:
    name = "xiaozhi"
    garbage_close_code = 1008

    def __init__(self) -> None:
        self._devices = itertools.count(1)

    async def connect(self, server: ServerThread) -> Peer:
        mac = f"24:0a:c4:00:01:{next(self._devices) % 256:02x}"  # one device per connection
        return XiaozhiPeer(await open_device(server, device_id=mac))


DRIVERS.append(XiaozhiDriver())


PCM16_BYTES_PER_MS = 32


class BrowserPeer:
    """A talk page: its replies are turns the bridge announces (``turn`` … ``turn_end``), and
    it barges in as a phone caller does, by talking over the reply."""

    def __init__(self, page: FakePage) -> None:
        self.page = page
        self._reply_after = 0  # the reply is the first turn after this one

    def _turns(self) -> list[int]:
        return [int(m["turn"]) for m in self.page.of_type("turn")]

    def _ended(self, turn: int) -> dict[str, Any] | None:
        ends = [m for m in self.page.of_type("turn_end") if m["turn"] == turn]
        return ends[0] if ends else None

    def _reply(self) -> int | None:
        later = [t for t in self._turns() if t > self._reply_after]
        return later[0] if later else None

    async def _played_out(self, turn: int, timeout_s: float) -> float:
        page = self.page
        await page.wait_for(
            lambda: self._ended(turn) is not None and not page.playing, timeout_s, f"turn {turn}"
        )
        return len(page.played[turn]) / PCM16_BYTES_PER_MS

    async def greeting_ms(self, timeout_s: float) -> float:
        await self.page.wait_for(lambda: bool(self._turns()), timeout_s, "the greeting")
        return await self._played_out(self._turns()[0], timeout_s)

    async def say(self, pcm16_16k: bytes) -> None:
        self._reply_after = max(self._turns(), default=0)
        await self.page.say(pcm16_16k)

    async def reply_started(self, timeout_s: float) -> None:
        page = self.page
        await page.wait_for(
            lambda: (turn := self._reply()) is not None and len(page.played[turn]) > 0,
            timeout_s,
            "the reply",
        )

    async def reply_ms(self, timeout_s: float) -> float:
        await self.page.wait_for(lambda: self._reply() is not None, timeout_s, "the reply")
        reply = self._reply()
        assert reply is not None
        return await self._played_out(reply, timeout_s)

    async def barge_in(self, pcm16_16k: bytes) -> float:
        """Talk over the reply; what was heard is what had played when the ``clear`` came."""
        page, reply = self.page, self._reply()
        assert reply is not None
        clears = len(page.clears)
        talking = asyncio.get_running_loop().create_task(page.say(pcm16_16k), name="barge-in")
        try:
            await page.wait_for(lambda: len(page.clears) > clears, 10, "the clear")
            heard_ms = len(page.played[reply]) / PCM16_BYTES_PER_MS
        finally:
            await talking
        return heard_ms

    def failure_signalled(self) -> bool:
        reply = self._reply()  # the page, like a phone, hears the packaged apology
        return reply is not None and len(self.page.played[reply]) > 0

    async def send_garbage(self) -> None:
        for _ in range(PAGE_MAX_INVALID):
            await self.page.send_json({"type": "nonsense"})

    def stop_reading(self) -> None:
        self.page.stop_reading()

    async def closed(self, timeout_s: float) -> int | None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await self.page.closed.wait()
        return self.page.close_code

    async def close(self) -> None:
        await self.page.close()


class BrowserDriver:
    name = "browser"
    garbage_close_code = 1008

    async def connect(self, server: ServerThread) -> Peer:
        return BrowserPeer(await FakePage(server).open())


DRIVERS.append(BrowserDriver())
