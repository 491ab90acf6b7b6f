"""A scripted stand-in for our /ws/esp32 server, for testing toy-host.

Loopback only. Uses the standard library, the `websockets` package and the
system libopus (through ctypes) to encode real Opus packets: 24 kHz mono,
120 ms frames, one packet per binary message, as spec section 4.1 says.

It is deliberately simple: it plays a tone for the greeting, "commits" once
it has received enough upstream audio, answers with another tone, and
records everything the device did so that tests can assert on it. It can
also misbehave on purpose (see Scenario).

Run it by hand:  python fake_server.py --port 8765 --token T
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import ctypes.util
import dataclasses
import json
import math
import struct
import time
from typing import Any

import websockets
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

ROUTE = "/ws/esp32"
OPUS_RATE_HZ = 24000
FRAME_MS = 120
FRAME_SAMPLES = OPUS_RATE_HZ * FRAME_MS // 1000  # 2880
OPUS_APPLICATION_VOIP = 2048
MAX_PACKET_BYTES = 1500
PACING_LEAD_S = 0.5  # TE10: at most this far ahead of real time
UPSTREAM_RATE_BYTES_PER_S = 32000
HOLD_WINDOW_S = 0.9  # the device must stay silent this long after COMPLETE (it holds 1000 ms)


class OpusEncoder:
    """A fresh libopus encoder (one per response, spec section 4.1)."""

    _lib: Any = None

    @classmethod
    def lib(cls) -> Any:
        if cls._lib is None:
            name = ctypes.util.find_library("opus")
            if name is None:
                raise OSError("libopus not found")
            lib = ctypes.CDLL(name)
            lib.opus_encoder_create.restype = ctypes.c_void_p
            lib.opus_encoder_create.argtypes = [
                ctypes.c_int32,
                ctypes.c_int,
                ctypes.c_int,
                ctypes.POINTER(ctypes.c_int),
            ]
            lib.opus_encode.restype = ctypes.c_int32
            lib.opus_encode.argtypes = [
                ctypes.c_void_p,
                ctypes.POINTER(ctypes.c_int16),
                ctypes.c_int,
                ctypes.c_char_p,
                ctypes.c_int32,
            ]
            lib.opus_encoder_destroy.argtypes = [ctypes.c_void_p]
            cls._lib = lib
        return cls._lib

    def __init__(self) -> None:
        err = ctypes.c_int(0)
        self._enc = self.lib().opus_encoder_create(
            OPUS_RATE_HZ, 1, OPUS_APPLICATION_VOIP, ctypes.byref(err)
        )
        if err.value != 0 or not self._enc:
            raise OSError(f"opus_encoder_create failed: {err.value}")

    def encode(self, samples: list[int]) -> bytes:
        assert len(samples) == FRAME_SAMPLES
        pcm = (ctypes.c_int16 * FRAME_SAMPLES)(*samples)
        out = ctypes.create_string_buffer(MAX_PACKET_BYTES)
        n = self.lib().opus_encode(self._enc, pcm, FRAME_SAMPLES, out, MAX_PACKET_BYTES)
        if n < 0:
            raise OSError(f"opus_encode failed: {n}")
        return out.raw[:n]

    def close(self) -> None:
        if self._enc:
            self.lib().opus_encoder_destroy(self._enc)
            self._enc = None


def tone_frames(freq_hz: float, duration_ms: int) -> list[list[int]]:
    """A tone cut into 120 ms frames; the last one zero-padded, never dropped."""
    total = OPUS_RATE_HZ * duration_ms // 1000
    samples = [int(8000 * math.sin(2 * math.pi * freq_hz * i / OPUS_RATE_HZ)) for i in range(total)]
    frames = []
    for start in range(0, total, FRAME_SAMPLES):
        frame = samples[start : start + FRAME_SAMPLES]
        frames.append(frame + [0] * (FRAME_SAMPLES - len(frame)))
    return frames


def rms_s16le(data: bytes) -> float:
    n = len(data) // 2
    if n == 0:
        return 0.0
    values = struct.unpack(f"<{n}h", data[: 2 * n])
    return math.sqrt(sum(v * v for v in values) / n)


@dataclasses.dataclass
class Scenario:
    token: str = "test-token"
    volume: int = 55
    pitch: float = 1.0
    greeting_ms: int = 600  # 0 = no greeting, send COMPLETE only
    greeting_hz: float = 440.0
    reply_ms: int = 480
    reply_hz: float = 660.0
    reply_volume: int | None = 60  # volume_control on the replies' COMPLETE
    commit_after_ms: int = 1200  # of upstream audio received while listening
    think_ms: int = 300  # COMMITTED -> CREATED
    hostile: bool = False  # garbage text, misplaced binary, a ping
    silent_after_auth: bool = False
    reject_status: int | None = None  # answer every upgrade with this HTTP status


@dataclasses.dataclass
class SessionLog:
    headers: dict[str, str]
    subprotocol: str | None
    upstream_messages: list[tuple[float, str, int]] = dataclasses.field(
        default_factory=list
    )  # (t, phase, bytes)
    upstream_by_turn: list[bytearray] = dataclasses.field(default_factory=list)
    instructions: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    texts_sent: list[str] = dataclasses.field(default_factory=list)
    packets_sent: int = 0
    samples_sent_48k: int = 0
    packets_after_interrupt: int = 0
    pong_received: bool | None = None
    invalid_from_device: list[str] = dataclasses.field(default_factory=list)
    close_code: int | None = None


class Session:
    def __init__(self, ws: ServerConnection, scenario: Scenario, log: SessionLog) -> None:
        self.ws = ws
        self.sc = scenario
        self.log = log
        self.phase = "open"
        self.t_complete = 0.0
        self.listen_bytes = 0
        self.commit_ready = asyncio.Event()
        self.interrupted = asyncio.Event()
        self.end_requested = asyncio.Event()
        self.closed = asyncio.Event()

    async def send_text(self, obj: Any) -> None:
        text = obj if isinstance(obj, str) else json.dumps(obj, separators=(",", ":"))
        self.log.texts_sent.append(text)
        await self.ws.send(text)

    async def read_loop(self) -> None:
        try:
            await self._read_messages()
        finally:
            self.closed.set()  # wakes run() when the device goes away

    async def _read_messages(self) -> None:
        async for message in self.ws:
            now = time.monotonic()
            if isinstance(message, bytes):
                phase = self.phase
                if phase == "hold" and now - self.t_complete >= HOLD_WINDOW_S:
                    phase = "listening"
                self.log.upstream_messages.append((now - self.t_complete, phase, len(message)))
                if phase == "listening":
                    if self.phase == "hold":
                        self.phase = "listening"
                    self.log.upstream_by_turn[-1].extend(message)
                    self.listen_bytes += len(message)
                    if (
                        self.listen_bytes
                        >= self.sc.commit_after_ms * UPSTREAM_RATE_BYTES_PER_S // 1000
                    ):
                        self.commit_ready.set()
                continue
            try:
                obj = json.loads(message)
            except ValueError:
                self.log.invalid_from_device.append(message)
                continue
            self.log.instructions.append(
                {"t": now, **obj} if isinstance(obj, dict) else {"raw": obj}
            )
            msg = obj.get("msg") if isinstance(obj, dict) else None
            if msg == "INTERRUPT" and self.phase == "responding":
                self.interrupted.set()
            elif msg == "END_SESSION":
                self.end_requested.set()
            elif msg == "end_of_speech" and self.phase == "listening":
                self.commit_ready.set()

    async def respond(self, duration_ms: int, freq_hz: float, volume: int | None) -> None:
        self.phase = "responding"
        self.interrupted.clear()
        frames = tone_frames(freq_hz, duration_ms)
        encoder = OpusEncoder()
        try:
            await self.send_text({"type": "server", "msg": "RESPONSE.CREATED"})
            t0 = time.monotonic()
            for i, frame in enumerate(frames):
                due = t0 + i * FRAME_MS / 1000 - PACING_LEAD_S
                delay = due - time.monotonic()
                if delay > 0:
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(self.interrupted.wait(), delay)
                if self.interrupted.is_set():
                    break
                await self.ws.send(encoder.encode(frame))
                self.log.packets_sent += 1
                self.log.samples_sent_48k += FRAME_SAMPLES * 2
        finally:
            encoder.close()
        complete: dict[str, Any] = {"type": "server", "msg": "RESPONSE.COMPLETE"}
        if volume is not None:
            complete["volume_control"] = volume
        await self.send_text(complete)
        self.start_hold()

    def start_hold(self) -> None:
        self.phase = "hold"
        self.t_complete = time.monotonic()
        self.listen_bytes = 0
        self.commit_ready.clear()
        self.log.upstream_by_turn.append(bytearray())

    async def run(self) -> None:
        sc = self.sc
        await self.send_text(
            {
                "type": "auth",
                "volume_control": sc.volume,
                "pitch_factor": sc.pitch,
                "is_ota": False,
                "is_reset": False,
            }
        )
        if sc.silent_after_auth:
            await self.ws.wait_closed()
            return
        if sc.hostile:
            await self.misbehave_before_greeting()
        if sc.greeting_ms > 0:
            await self.respond(sc.greeting_ms, sc.greeting_hz, None)
        else:
            await self.send_text({"type": "server", "msg": "RESPONSE.COMPLETE"})
            self.start_hold()
        if sc.hostile:
            await self.ws.send(self.one_packet())  # binary in the hold: must be dropped
        while True:
            waits = [
                asyncio.create_task(e.wait())
                for e in (self.commit_ready, self.end_requested, self.closed)
            ]
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            for w in waits:
                w.cancel()
            if self.closed.is_set():
                return
            if self.end_requested.is_set():
                self.phase = "ending"
                await self.send_text({"type": "server", "msg": "SESSION.END"})
                await self.ws.close(1000)
                return
            self.phase = "committed"
            await self.send_text({"type": "server", "msg": "AUDIO.COMMITTED"})
            await asyncio.sleep(sc.think_ms / 1000)
            await self.respond(sc.reply_ms, sc.reply_hz, sc.reply_volume)

    @staticmethod
    def one_packet() -> bytes:
        enc = OpusEncoder()
        try:
            return enc.encode([0] * FRAME_SAMPLES)
        finally:
            enc.close()

    async def misbehave_before_greeting(self) -> None:
        for text in [
            "hello",
            "[]",
            '{"type":"foo"}',
            '{"type":"instruction"}',
            '{"type":"server","msg":"BOGUS"}',
            '{"type":"server","msg":"' + "A" * 2000 + '"}',
        ]:
            await self.ws.send(text)
        await self.ws.send(self.one_packet())  # binary before CREATED: must be dropped
        waiter = await self.ws.ping(b"hi")
        try:
            await asyncio.wait_for(waiter, 2)
            self.log.pong_received = True
        except TimeoutError:
            self.log.pong_received = False


class FakeServer:
    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self.sessions: list[SessionLog] = []
        self.upgrade_attempts: list[float] = []
        self.rejected_paths: list[str] = []
        self._server: Any = None
        self.port = 0

    def process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        self.upgrade_attempts.append(time.monotonic())
        if request.path != ROUTE:
            self.rejected_paths.append(request.path)
            return connection.respond(404, "Not Found\n")
        if self.scenario.reject_status is not None:
            return connection.respond(self.scenario.reject_status, "Rejected\n")
        if request.headers.get("Authorization") != f"Bearer {self.scenario.token}":
            return connection.respond(401, "Unauthorized\n")
        return None

    async def handler(self, ws: ServerConnection) -> None:
        headers = {k.lower(): v for k, v in ws.request.headers.raw_items()}
        log = SessionLog(headers=headers, subprotocol=ws.subprotocol)
        self.sessions.append(log)
        session = Session(ws, self.scenario, log)
        reader = asyncio.create_task(session.read_loop())
        try:
            await session.run()
            await ws.wait_closed()
        except ConnectionClosed:
            pass
        finally:
            reader.cancel()
            log.close_code = ws.close_code

    async def start(self, port: int = 0) -> int:
        self._server = await serve(
            self.handler,
            "127.0.0.1",
            port,
            process_request=self.process_request,
            subprotocols=["arduino"],
            compression=None,
            max_size=64 * 1024,
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await asyncio.wait_for(self._server.wait_closed(), 5)


async def _main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--token", default="test-token")
    args = parser.parse_args()
    server = FakeServer(Scenario(token=args.token))
    port = await server.start(args.port)
    print(
        f"fake server on ws://127.0.0.1:{port}{ROUTE} (websockets {websockets.__version__})",
        flush=True,
    )
    await asyncio.Future()


if __name__ == "__main__":
    asyncio.run(_main())
