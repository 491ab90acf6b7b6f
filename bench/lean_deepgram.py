"""The fake Deepgram's protocol behind a lean socket layer, for capacity runs.

A capacity run streams every call's audio to the recogniser: 50 messages a second per call,
10,000 a second at 200 calls. ``tests/fakes/deepgram_server.py`` spends about 100 µs of
uvicorn, Starlette and per-message tasks on each, so on the load core it could serve about 50
calls, not the hundreds the bridge is asked to carry: its lateness would be counted as the
bridge's. This server keeps that fake's protocol cores as they are (Nova-3 and Flux from
``tests/fakes/deepgram/{nova,flux}.py``: the same turn timing, in audio time, and the same
messages; Aura's speech from ``tests/fakes/deepgram/audio.py``), and replaces only what
carries them: a plain asyncio Protocol, the bridge's own parser for usual client frames
(``bridge/server/frames.py``), one ordered outbox per socket with the injected delay before
each first answer (an utterance's, a turn's, a flush's), as ``tests/fakes/deepgram/link.py``
does.

Left out, as a capacity run needs none of it: faults, the records of every message, Nova-3's
idle timeout, the Cloudflare gateway routes and the parameter checks beyond parsing. Aura
keeps its limit of 20 flushes a minute per socket (the bridge plans around it).

    python -m bench.lean_deepgram --port 8766 --eager-ms 100 --eot-ms 200 \\
        --first-result-delay-ms aura=100
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import struct
import time
import uuid
from collections import deque
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from bridge.server.frames import UsualFrames
from tests.fakes.deepgram import API_KEY, Tuning
from tests.fakes.deepgram.audio import bytes_per_sample, speech_audio
from tests.fakes.deepgram.aura import EXCESSIVE_FLUSH, FLUSH_WARNING
from tests.fakes.deepgram.flux import FluxStream
from tests.fakes.deepgram.nova import NovaStream
from tests.fakes.deepgram.params import AuraParams, FluxParams, NovaParams, ParamError
from tests.fakes.deepgram.records import Emit

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OP_TEXT = 0x1
OP_BINARY = 0x2
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA
MAX_MESSAGE_BYTES = 1 << 20
TRANSCRIPT = "Hello there."


def server_frame(opcode: int, payload: bytes) -> bytes:
    """An unmasked server frame."""
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, n)
    elif n < 65536:
        head = struct.pack("!BBH", 0x80 | opcode, 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 127, n)
    return head + payload


class Settings:
    def __init__(self, tuning: Tuning, delays_s: dict[str, float], api_key: str) -> None:
        self.tuning = tuning
        self.delays_s = delays_s
        self.api_key = api_key


class LeanSocket(asyncio.Protocol):
    """One client socket: the handshake, then one protocol core."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.transport: asyncio.Transport | None = None
        self.loop = asyncio.get_running_loop()
        self._request = bytearray()
        self._frames: UsualFrames | None = None
        self._on_audio: Callable[[bytes], list[Emit]] = lambda data: []
        self._on_text: Callable[[dict[str, Any]], list[Emit]] = lambda message: []
        self._delay_s = 0.0
        self._aura: LeanAura | None = None
        #: (due, frame or None for a close, dropped by Aura's Clear)
        self._outbox: deque[tuple[float, bytes | None, bool]] = deque()
        self._timer: asyncio.TimerHandle | None = None
        self._closed = False

    # -- asyncio ----------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()

    def data_received(self, data: bytes) -> None:
        frames = self._frames
        if frames is None:
            self._handshake(data)
            return
        usual, rest = frames.feed(data)
        for opcode, payload in usual:
            if opcode == OP_BINARY:
                self.emit(self._on_audio(payload))
            else:
                message = json.loads(payload)
                if not isinstance(message, dict):
                    continue
                if self._aura is not None and message.get("type") == "Clear":
                    self._clear(self._aura)
                else:
                    self.emit(self._on_text(message))
        if rest is not None:  # a close (or a ping): the end of this socket's usual frames
            self._control(rest)

    # -- the handshake ----------------------------------------------------------------------

    def _handshake(self, data: bytes) -> None:
        self._request += data
        end = self._request.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(self._request[:end]).decode("latin-1").split("\r\n")
        rest = bytes(self._request[end + 4 :])
        _, target, _ = head[0].split(" ", 2)
        headers = {}
        for line in head[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        url = urlsplit(target)
        query = dict(parse_qsl(url.query))
        if headers.get("authorization") != f"Token {self.settings.api_key}":
            self._refuse(401, "Invalid credentials.")
            return
        try:
            self._open(url.path, query)
        except (ParamError, KeyError) as exc:
            self._refuse(400 if isinstance(exc, ParamError) else 404, str(exc))
            return
        accept = base64.b64encode(
            hashlib.sha1(headers["sec-websocket-key"].encode() + WS_GUID).digest()
        )
        assert self.transport is not None
        self.transport.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n"
        )
        self._frames = UsualFrames(MAX_MESSAGE_BYTES)
        self._pump()  # what the core says on connect
        if rest:
            self.data_received(rest)

    def _refuse(self, status: int, message: str) -> None:
        body = json.dumps({"err_code": str(status), "err_msg": message}).encode()
        assert self.transport is not None
        self.transport.write(
            f"HTTP/1.1 {status} Refused\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            + body
        )
        self.transport.close()

    def _open(self, path: str, query: dict[str, str]) -> None:
        tuning = self.settings.tuning
        request_id = str(uuid.uuid4())
        if path == "/v1/listen":
            nova = NovaStream(NovaParams.parse(query), lambda: TRANSCRIPT, tuning, request_id)
            self._delay_s = self.settings.delays_s.get("nova", 0.0)
            self._on_audio = nova.audio
            self._on_text = lambda m: self._listen_text(m, nova.finalize, nova.close_stream)
        elif path == "/v2/listen":
            flux = FluxStream(
                FluxParams.parse(query, gateway=False), lambda: TRANSCRIPT, tuning, request_id
            )
            self._delay_s = self.settings.delays_s.get("flux", 0.0)
            self._on_audio = flux.audio
            self._on_text = lambda m: self._listen_text(m, flux.force_end_turn, flux.close_stream)
            self.emit([flux.connected()])
        elif path == "/v1/speak":
            aura = LeanAura(AuraParams.parse(query, gateway=False), tuning, request_id)
            self._delay_s = self.settings.delays_s.get("aura", 0.0)
            self._on_text = aura.handle
            self._aura = aura
            self.emit(aura.open())
        else:
            raise KeyError(f"no endpoint at {path}")

    @staticmethod
    def _listen_text(
        message: dict[str, Any],
        finish: Callable[[], list[Emit]],
        close_stream: Callable[[], list[Emit]],
    ) -> list[Emit]:
        kind = message.get("type")
        if kind in ("Finalize", "ForceEndTurn"):
            return finish()
        if kind == "CloseStream":
            return close_stream()
        return []  # KeepAlive

    def _control(self, rest: bytes) -> None:
        """The first unusual frame: a ping is answered, anything else closes the socket."""
        assert self.transport is not None
        opcode = rest[0] & 0x0F if rest else OP_CLOSE
        if opcode == OP_PING and len(rest) >= 6 and rest[1] & 0x7F < 126:
            self.transport.write(server_frame(OP_PONG, b""))
        self._close(1000)

    # -- sending, in order, with the injected delay before each first answer ---------------

    def emit(self, emits: list[Emit]) -> None:
        if not emits:
            return
        now = self.loop.time()
        for emit in emits:
            not_before = now + (self._delay_s if emit.first else 0.0)
            if emit.close is not None:
                self._outbox.append((not_before, None, False))
            elif emit.event is not None:
                frame = server_frame(OP_TEXT, json.dumps(emit.event).encode())
                self._outbox.append((not_before, frame, emit.event.get("type") == "Flushed"))
            elif emit.audio is not None:
                self._outbox.append((not_before, server_frame(OP_BINARY, emit.audio), True))
        if self._timer is None:
            self._pump()

    def _clear(self, aura: LeanAura) -> None:
        """Aura's ``Clear``: queued audio and ``Flushed`` are dropped, then ``Cleared``."""
        self._outbox = deque(item for item in self._outbox if not item[2])
        aura.buffer.clear()
        self.emit([Emit({"type": "Cleared", "sequence_id": aura.clears})])
        aura.clears += 1

    def _pump(self) -> None:
        self._timer = None
        if self._closed or self.transport is None or self._frames is None:
            return  # closed, or not upgraded yet
        now = self.loop.time()
        outbox = self._outbox
        while outbox:
            not_before, frame, _ = outbox[0]
            if not_before > now:
                self._timer = self.loop.call_at(not_before, self._pump)
                return
            outbox.popleft()
            if frame is None:
                self._close(1000)
                return
            self.transport.write(frame)

    def _close(self, code: int) -> None:
        if self._closed or self.transport is None:
            return
        self._closed = True
        self.transport.write(server_frame(OP_CLOSE, struct.pack("!H", code)))
        self.transport.close()


class LeanAura:
    """Aura's ``/v1/speak``: text in, a tone proportional to it out, per flush."""

    def __init__(self, params: AuraParams, tuning: Tuning, request_id: str) -> None:
        self.params = params
        self.tuning = tuning
        self.request_id = request_id
        self.buffer: list[str] = []
        self.flushes = 0
        self.clears = 0
        self.flush_times: deque[float] = deque()
        self.step = params.rate_hz * tuning.aura_chunk_ms // 1000
        self.step *= bytes_per_sample(params.encoding)

    def open(self) -> list[Emit]:
        metadata = {
            "type": "Metadata",
            "request_id": self.request_id,
            "model_name": self.params.voice,
            "model_version": "fake",
            "model_uuid": "00000000-0000-4000-8000-00000000a0a0",
        }
        return [Emit(metadata)]

    def handle(self, message: dict[str, Any]) -> list[Emit]:
        kind = message.get("type")
        if kind == "Speak":
            self.buffer.append(str(message.get("text", "")))
        elif kind == "Flush":
            return self._flush()
        elif kind == "Close":
            return [Emit(close=(1000, ""))]
        return []  # Clear is the socket's (it empties the outbox)

    def _flush(self) -> list[Emit]:
        now = time.monotonic()
        while self.flush_times and now - self.flush_times[0] >= self.tuning.flush_window_s:
            self.flush_times.popleft()
        if len(self.flush_times) >= self.tuning.flush_limit:
            warning = {
                "type": "Warning",
                "code": EXCESSIVE_FLUSH,
                "description": FLUSH_WARNING,
                "warn_code": EXCESSIVE_FLUSH,
                "warn_msg": FLUSH_WARNING,
            }
            return [Emit(warning)]
        self.flush_times.append(now)
        text = "".join(self.buffer)
        self.buffer.clear()
        audio = speech_audio(text, self.params.encoding, self.params.rate_hz)
        step = self.step
        out = [
            Emit(audio=audio[offset : offset + step], first=index == 0)
            for index, offset in enumerate(range(0, len(audio), step))
        ]
        out.append(Emit({"type": "Flushed", "sequence_id": self.flushes}))
        self.flushes += 1
        return out


async def serve(host: str, port: int, settings: Settings) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: LeanSocket(settings), host, port, backlog=1024)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--api-key", default=API_KEY)
    parser.add_argument("--eager-ms", type=int, default=Tuning().flux_eager_ms)
    parser.add_argument("--eot-ms", type=int, default=Tuning().flux_eot_ms)
    parser.add_argument("--first-result-delay-ms", action="append", default=[])
    args = parser.parse_args()
    delays_s = {}
    for item in args.first_result_delay_ms:
        name, _, ms = item.partition("=")
        delays_s[name] = float(ms) / 1000
    tuning = Tuning(flux_eager_ms=args.eager_ms, flux_eot_ms=args.eot_ms)
    asyncio.run(serve(args.host, args.port, Settings(tuning, delays_s, args.api_key)))


if __name__ == "__main__":
    main()
