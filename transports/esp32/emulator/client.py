"""An emulated ESP32 toy running the Elato firmware, for tests, benchmarks and ``bridge toy``.

:class:`FakeToy` is the socket client around the pure device model
(:class:`~transports.esp32.emulator.model.ToyModel`, which documents the states and
everything the emulator checks). This module only does what needs I/O:

* the handshake carries the device's headers (``Authorization: Bearer``, ``X-Device-Mac``,
  ``X-Wifi-Rssi``, ``Sec-WebSocket-Protocol: arduino`` offered only, ``Origin: file://``,
  ``User-Agent: arduino-WebSocket-Client``), no compression and no client pings, over a TCP
  socket with the device's small receive window (``connection.py``);
* the socket is not read while the model says the device would not read (the 50 ms after
  CREATED, a full ring), so TCP back-pressure paces the sender;
* a clock task fires the model's timers (the listen hold, SPEAKING after CREATED) on time;
* the microphone streams raw PCM (16 kHz, s16le, mono) only while ``LISTENING`` and stops the
  moment the state changes, exactly as the firmware's mic task.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from types import TracebackType

from websockets.exceptions import ConnectionClosed

from transports.esp32.emulator.auth import auth_problems
from transports.esp32.emulator.connection import (
    DeviceConnection,
    close_draining,
    device_handshake,
    open_device_socket,
)
from transports.esp32.emulator.device import (
    CREATED_TO_SPEAKING_MS,
    DEFAULT_MAC,
    DEFAULT_RSSI_DBM,
    DEVICE_DECODE_RATE_HZ,
    DEVICE_HOLD_MS,
    DEVICE_MIC_CHUNK_BYTES,
    DEVICE_RING_BYTES,
    DEVICE_SUBPROTOCOL,
    DEVICE_TCP_WINDOW_BYTES,
    MIC_BYTES_PER_MS,
    ToyResponse,
    ToyState,
)
from transports.esp32.emulator.mic import Mic
from transports.esp32.emulator.model import ToyAction, ToyModel
from transports.esp32.emulator.view import ToyRecordView

__all__ = ["MIC_BYTES_PER_MS", "FakeToy", "ToyClosed", "ToyResponse", "ToyState", "auth_problems"]

DEFAULT_WAIT_S = 20.0
IDLE_MIC_TASK = "fake-toy-idle-mic"


class ToyClosed(ConnectionError):
    """The connection closed while a caller was waiting for something that now cannot come."""


class FakeToy(ToyRecordView):
    """An ESP32 toy with the Elato firmware, seen from the server (see the module doc)."""

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        mac: str | None = DEFAULT_MAC,
        rssi: int | None = DEFAULT_RSSI_DBM,
        extra_headers: dict[str, str] | None = None,
        subprotocol: str | None = DEVICE_SUBPROTOCOL,
        decode_rate_hz: int = DEVICE_DECODE_RATE_HZ,
        realtime_playback: bool = True,
        ring_bytes: int = DEVICE_RING_BYTES,
        mic_chunk_bytes: int = DEVICE_MIC_CHUNK_BYTES,
        hold_ms: int = DEVICE_HOLD_MS,
        speaking_delay_ms: int = CREATED_TO_SPEAKING_MS,
        idle_mic: bool = False,
        tcp_rcvbuf_bytes: int | None = DEVICE_TCP_WINDOW_BYTES,
    ) -> None:
        self.model = ToyModel(
            decode_rate_hz=decode_rate_hz,
            realtime_playback=realtime_playback,
            ring_bytes=ring_bytes,
            hold_ms=hold_ms,
            speaking_delay_ms=speaking_delay_ms,
        )
        self._mic = Mic(
            mic_chunk_bytes,
            listening=self._mic_may_send,
            send=self._mic_send,
            changed=self._changed,
        )
        self._mic.idle = idle_mic
        self.url = url
        self.token = token
        self.mac = mac
        self.rssi = rssi
        self.extra_headers = dict(extra_headers or {})
        self.offered_subprotocol = subprotocol
        self.decode_rate_hz = decode_rate_hz
        self.realtime_playback = realtime_playback
        self.ring_bytes = ring_bytes
        self.mic_chunk_bytes = mic_chunk_bytes
        self.hold_ms = hold_ms
        self.speaking_delay_ms = speaking_delay_ms
        self.tcp_rcvbuf_bytes = tcp_rcvbuf_bytes

        self.close_code: int | None = None
        #: the subprotocol the server selected (None: it did not echo ``arduino``; that works)
        self.subprotocol: str | None = None

        self._ws: DeviceConnection | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._change = asyncio.Event()
        self._closed = asyncio.Event()
        self._fragments_seen = 0
        self._transitions_seen = 0
        #: cleared by :meth:`stop_reading`: a device whose firmware stopped reading
        self._reading = asyncio.Event()
        self._reading.set()

    # -- connection ---------------------------------------------------------------------------

    def handshake_headers(self) -> dict[str, str]:
        """The extra request headers the firmware sends (Origin and User-Agent go separately)."""
        headers: dict[str, str] = {}
        if self.token is not None:
            headers["Authorization"] = f"Bearer {self.token}"
        if self.mac is not None:
            headers["X-Device-Mac"] = self.mac
        if self.rssi is not None:
            headers["X-Wifi-Rssi"] = str(self.rssi)
        headers.update(self.extra_headers)
        return headers

    async def connect(self) -> FakeToy:
        """Open the WebSocket like the device: its headers, no compression, no pings."""
        if self._ws is not None:
            raise RuntimeError("FakeToy.connect() called twice")
        sock = await open_device_socket(self.url, self.tcp_rcvbuf_bytes)
        self._ws = await device_handshake(
            self.url, sock, subprotocol=self.offered_subprotocol, headers=self.handshake_headers()
        )
        self.subprotocol = self._ws.subprotocol
        self._apply(self.model.connected)
        self._tasks.append(asyncio.create_task(self._read_loop(), name="fake-toy-reader"))
        self._tasks.append(asyncio.create_task(self._clock_loop(), name="fake-toy-clock"))
        if self._mic.idle:
            self._start_idle_mic()
        return self

    async def close(self) -> None:
        """Close like the user's sleep gesture; cancel every task this toy started."""
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._ws is not None:
            await close_draining(self._ws)
        self._on_disconnect()

    async def __aenter__(self) -> FakeToy:
        return await self.connect()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def is_closed(self) -> bool:
        return self._closed.is_set()

    def _on_disconnect(self) -> None:
        if self._ws is not None and self.close_code is None:
            self.close_code = self._ws.close_code
        self._apply(self.model.disconnected)
        self._closed.set()
        self._notify()

    # -- driving the model ----------------------------------------------------------------------

    def _apply(self, step: Callable[[float], None]) -> None:
        """Run one model step at the current time, then react to what changed."""
        step(time.monotonic())
        history = self.model.state_history
        entered = [state for _, state in history[self._transitions_seen :]]
        self._transitions_seen = len(history)
        if ToyState.LISTENING in entered:
            self._mic.restart_schedule()
        self._notify()

    def _sync(self) -> None:
        """Fire any firmware timer already due, so the mic never acts on a stale state."""
        due_s = self.model.due_s()
        if due_s is not None and due_s <= time.monotonic():
            self._apply(self.model.advance)

    async def _clock_loop(self) -> None:
        """The firmware's timers: sleep until the model's next one is due, then fire it."""
        while True:
            change = self._change
            due_s = self.model.due_s()
            if due_s is None:
                await change.wait()
                continue
            delay_s = due_s - time.monotonic()
            if delay_s > 0:
                try:
                    async with asyncio.timeout(delay_s):
                        await change.wait()
                except TimeoutError:
                    pass
                continue
            self._apply(self.model.advance)

    async def _read_loop(self) -> None:
        ws = self._ws
        assert ws is not None
        try:
            while True:
                await self._wait_until_readable()
                message = await ws.recv()
                if ws.fragmented_messages > self._fragments_seen:
                    self._fragments_seen = ws.fragmented_messages
                    self.model.fragment_lost()
                if isinstance(message, str):
                    self._on_text(message)
                else:
                    self._on_binary(bytes(message))
        except ConnectionClosed:
            self._on_disconnect()
        except Exception as exc:  # an emulator bug must show up in the results, not hang them
            self.model.note_error(f"emulator reader failed: {exc!r}")
            self._on_disconnect()

    def stop_reading(self) -> None:
        """Stop reading the socket (a hung firmware): TCP pushes back on the server."""
        self._reading.clear()

    def resume_reading(self) -> None:
        self._reading.set()

    async def _wait_until_readable(self) -> None:
        """The device does not read during the 50 ms after CREATED or while its ring is full."""
        await self._reading.wait()
        while (read_at_s := self.model.read_at_s()) is not None:
            delay_s = read_at_s - time.monotonic()
            if delay_s <= 0:
                return
            await asyncio.sleep(delay_s)

    def _on_binary(self, packet: bytes) -> None:
        self._apply(lambda now_s: self.model.receive_binary(packet, now_s))

    def _on_text(self, text: str) -> None:
        actions: list[ToyAction] = []
        self._apply(lambda now_s: actions.extend(self.model.receive_text(text, now_s)))
        if ToyAction.CLOSE_SOCKET in actions and self._ws is not None:
            # SLEEP: hang up, but keep reading to catch (and report) late frames
            self._tasks.append(asyncio.create_task(self._ws.close(), name="fake-toy-sleep"))

    # -- waiting --------------------------------------------------------------------------------

    def _notify(self) -> None:
        """Wake every waiter; each re-checks its own condition."""
        self._change.set()
        self._change = asyncio.Event()

    async def _wait_until(self, ready: Callable[[], bool], timeout_s: float, what: str) -> None:
        try:
            async with asyncio.timeout(timeout_s):
                while not ready():
                    if self.is_closed:
                        raise ToyClosed(f"connection closed while waiting for {what}")
                    await self._change.wait()
        except TimeoutError:
            raise TimeoutError(f"no {what} within {timeout_s} s (state {self.state})") from None

    async def wait_state(self, state: str, timeout_s: float = DEFAULT_WAIT_S) -> None:
        await self._wait_until(lambda: self.state == state, timeout_s, f"state {state}")

    async def wait_responses(self, n: int, timeout_s: float = DEFAULT_WAIT_S) -> list[ToyResponse]:
        """The first ``n`` ended responses (bare COMPLETE/ERROR included, see ToyResponse)."""
        ended = self.model.ended_responses
        await self._wait_until(lambda: len(ended()) >= n, timeout_s, f"{n} responses")
        return ended()[:n]

    async def wait_closed(self, timeout_s: float = 5.0) -> int | None:
        await asyncio.wait_for(self._closed.wait(), timeout_s)
        return self.close_code

    # -- microphone ------------------------------------------------------------------------------

    @property
    def mic_bytes_sent(self) -> int:
        return self._mic.bytes_sent

    async def speak(
        self,
        pcm_16k: bytes,
        *,
        realtime: bool = True,
        trailing_silence_ms: int = 1500,
        listen_timeout_s: float = DEFAULT_WAIT_S,
    ) -> int:
        """Wait for LISTENING, then stream ``pcm_16k`` plus trailing silence as the mic does.

        Messages are ``mic_chunk_bytes`` long (any size, odd ones too) on an absolute schedule
        of ``mic_chunk_bytes / 32`` ms each. Sending stops the moment the device leaves
        LISTENING (AUDIO.COMMITTED, or SPEAKING 50 ms after CREATED). Returns the bytes sent.
        """
        audio = bytes(pcm_16k) + bytes(trailing_silence_ms * MIC_BYTES_PER_MS)
        await self.wait_state(ToyState.LISTENING, listen_timeout_s)
        return await self._mic.stream(audio, realtime=realtime)

    def set_idle_mic(self, enabled: bool) -> None:
        """Stream silence whenever LISTENING, as a real device never goes quiet (server VAD
        needs continuous audio). ``speak()`` takes over the same mic clock while it runs."""
        self._mic.idle = enabled
        running = any(t.get_name() == IDLE_MIC_TASK and not t.done() for t in self._tasks)
        if enabled and not running and self._ws is not None:
            self._start_idle_mic()
        self._notify()

    def _start_idle_mic(self) -> None:
        idle = self._mic.idle_loop(lambda: not self.is_closed)
        self._tasks.append(asyncio.create_task(idle, name=IDLE_MIC_TASK))

    def _mic_may_send(self) -> bool:
        """The mic task's check before each message (after firing any timer already due)."""
        self._sync()
        return self.model.mic_open and self._ws is not None

    async def _mic_send(self, chunk: bytes) -> None:
        assert self._ws is not None
        await self._ws.send(chunk)

    async def _changed(self) -> None:
        await self._change.wait()

    # -- raw sends --------------------------------------------------------------------------

    async def send_instruction(self, msg: str, **fields: object) -> None:
        """``{"type":"instruction","msg":msg, ...}`` (e.g. INTERRUPT with ``audio_end_ms``)."""
        await self.send_text(json.dumps({"type": "instruction", "msg": msg, **fields}))

    async def send_text(self, text: str) -> None:
        """Raw text frame, for hostile-input tests."""
        assert self._ws is not None, "not connected"
        await self._ws.send(text)

    async def send_binary(self, data: bytes) -> None:
        """Raw binary frame regardless of state, for hostile-input tests."""
        assert self._ws is not None, "not connected"
        await self._ws.send(data)
