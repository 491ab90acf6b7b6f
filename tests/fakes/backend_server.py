"""A fake Twilio-ready voice agent: a WebSocket server on loopback speaking Media Streams.

Written from Twilio's documented protocol (``/work/shared/spec/twilio-media-streams.md`` §3),
as a team's own agent server would be: it reads ``connected``/``start``/``media``/``mark``/
``dtmf``/``stop`` and answers with ``media``, ``mark`` and ``clear``.

* An energy VAD over the caller's μ-law: after speech and ``END_SILENCE_MS`` of quiet it
  answers with a tone (or, ``echo``, the caller's own utterance), all at once as real servers
  stream TTS faster than real time, then a mark ``reply-N``.
* While a reply's mark is pending (it has not been heard), caller speech sends ``clear``.
* Everything it got is recorded with the time it arrived (``BackendStream.received``).
* Faults: refuse handshakes with an HTTP status (``reject_statuses``, or ``refuse_all``),
  drop every socket without a close frame (:meth:`FakeBackend.drop_connections`), drop after
  sending ``drop_after_frames`` media frames, close normally after a reply (``end_after``).
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from pipeline.g711 import pcm16_to_ulaw, rms_pcm16, ulaw_to_pcm16
from tests.fakes.agents import tone_pcm
from tests.fakes.waiting import wait_until

FRAME_BYTES = 160
VAD_RMS_THRESHOLD = 400
VAD_START_MS = 100
END_SILENCE_MS = 400


def tone_ulaw(ms: int, freq_hz: float = 440.0) -> bytes:
    return pcm16_to_ulaw(tone_pcm(ms, freq_hz, 8000))


@dataclass
class BackendStream:
    """One accepted connection, as the backend saw it."""

    path: str
    headers: Headers
    #: (monotonic time, message) of everything received
    received: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    #: the caller's μ-law, exactly as decoded from the media payloads
    audio: bytearray = field(default_factory=bytearray)
    #: (monotonic time, message) of everything sent
    sent: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    stream_sid: str = ""
    #: mark name -> when it was sent / echoed
    marks_sent: dict[str, float] = field(default_factory=dict)
    marks_echoed: dict[str, float] = field(default_factory=dict)
    clears: list[float] = field(default_factory=list)
    replies: int = 0

    def of(self, event: str) -> list[dict[str, Any]]:
        return [m for _, m in self.received if m.get("event") == event]

    @property
    def pending_marks(self) -> list[str]:
        return [name for name in self.marks_sent if name not in self.marks_echoed]


class FakeBackend:
    def __init__(self) -> None:
        self.streams: list[BackendStream] = []
        self.handshakes: list[int] = []
        self.reject_statuses: deque[int] = deque()
        self.refuse_all: int | None = None
        self.reply_ms = 1000
        self.reply_freq_hz = 440.0
        #: answer with the caller's utterance instead of a tone
        self.echo = False
        #: drop the socket (no close frame) after sending this many reply frames in all
        self.drop_after_frames: int | None = None
        #: close normally (1000) after this many replies
        self.end_after: int | None = None
        #: also mark every this many ms of a reply (``reply-N@MS``), as agents that track
        #: how far the caller got do
        self.mark_every_ms: int | None = None
        self._server: Server | None = None
        self._live: set[ServerConnection] = set()
        self._change = asyncio.Event()
        self._frames_sent = 0

    # -- lifecycle ---------------------------------------------------------------------------

    async def __aenter__(self) -> FakeBackend:
        self._server = await serve(
            self._handle, "127.0.0.1", 0, process_request=self._process_request, max_size=None
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    @property
    def url(self) -> str:
        assert self._server is not None
        port = next(iter(self._server.sockets)).getsockname()[1]
        return f"ws://127.0.0.1:{port}/stream"

    def drop_connections(self) -> None:
        """Every open socket dies at once, without a close frame (a network failure)."""
        for ws in list(self._live):
            if ws.transport is not None:
                ws.transport.abort()

    async def wait_until(
        self, ready: Callable[[], bool], timeout_s: float = 10.0, what: str = "condition"
    ) -> None:
        await wait_until(ready, self._change, timeout_s, f"fake backend: {what}", 0.05)

    # -- the protocol ------------------------------------------------------------------------

    async def _process_request(
        self, connection: ServerConnection, request: Request
    ) -> Response | None:
        status = self.refuse_all or (
            self.reject_statuses.popleft() if self.reject_statuses else 101
        )
        self.handshakes.append(status)
        self._change.set()
        if status == 101:
            return None
        return connection.respond(HTTPStatus(status), "refused\n")

    async def _handle(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        stream = BackendStream(ws.request.path, ws.request.headers)
        self.streams.append(stream)
        self._live.add(ws)
        vad = _Vad()
        reply: asyncio.Task[None] | None = None
        try:
            async for frame in ws:
                message = json.loads(frame)
                stream.received.append((time.monotonic(), message))
                self._change.set()
                event = message.get("event")
                if event == "start":
                    stream.stream_sid = message["start"]["streamSid"]
                elif event == "mark":
                    stream.marks_echoed.setdefault(message["mark"]["name"], time.monotonic())
                elif event == "media":
                    ulaw = base64.b64decode(message["media"]["payload"])
                    stream.audio += ulaw
                    onset, utterance = vad.push(ulaw)
                    if onset and stream.pending_marks:  # the caller talks over us
                        await self._send(ws, stream, {"event": "clear"})
                        stream.clears.append(time.monotonic())
                        if reply is not None:
                            reply.cancel()
                    if utterance is not None:
                        reply = asyncio.create_task(self._reply(ws, stream, utterance))
                elif event == "stop":
                    break
        except ConnectionClosed:
            pass
        finally:
            self._live.discard(ws)
            if reply is not None:
                reply.cancel()
            self._change.set()

    async def _reply(self, ws: ServerConnection, stream: BackendStream, utterance: bytes) -> None:
        audio = utterance if self.echo else tone_ulaw(self.reply_ms, self.reply_freq_hz)
        stream.replies += 1
        name = f"reply-{stream.replies}"
        try:
            for i in range(0, len(audio), FRAME_BYTES):
                if (
                    self.drop_after_frames is not None
                    and self._frames_sent >= self.drop_after_frames
                ):
                    self.drop_after_frames = None
                    if ws.transport is not None:
                        ws.transport.abort()
                    return
                payload = base64.b64encode(audio[i : i + FRAME_BYTES]).decode("ascii")
                await self._send(ws, stream, {"event": "media", "media": {"payload": payload}})
                self._frames_sent += 1
                sent_ms = (i + FRAME_BYTES) // 8
                if (
                    self.mark_every_ms
                    and sent_ms % self.mark_every_ms == 0
                    and i + FRAME_BYTES < len(audio)
                ):
                    at = f"{name}@{sent_ms}"
                    stream.marks_sent[at] = time.monotonic()
                    await self._send(ws, stream, {"event": "mark", "mark": {"name": at}})
            stream.marks_sent[name] = time.monotonic()
            await self._send(ws, stream, {"event": "mark", "mark": {"name": name}})
            if self.end_after is not None and stream.replies >= self.end_after:
                await ws.close(1000)
        except ConnectionClosed:
            pass

    async def _send(
        self, ws: ServerConnection, stream: BackendStream, body: dict[str, Any]
    ) -> None:
        message = {"event": body["event"], "streamSid": stream.stream_sid, **body}
        stream.sent.append((time.monotonic(), message))
        await ws.send(json.dumps(message))


class _Vad:
    """Energy VAD in 20 ms frames: (speech just started, a finished utterance or None)."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._loud_ms = 0
        self._quiet_ms = 0
        self._speaking = False
        self._utterance = bytearray()

    def push(self, ulaw: bytes) -> tuple[bool, bytes | None]:
        self._buf += ulaw
        onset, done = False, None
        while len(self._buf) >= FRAME_BYTES:
            frame = bytes(self._buf[:FRAME_BYTES])
            del self._buf[:FRAME_BYTES]
            loud = rms_pcm16(ulaw_to_pcm16(frame)) > VAD_RMS_THRESHOLD
            self._loud_ms = self._loud_ms + 20 if loud else 0
            if self._speaking:
                self._utterance += frame
                self._quiet_ms = 0 if loud else self._quiet_ms + 20
                if self._quiet_ms >= END_SILENCE_MS:
                    self._speaking = False
                    done = bytes(self._utterance[: len(self._utterance) - END_SILENCE_MS * 8])
                    self._utterance.clear()
            elif self._loud_ms >= VAD_START_MS:
                self._speaking, onset, self._quiet_ms = True, True, 0
                self._utterance = bytearray(frame)
        return onset, done
