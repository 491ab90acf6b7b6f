"""An emulated ESP32 toy running the Elato firmware, for tests, benchmarks and ``bridge toy``.

It plays the device's side of ``spec/esp32-elato.md`` so that the server can be exercised
without hardware, and it is deliberately as unforgiving as the firmware:

* the handshake carries the device's headers (``Authorization: Bearer``, ``X-Device-Mac``,
  ``X-Wifi-Rssi``, ``Sec-WebSocket-Protocol: arduino`` offered only, ``Origin: file://``,
  ``User-Agent: arduino-WebSocket-Client``), no compression and no client pings;
* every binary message is decoded as exactly one Opus packet at 48 kHz, and only while the
  firmware would play it (between ``RESPONSE.CREATED`` and ``RESPONSE.COMPLETE``/``ERROR``,
  in ``SPEAKING``, outside the listen hold);
* playback is paced like the device's 10 240-byte ring with no jitter buffer: the socket is
  not read while the ring is full, so TCP back-pressure paces the sender;
* the microphone streams raw PCM (16 kHz, s16le, mono) only while ``LISTENING`` and stops
  the moment the state changes, exactly as the firmware's mic task.

Whatever the real device would choke on, or that breaks a MUST of the spec that the device
can observe, is appended to :attr:`FakeToy.protocol_errors` instead of raising, so one test
run reports every problem.

Device states (:class:`ToyState`, the firmware's names):

``PROCESSING``
    connected, mic off: from the connect until the first COMPLETE/ERROR hold ends, and after
    ``AUDIO.COMMITTED``.
``SPEAKING``
    50 ms after ``RESPONSE.CREATED``; binary is played. The firmware stays in SPEAKING through
    the listen hold (binary is dropped then) until the hold ends.
``LISTENING``
    ``hold_ms`` after COMPLETE/ERROR: the mic streams upstream.
``IDLE``
    before the connect, after a disconnect, and after non-JSON text (the firmware logs
    "Error deserializing JSON" and goes IDLE: mic off, binary dropped). A pending hold or a
    later CREATED still moves it on, as on the device.
``SLEEP``
    after ``SESSION.END``: everything stops and the socket is closed.

Buffering that remains between the server and this emulator's play clock: the kernel's
receive buffer (``tcp_rcvbuf_bytes``, which Linux doubles; default mimics lwIP's window),
the bytes of one transport read, and at most a couple of parsed frames (``max_queue=1``:
websockets pauses reading once more than one frame waits). The server's own send buffer is
on its side, as with a real device.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import opuslib
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.frames import Frame, Opcode
from websockets.protocol import Event
from websockets.typing import Origin, Subprotocol

# -- wire facts (spec §1-§4) -----------------------------------------------------------------

#: the device's WebSocket library drops messages of 15 * 1024 bytes or more [WSLIB]
MAX_MESSAGE_BYTES = 15 * 1024
#: the longest Opus packet (RFC 6716) and the longest the device's decode buffer accepts
MAX_PACKET_MS = 120
#: Opus decode rates libopus accepts
OPUS_RATES_HZ = (8000, 12000, 16000, 24000, 48000)
#: the current firmware decodes at 48 kHz (older builds: 24 kHz)
DEVICE_DECODE_RATE_HZ = 48000
#: the firmware's ring between the decoder and I2S (≈ 107 ms at 48 kHz)
DEVICE_RING_BYTES = 10240
#: the firmware sleeps this long (``vTaskDelay(50)``) before entering SPEAKING on CREATED
CREATED_TO_SPEAKING_MS = 50
#: the firmware restarts listening this long after reading COMPLETE/ERROR
DEVICE_HOLD_MS = 1000
#: lwIP's TCP receive window on the ESP32 Arduino core (4 x 1436-byte MSS)
DEVICE_TCP_WINDOW_BYTES = 5744
#: upstream: raw PCM, signed 16-bit little-endian, mono, 16 kHz
MIC_RATE_HZ = 16000
BYTES_PER_SAMPLE = 2
MIC_BYTES_PER_MS = MIC_RATE_HZ * BYTES_PER_SAMPLE // 1000
#: the device's usual upstream message (512 samples = 32 ms)
DEVICE_MIC_CHUNK_BYTES = 1024

DEVICE_SUBPROTOCOL = "arduino"
DEVICE_ORIGIN = "file://"
DEVICE_USER_AGENT = "arduino-WebSocket-Client"
DEFAULT_MAC = "24:0A:C4:12:34:56"
DEFAULT_RSSI_DBM = -55

# -- the auth message (spec §3.1) -------------------------------------------------------------

#: the four fields the firmware reads, with the JSON types it needs (bool excluded from numbers)
AUTH_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "volume_control": (int,),
    "pitch_factor": (int, float),
    "is_ota": (bool,),
    "is_reset": (bool,),
}
#: our server clamps volume to this range (spec: "clamped to 0-100 (ours)")
VOLUME_RANGE = (0, 100)
#: personas may set a pitch in this range; 1.0 bypasses the pitch shifter
PITCH_RANGE = (0.5, 2.0)

SERVER_CREATED = "RESPONSE.CREATED"
SERVER_COMPLETE = "RESPONSE.COMPLETE"
SERVER_ERROR = "RESPONSE.ERROR"
SERVER_COMMITTED = "AUDIO.COMMITTED"
SERVER_SESSION_END = "SESSION.END"

# -- emulator tuning ------------------------------------------------------------------------

OPEN_TIMEOUT_S = 10.0
#: how long a close handshake may take before the socket is dropped
CLOSE_TIMEOUT_S = 2.0
#: sleeps shorter than this are not worth a timer; the mic just yields instead
MIN_SLEEP_S = 0.001
#: a mic schedule this far behind is restarted from now instead of bursting to catch up
MIC_REANCHOR_S = 0.2
DEFAULT_WAIT_S = 20.0
MS_PER_S = 1000.0


class ToyState(StrEnum):
    """The firmware's device state names that this emulator goes through (see module doc)."""

    PROCESSING = "PROCESSING"
    SPEAKING = "SPEAKING"
    LISTENING = "LISTENING"
    IDLE = "IDLE"
    SLEEP = "SLEEP"


class ToyClosed(ConnectionError):
    """The connection closed while a caller was waiting for something that now cannot come."""


@dataclass
class ToyResponse:
    """One response as the device saw it.

    ``bracketed`` is False for a bare COMPLETE/ERROR (greeting disabled, or ERROR answering
    a commit): it has no packets and ``created_at == ended_at``. ``dropped`` is True when the
    device threw the whole response away (CREATED inside the listen hold, spec TE3).
    """

    created_at: float  # monotonic time CREATED arrived
    ended_at: float | None = None  # time COMPLETE/ERROR arrived
    ok: bool | None = None  # True COMPLETE, False ERROR, None still open
    packets: list[bytes] = field(default_factory=list)  # every binary message, as received
    pcm_48k: bytearray = field(default_factory=bytearray)  # s16le mono at ``rate_hz``
    volume_control: int | None = None  # from COMPLETE/ERROR if present
    rate_hz: int = DEVICE_DECODE_RATE_HZ
    packet_times: list[float] = field(default_factory=list)  # monotonic arrival per packet
    bracketed: bool = True
    dropped: bool = False

    @property
    def decoded_ms(self) -> float:
        """Duration of the decoded (played) audio."""
        return len(self.pcm_48k) / BYTES_PER_SAMPLE / self.rate_hz * MS_PER_S


class _DeviceConnection(ClientConnection):
    """Counts fragmented messages: the firmware ignores fragment events, so they are lost."""

    fragmented_messages: int = 0

    def process_event(self, event: Event) -> None:
        data_opcodes = (Opcode.TEXT, Opcode.BINARY)
        if isinstance(event, Frame) and event.opcode in data_opcodes and not event.fin:
            self.fragmented_messages += 1
        super().process_event(event)


class FakeToy:
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
        if decode_rate_hz not in OPUS_RATES_HZ:
            raise ValueError(f"decode_rate_hz must be one of {OPUS_RATES_HZ}")
        if mic_chunk_bytes < 1:
            raise ValueError("mic_chunk_bytes must be >= 1")
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

        self.state: str = ToyState.IDLE
        #: (monotonic time, state) for every transition, for timing assertions
        self.state_history: list[tuple[float, str]] = []
        self.auth: dict[str, Any] | None = None
        self.volume_control: int | None = None
        self.pitch_factor: float | None = None
        self.connected_at: float | None = None
        self.first_message_at: float | None = None
        #: (monotonic time, "text", parsed JSON or raw str) / (time, "binary", length)
        self.messages: list[tuple[float, str, object]] = []
        self.responses: list[ToyResponse] = []
        self.protocol_errors: list[str] = []
        self.dropped_binary = 0
        self.session_ended = False
        self.close_code: int | None = None
        #: the subprotocol the server selected (None: it did not echo ``arduino``; that works)
        self.subprotocol: str | None = None
        self.mic_bytes_sent = 0

        self._ws: _DeviceConnection | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._open: ToyResponse | None = None
        self._decoder: opuslib.Decoder | None = None
        self._hold: asyncio.TimerHandle | None = None
        #: the firmware checks its listening restart in the task that sleeps 50 ms on CREATED,
        #: so a hold ending during that sleep takes effect only after SPEAKING is entered
        self._entering_speaking = False
        self._hold_due = False
        self._play_end = 0.0
        self._response_queued_ms = 0.0
        self._change = asyncio.Event()
        self._closed = asyncio.Event()
        self._mic_lock = asyncio.Lock()
        self._mic_next_at: float | None = None
        self._idle_mic = idle_mic
        self._fragments_seen = 0

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
        sock = await self._open_socket()
        offered = [Subprotocol(self.offered_subprotocol)] if self.offered_subprotocol else None
        try:
            ws = await connect(
                self.url,
                sock=sock,
                origin=Origin(DEVICE_ORIGIN),
                subprotocols=offered,
                additional_headers=self.handshake_headers(),
                user_agent_header=DEVICE_USER_AGENT,
                compression=None,
                ping_interval=None,
                max_queue=1,
                max_size=None,
                open_timeout=OPEN_TIMEOUT_S,
                close_timeout=CLOSE_TIMEOUT_S,
                create_connection=_DeviceConnection,
            )
        except BaseException:
            sock.close()
            raise
        assert isinstance(ws, _DeviceConnection)
        self._ws = ws
        self.subprotocol = ws.subprotocol
        self.connected_at = time.monotonic()
        self._set_state(ToyState.PROCESSING)
        self._tasks.append(asyncio.create_task(self._read_loop(), name="fake-toy-reader"))
        if self._idle_mic:
            self._start_idle_mic()
        return self

    async def _open_socket(self) -> socket.socket:
        """A TCP socket with the device's small receive window, so back-pressure is real.

        Linux autotunes loopback receive buffers to megabytes, which would hide a server that
        outruns playback; the window must be set before connecting to take effect.
        """
        parts = urlsplit(self.url)
        secure = parts.scheme == "wss"
        host = parts.hostname or "localhost"
        port = parts.port or (443 if secure else 80)
        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        last_error: OSError | None = None
        for family, kind, proto, _, address in infos:
            sock = socket.socket(family, kind, proto)
            try:
                sock.setblocking(False)
                if self.tcp_rcvbuf_bytes is not None:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.tcp_rcvbuf_bytes)
                await loop.sock_connect(sock, address)
            except OSError as exc:
                sock.close()
                last_error = exc
                continue
            except BaseException:
                sock.close()
                raise
            return sock
        raise last_error or OSError(f"cannot resolve {host}")

    async def close(self) -> None:
        """Close like the user's sleep gesture; cancel every task this toy started."""
        self._cancel_hold()
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        ws = self._ws
        if ws is not None:
            await self._close_socket(ws)
        self._on_disconnect()

    @staticmethod
    async def _close_socket(ws: ClientConnection) -> None:
        """Close handshake while draining: with ``max_queue=1`` an unread frame would pause
        reading and the server's close frame would never be seen."""
        closer = asyncio.create_task(ws.close(), name="fake-toy-close")
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT_S * 2):
                with contextlib.suppress(ConnectionClosed):
                    while True:
                        await ws.recv()
        except TimeoutError:
            pass
        finally:
            if not closer.done():
                closer.cancel()
            await asyncio.gather(closer, return_exceptions=True)

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

    @property
    def hold_pending(self) -> bool:
        """True between COMPLETE/ERROR and the return to LISTENING (binary is dropped)."""
        return self._hold is not None

    def _on_disconnect(self) -> None:
        """The firmware goes IDLE on a disconnect (SLEEP stays SLEEP)."""
        if self._ws is not None and self.close_code is None:
            self.close_code = self._ws.close_code
        self._cancel_hold()
        self._cut_playback()
        if self.state != ToyState.SLEEP:
            self._set_state(ToyState.IDLE)
        self._closed.set()
        self._notify()

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
        await self._wait_until(lambda: len(self._ended()) >= n, timeout_s, f"{n} responses")
        return self._ended()[:n]

    def _ended(self) -> list[ToyResponse]:
        return [r for r in self.responses if r.ended_at is not None]

    async def wait_closed(self, timeout_s: float = 5.0) -> int | None:
        await asyncio.wait_for(self._closed.wait(), timeout_s)
        return self.close_code

    # -- reading and the device's reactions ------------------------------------------------------

    async def _read_loop(self) -> None:
        ws = self._ws
        assert ws is not None
        try:
            while True:
                await self._wait_for_ring_space()
                message = await ws.recv()
                self._check_fragments(ws)
                if isinstance(message, str):
                    await self._on_text(message)
                else:
                    self._on_binary(bytes(message))
        except ConnectionClosed:
            self._on_disconnect()
        except Exception as exc:  # an emulator bug must show up in the results, not hang them
            self._error(f"emulator reader failed: {exc!r}")
            self._on_disconnect()

    def _check_fragments(self, ws: _DeviceConnection) -> None:
        if ws.fragmented_messages > self._fragments_seen:
            self._fragments_seen = ws.fragmented_messages
            self._error("fragmented message (the device ignores fragments)")

    def _error(self, text: str) -> None:
        self.protocol_errors.append(text)

    def _record(self, kind: str, value: object) -> float:
        now = time.monotonic()
        if self.first_message_at is None:
            self.first_message_at = now
        self.messages.append((now, kind, value))
        return now

    async def _on_text(self, text: str) -> None:
        first = self.first_message_at is None
        try:
            message: object = json.loads(text)
            parsed = True
        except (ValueError, RecursionError):
            message, parsed = text, False
        now = self._record("text", message)
        if self.session_ended:
            self._error(f"message after SESSION.END: {text[:80]}")
            return
        kind = message.get("type") if isinstance(message, dict) else None
        if first and kind != "auth":
            self._error(f"first message is not auth: {text[:80]}")
        if not parsed:
            self._on_bad_json(text)
        elif not isinstance(message, dict):
            self._error(f"text is not a JSON object: {text[:80]}")
        elif kind == "auth":
            self._on_auth(message, first)
        elif kind == "server":
            await self._on_server(message, now)
        else:
            self._error(f"unknown message type (ignored by the device): {text[:80]}")

    def _on_bad_json(self, text: str) -> None:
        """The firmware logs "Error deserializing JSON" and drops to IDLE."""
        self._error(f"non-JSON text (device goes IDLE): {text[:80]!r}")
        self._set_state(ToyState.IDLE)

    def _on_auth(self, message: dict[str, Any], first: bool) -> None:
        if self.auth is not None or not first:
            self._error("second auth" if self.auth is not None else "auth is not the first message")
        else:
            self.auth = message
        for problem in auth_problems(message):
            self._error(f"auth: {problem}")
        # the firmware reads a missing field as 0 / 0.0 / false
        self.volume_control = _as_int(message.get("volume_control"))
        self.pitch_factor = _as_float(message.get("pitch_factor"))

    async def _on_server(self, message: dict[str, Any], now: float) -> None:
        msg = message.get("msg")
        if msg == SERVER_CREATED:
            await self._on_created(now)
        elif msg in (SERVER_COMPLETE, SERVER_ERROR):
            self._on_closing(message, now, ok=msg == SERVER_COMPLETE)
        elif msg == SERVER_COMMITTED:
            self._on_committed()
        elif msg == SERVER_SESSION_END:
            self._on_session_end()
        else:
            self._error(f"unknown server msg (ignored by the device): {msg!r}")

    async def _on_created(self, now: float) -> None:
        """Open a bracket; after the firmware's 50 ms delay (reads blocked) enter SPEAKING."""
        if self._open is not None:
            self._error("CREATED while already responding")
            self._open.ended_at = now
        response = ToyResponse(created_at=now, rate_hz=self.decode_rate_hz)
        if self.hold_pending:
            # the pending restart is not cancelled: the whole response is dropped (TE3)
            self._error("CREATED inside hold (the device drops this response)")
            response.dropped = True
        self.responses.append(response)
        self._open = response
        self._decoder = opuslib.Decoder(self.decode_rate_hz, 1)
        self._response_queued_ms = 0.0
        self._notify()
        self._entering_speaking = True
        try:
            await asyncio.sleep(self.speaking_delay_ms / MS_PER_S)
        finally:
            self._entering_speaking = False
        if self.state != ToyState.SLEEP:
            self._set_state(ToyState.SPEAKING)
        if self._hold_due:
            self._end_hold()

    def _on_closing(self, message: dict[str, Any], now: float, *, ok: bool) -> None:
        """COMPLETE/ERROR: binary dropped from now on; LISTENING after the hold."""
        volume = message.get("volume_control")
        if "volume_control" in message and not _is_int(volume):
            self._error(f"volume_control on COMPLETE/ERROR is not an integer: {volume!r}")
        elif _outside(volume, VOLUME_RANGE):
            self._error(f"volume_control on COMPLETE/ERROR out of range: {volume}")
        response = self._open or ToyResponse(created_at=now, bracketed=False)
        if self._open is None:
            self.responses.append(response)
        response.ended_at = now
        response.ok = ok
        response.volume_control = _as_int(volume) if "volume_control" in message else None
        if response.volume_control is not None:
            self.volume_control = response.volume_control
        self._open = None
        self._decoder = None
        self._start_hold()
        self._notify()

    def _on_committed(self) -> None:
        if self._open is not None:
            self._error("AUDIO.COMMITTED inside a response (the device stops playing)")
        self._set_state(ToyState.PROCESSING)

    def _on_session_end(self) -> None:
        """SLEEP: stop everything and close the socket (reading goes on to catch late frames)."""
        if self._open is not None:
            self._error("SESSION.END inside a response")
        self.session_ended = True
        self._cancel_hold()
        self._cut_playback()
        self._set_state(ToyState.SLEEP)
        if self._ws is not None:
            self._tasks.append(asyncio.create_task(self._ws.close(), name="fake-toy-sleep"))

    def _start_hold(self) -> None:
        """The firmware (re)schedules its listening restart on every COMPLETE/ERROR."""
        self._cancel_hold()
        loop = asyncio.get_running_loop()
        self._hold = loop.call_later(self.hold_ms / MS_PER_S, self._end_hold)

    def _cancel_hold(self) -> None:
        self._hold_due = False
        if self._hold is not None:
            self._hold.cancel()
            self._hold = None

    def _end_hold(self) -> None:
        """transitionToListening: flush the speaker, start the mic."""
        if self._entering_speaking:
            self._hold_due = True
            return
        self._hold = None
        self._hold_due = False
        if self.is_closed or self.state == ToyState.SLEEP:
            return
        self._cut_playback()
        self._set_state(ToyState.LISTENING)

    def _set_state(self, state: str) -> None:
        if state == self.state:
            return
        self.state = state
        self.state_history.append((time.monotonic(), state))
        if state == ToyState.LISTENING:
            self._mic_next_at = None
        self._notify()

    # -- binary: decode and play ------------------------------------------------------------

    def _on_binary(self, packet: bytes) -> None:
        now = self._record("binary", len(packet))
        if self.session_ended:
            self._error(f"message after SESSION.END: binary of {len(packet)} bytes")
            return
        response = self._open
        if response is None:
            self._error(f"binary outside CREATED..COMPLETE ({len(packet)} bytes)")
            self._drop()
            return
        response.packets.append(packet)
        response.packet_times.append(now)
        if self._packet_size_ok(packet) and self._would_play(response):
            self._decode_and_play(response, packet)
        else:
            self._drop()
        self._notify()

    def _would_play(self, response: ToyResponse) -> bool:
        """The firmware decodes only in SPEAKING with no listening restart pending."""
        return not response.dropped and not self.hold_pending and self.state == ToyState.SPEAKING

    def _packet_size_ok(self, packet: bytes) -> bool:
        if len(packet) >= MAX_MESSAGE_BYTES:
            self._error(f"binary message of {len(packet)} bytes (device limit < 15360)")
            return False
        if not packet:
            self._error("empty binary message inside a response")
            return False
        return True

    def _drop(self) -> None:
        self.dropped_binary += 1

    def _decode_and_play(self, response: ToyResponse, packet: bytes) -> None:
        decoder = self._decoder
        assert decoder is not None
        max_samples = self.decode_rate_hz * MAX_PACKET_MS // int(MS_PER_S)
        index = len(response.packets) - 1
        try:
            pcm: bytes = decoder.decode(packet, frame_size=max_samples)
        except opuslib.OpusError as exc:
            self._error(f"packet {index} does not decode: {exc}")
            return
        samples = len(pcm) // BYTES_PER_SAMPLE
        if samples > max_samples:
            self._error(f"packet {index} decodes to {samples} samples (> {MAX_PACKET_MS} ms)")
            return
        response.pcm_48k.extend(pcm)
        self._play(samples / self.decode_rate_hz)

    def _play(self, duration_s: float) -> None:
        """Queue audio on the play clock; with no jitter buffer an underrun restarts it now."""
        self._response_queued_ms += duration_s * MS_PER_S
        if self.realtime_playback:
            self._play_end = max(self._play_end, time.monotonic()) + duration_s

    def _cut_playback(self) -> None:
        """The speaker flush on LISTENING/SLEEP discards what was not played yet."""
        self._response_queued_ms -= self._unplayed_s() * MS_PER_S
        self._play_end = min(self._play_end, time.monotonic())

    def _unplayed_s(self) -> float:
        return max(0.0, self._play_end - time.monotonic())

    @property
    def ring_ms(self) -> float:
        return self.ring_bytes / BYTES_PER_SAMPLE / self.decode_rate_hz * MS_PER_S

    async def _wait_for_ring_space(self) -> None:
        """The ring write blocks while full, so the socket is not read until there is room."""
        excess_s = self._unplayed_s() - self.ring_ms / MS_PER_S
        if self.realtime_playback and excess_s > 0:
            await asyncio.sleep(excess_s)

    def played_ms(self) -> float:
        """Ms of the current (or last) response played so far per the play clock.

        Without realtime playback, audio counts as played once decoded.
        """
        return max(0.0, self._response_queued_ms - self._unplayed_s() * MS_PER_S)

    # -- microphone ------------------------------------------------------------------------------

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
        sent = 0
        async with self._mic_lock:
            for offset in range(0, len(audio), self.mic_chunk_bytes):
                chunk = audio[offset : offset + self.mic_chunk_bytes]
                if not await self._send_mic_chunk(chunk, realtime):
                    break
                sent += len(chunk)
            if not realtime:
                self._mic_next_at = None
        return sent

    async def _send_mic_chunk(self, chunk: bytes, realtime: bool) -> bool:
        """Send one mic message at its slot; False (nothing sent) once not LISTENING."""
        if realtime:
            await self._wait_mic_slot(len(chunk))
        else:
            await asyncio.sleep(0)  # let the reader see COMMITTED/CREATED between chunks
        if self.state != ToyState.LISTENING or self._ws is None:
            return False
        try:
            await self._ws.send(chunk)
        except ConnectionClosed:
            return False
        self.mic_bytes_sent += len(chunk)
        return True

    async def _wait_mic_slot(self, chunk_bytes: int) -> None:
        """One mic clock for speech and idle silence, so the stream has no gaps or drift."""
        now = time.monotonic()
        if self._mic_next_at is None or now - self._mic_next_at > MIC_REANCHOR_S:
            self._mic_next_at = now
        delay_s = self._mic_next_at - now
        self._mic_next_at += chunk_bytes / MIC_BYTES_PER_MS / MS_PER_S
        if delay_s > MIN_SLEEP_S:
            await asyncio.sleep(delay_s)
        else:
            await asyncio.sleep(0)

    def set_idle_mic(self, enabled: bool) -> None:
        """Stream silence whenever LISTENING, as a real device never goes quiet (server VAD
        needs continuous audio). ``speak()`` takes over the same mic clock while it runs."""
        self._idle_mic = enabled
        running = any(t.get_name() == "fake-toy-idle-mic" and not t.done() for t in self._tasks)
        if enabled and not running and self._ws is not None:
            self._start_idle_mic()
        self._notify()

    async def stream_silence_while_listening(self) -> None:
        """Turn the idle mic on (see :meth:`set_idle_mic`); ``set_idle_mic(False)`` stops it."""
        self.set_idle_mic(True)

    def _start_idle_mic(self) -> None:
        self._tasks.append(asyncio.create_task(self._idle_mic_loop(), name="fake-toy-idle-mic"))

    async def _idle_mic_loop(self) -> None:
        silence = bytes(self.mic_chunk_bytes)
        while self._idle_mic and not self.is_closed:
            if self.state != ToyState.LISTENING:
                await self._change.wait()
                continue
            async with self._mic_lock:
                if self._idle_mic:
                    await self._send_mic_chunk(silence, realtime=True)

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


# -- helpers ---------------------------------------------------------------------------------


def _is_int(value: object) -> bool:
    """A JSON integer (Python's bool is an int, but ``true`` is not an integer in JSON)."""
    return isinstance(value, int) and not isinstance(value, bool)


def _outside(value: object, bounds: tuple[float, float]) -> bool:
    """True for a JSON number outside ``bounds``; other values are reported elsewhere."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return not bounds[0] <= value <= bounds[1]


def _as_int(value: object) -> int:
    """ArduinoJson's ``as<int>()``: numbers truncate, anything else reads as 0."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return int(value)
    return 0


def _as_float(value: object) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return 0.0


def auth_problems(message: dict[str, Any]) -> list[str]:
    """What is wrong with an ``auth`` message for the current firmware (empty: nothing)."""
    problems: list[str] = []
    for name, types in AUTH_FIELD_TYPES.items():
        if name not in message:
            problems.append(f"missing {name}")
            continue
        value = message[name]
        is_bool = isinstance(value, bool)
        if not isinstance(value, types) or (is_bool and bool not in types):
            problems.append(f"{name} has the wrong JSON type: {value!r}")
    problems.extend(_auth_range_problems(message))
    return problems


def _auth_range_problems(message: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    volume = message.get("volume_control")
    if _outside(volume, VOLUME_RANGE):
        problems.append(f"volume_control out of range: {volume}")
    pitch = message.get("pitch_factor")
    if _outside(pitch, PITCH_RANGE):
        problems.append(f"pitch_factor out of range: {pitch}")
    if message.get("is_reset") is True:
        problems.append("is_reset is true (the device reboots; spec: always false)")
    return problems
