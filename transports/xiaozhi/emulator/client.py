"""A xiaozhi device over a real socket: the emulator behind the tests and ``bridge xiaozhi``.

It connects with the firmware's four headers, says hello and waits for ours, listens
(``listen start``), speaks Opus at 16 kHz in its frame duration, paced in real time like a
microphone, and plays what comes back: every reply's packets are decoded with real libopus
at the rate our hello announced, so a test compares what the device heard with what it said.
After a reply stops it listens again, as the firmware does in auto mode. With an MCP server
(``mcp_server.py``) it answers the server's requests, and its tools act on its state.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid

import numpy as np
import opuslib
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from transports.xiaozhi.emulator.mcp_server import DeviceMcp
from transports.xiaozhi.emulator.model import DeviceModel

MIC_RATE_HZ = 16000


class FakeXiaozhi:
    def __init__(
        self,
        url: str,
        token: str | None = None,
        *,
        device_id: str = "24:0a:c4:00:00:01",
        version: int = 1,
        frame_ms: int | None = 60,
        relisten: bool = True,
        mcp: DeviceMcp | None = None,
    ) -> None:
        self.url = url
        self.token = token
        self.device_id = device_id
        self.client_id = str(uuid.uuid4())
        self.model = DeviceModel(version=version, frame_ms=frame_ms, mcp=mcp)
        #: say ``listen start`` again after every ``tts stop`` (the firmware's auto mode)
        self.relisten = relisten
        self.played: list[bytearray] = []
        #: when each reply began (``tts start``): its speaker plays from then, in real time
        self.reply_started_s: list[float] = []
        self.close_code: int | None = None
        self._ws: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._decoder: opuslib.Decoder | None = None
        self._changed = asyncio.Event()
        self._reading = asyncio.Event()
        self._reading.set()

    @property
    def ws(self) -> ClientConnection:
        assert self._ws is not None, "not connected"
        return self._ws

    async def connect(self, hello: bool = True, timeout_s: float = 10.0) -> FakeXiaozhi:
        headers = self.model.headers(self.token, self.device_id, self.client_id, self.model.version)
        self._ws = await connect(self.url, additional_headers=headers, compression=None)
        self._reader = asyncio.get_running_loop().create_task(self._read(), name="xiaozhi-dev")
        if hello:
            await self.ws.send(self.model.hello())
            await self.wait(lambda: self.model.server_hello is not None, timeout_s)
        return self

    async def _read(self) -> None:
        try:
            async for message in self.ws:
                await self._reading.wait()
                if isinstance(message, str):
                    self._text(message)
                else:
                    packet = self.model.on_binary(message)
                    if packet is not None:
                        self._play(packet)
                self._changed.set()
        except ConnectionClosed:
            pass
        finally:
            self.close_code = self.ws.close_code or 1006
            self._changed.set()

    def _text(self, message: str) -> None:
        was_speaking = self.model.speaking
        for answer in self.model.on_text(message):
            self._send_soon(answer)
        if self.model.speaking and not was_speaking:
            self._decoder = opuslib.Decoder(self.rate_hz, 1)
            self.played.append(bytearray())
            self.reply_started_s.append(time.monotonic())
        elif (
            was_speaking
            and not self.model.speaking
            and self.relisten
            and self.model.mode != "manual"
        ):
            self._send_soon(self.model.listen_start(self.model.mode))

    def _play(self, packet: bytes) -> None:
        assert self._decoder is not None
        frame_ms = self._audio_param("frame_duration")
        # the firmware's decode buffer: a longer packet than announced fails to decode
        self.played[-1] += self._decoder.decode(packet, self.rate_hz * frame_ms // 1000)

    def _send_soon(self, text: str) -> None:
        task = asyncio.get_running_loop().create_task(self.ws.send(text), name="xiaozhi-send")
        task.add_done_callback(lambda t: t.exception() if not t.cancelled() else None)

    # -- what the device does ----------------------------------------------------------------

    def stop_reading(self) -> None:
        """Stop reading the socket (a hung firmware): TCP pushes back on the server."""
        self._reading.clear()

    async def send_text(self, text: str) -> None:
        await self.ws.send(text)

    async def listen(self, mode: str = "auto") -> None:
        await self.ws.send(self.model.listen_start(mode))

    async def type_text(self, text: str) -> None:
        """A typed user turn (``listen detect`` with text that is no wake word)."""
        await self.ws.send(self.model.typed(text))

    async def speak(self, pcm16_16k: bytes, silence_ms: int = 1200, speed: float = 1.0) -> None:
        """Opus frames of ``pcm16_16k`` then of silence, one per frame, paced like a mic."""
        frame_ms = self.model.frame_ms or 60
        frame_bytes = MIC_RATE_HZ * frame_ms // 1000 * 2
        pcm = pcm16_16k + b"\x00" * (MIC_RATE_HZ * silence_ms // 1000 * 2)
        pcm += b"\x00" * (-len(pcm) % frame_bytes)
        encoder = opuslib.Encoder(MIC_RATE_HZ, 1, opuslib.APPLICATION_VOIP)
        start_s = time.monotonic()
        for i in range(0, len(pcm), frame_bytes):
            packet = encoder.encode(pcm[i : i + frame_bytes], frame_bytes // 2)
            await self.ws.send(self.model.frame(packet, int((time.monotonic() - start_s) * 1000)))
            due_s = start_s + (i // frame_bytes + 1) * frame_ms / 1000 / speed
            await asyncio.sleep(max(0.0, due_s - time.monotonic()))

    # -- what the device heard -----------------------------------------------------------------

    def _audio_param(self, name: str) -> int:
        """A number our hello announced of the downlink; 0 before the hello (or without it)."""
        params = (self.model.server_hello or {}).get("audio_params")
        value = params.get(name) if isinstance(params, dict) else None
        return value if isinstance(value, int) else 0

    @property
    def rate_hz(self) -> int:
        """The downlink's sample rate as our hello announced it; 0 before the hello."""
        return self._audio_param("sample_rate")

    def played_ms(self, reply: int = -1) -> float:
        return len(self.played[reply]) / 2 / self.rate_hz * 1000 if self.played else 0.0

    def heard_ms(self, reply: int = -1) -> float:
        """What its speaker has played of ``reply`` by now: received audio plays in real
        time from ``tts start`` (what arrived ahead of that waits in its buffer)."""
        if not self.reply_started_s:
            return 0.0
        elapsed_ms = (time.monotonic() - self.reply_started_s[reply]) * 1000
        return min(self.played_ms(reply), elapsed_ms)

    def played_pcm(self, reply: int = -1) -> np.ndarray:
        return np.frombuffer(bytes(self.played[reply]), dtype=np.int16)

    def stopped_replies(self) -> int:
        return sum(1 for r in self.model.replies if r.stopped)

    async def wait(self, condition: object, timeout_s: float = 20.0) -> None:
        assert callable(condition)
        async with asyncio.timeout(timeout_s):
            while not condition():
                if self.close_code is not None and not condition():
                    raise ConnectionError(f"closed with {self.close_code}")
                self._changed.clear()
                await self._changed.wait()

    async def wait_replies(self, count: int, timeout_s: float = 20.0) -> None:
        await self.wait(lambda: self.stopped_replies() >= count, timeout_s)

    async def wait_closed(self, timeout_s: float = 10.0) -> int | None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                while self.close_code is None:
                    self._changed.clear()
                    await self._changed.wait()
        return self.close_code

    async def close(self) -> None:
        self._reading.set()  # a device that stopped reading must still see the close frame
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
