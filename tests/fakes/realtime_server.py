"""A fake OpenAI Realtime server: a real WebSocket server on loopback speaking the GA events.

The real agent connects to it exactly as it would to ``wss://api.openai.com/v1/realtime``
(``Authorization: Bearer`` header, ``?model=`` query). It keeps what a test needs to assert on:
every client event of every connection, the raw appended audio, the handshakes it answered.

It behaves like the service where the bridge depends on it:

* ``session.update`` sets the audio format (``audio/pcmu`` or 24 kHz ``audio/pcm``) and turn
  detection; appended audio is decoded in that format and run through a small energy "server
  VAD" that emits ``speech_started`` / ``speech_stopped`` / ``committed``, a user transcript,
  and (``create_response``) a response;
* a response streams a tone in the session's format as ``response.output_audio.delta``
  events, paced ``pace`` times faster than real time, then its transcript and
  ``response.done``; a scripted reply may also call the ``end_call`` tool;
* ``response.cancel`` and ``conversation.item.truncate`` are checked like the real service
  (cancel without an active response and truncating past the audio are errors);
* faults: reject the next handshakes with an HTTP status, stall a handshake or the reader,
  drop the socket mid-response.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

import numpy as np
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from pipeline.g711 import pcm16_to_ulaw, rms_pcm16, ulaw_to_pcm16
from tests.fakes.agents import tone_pcm
from tests.fakes.waiting import wait_until

API_KEY = "sk-test-realtime"
VAD_FRAME_MS = 20
#: frames louder than this RMS count as speech (the fixtures speak far above it)
VAD_RMS_THRESHOLD = 400
#: continuous speech before ``speech_started`` (the real default prefix is 300 ms of padding)
VAD_START_MS = 100
DELTA_MS = 100


@dataclass
class Reply:
    """One scripted response."""

    audio_ms: int = 1200
    freq_hz: float = 440.0
    transcript: str = "Here is my answer."
    #: the response also calls the ``end_call`` tool (after speaking, or instead of it)
    end_call: bool = False
    speak: bool = True
    #: functions the response calls after speaking: (name, arguments as a dict)
    tool_calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


@dataclass
class FakeSession:
    """One accepted connection, as the fake saw it."""

    path: str
    headers: Headers
    events: list[dict[str, Any]] = field(default_factory=list)
    #: every server event sent to the client
    sent: list[dict[str, Any]] = field(default_factory=list)
    #: every appended byte, exactly as decoded from base64
    audio: bytearray = field(default_factory=bytearray)
    config: dict[str, Any] = field(default_factory=dict)
    #: generated audio per assistant item, in ms (truncation is checked against it)
    items_ms: dict[str, float] = field(default_factory=dict)
    #: committed user audio items still in the conversation, and those deleted
    user_items: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    #: function calls the model made (call_id -> name) and the outputs it was given
    calls: dict[str, str] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)
    closed: bool = False

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("type") == kind]

    def sent_of_type(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.sent if e.get("type") == kind]

    @property
    def audio_format(self) -> str:
        audio = self.config.get("audio", {})
        return str(audio.get("input", {}).get("format", {}).get("type", "audio/pcm"))

    @property
    def turn_detection(self) -> dict[str, Any]:
        audio = self.config.get("audio", {})
        detection = audio.get("input", {}).get("turn_detection")
        return detection if isinstance(detection, dict) else {}


class _Vad:
    """Energy VAD over 20 ms frames of PCM16."""

    def __init__(self) -> None:
        self.carry = b""
        self.speaking = False
        self.loud_ms = 0
        self.quiet_ms = 0
        self.position_ms = 0

    def push(self, pcm16: bytes, rate_hz: int, silence_ms: int) -> list[str]:
        frame_bytes = rate_hz * VAD_FRAME_MS // 1000 * 2
        data = self.carry + pcm16
        happened: list[str] = []
        offset = 0
        while offset + frame_bytes <= len(data):
            loud = rms_pcm16(data[offset : offset + frame_bytes]) > VAD_RMS_THRESHOLD
            offset += frame_bytes
            self.position_ms += VAD_FRAME_MS
            if not self.speaking:
                self.loud_ms = self.loud_ms + VAD_FRAME_MS if loud else 0
                if self.loud_ms >= VAD_START_MS:
                    self.speaking, self.quiet_ms = True, 0
                    happened.append("started")
            else:
                self.quiet_ms = 0 if loud else self.quiet_ms + VAD_FRAME_MS
                if self.quiet_ms >= silence_ms:
                    self.speaking, self.loud_ms = False, 0
                    happened.append("stopped")
        self.carry = data[offset:]
        return happened


class FakeRealtime:
    def __init__(
        self,
        *,
        api_key: str = API_KEY,
        replies: list[Reply] | None = None,
        default_reply: Reply | None = None,
        pace: float = 4.0,
        user_transcript: str = "hello there",
    ) -> None:
        self.api_key = api_key
        self.replies: deque[Reply] = deque(replies or [])
        self.default_reply = default_reply or Reply()
        self.pace = pace
        self.user_transcript = user_transcript
        self.sessions: list[FakeSession] = []
        #: (HTTP status answered, request headers) for every handshake
        self.handshakes: list[tuple[int, Headers]] = []
        # faults, each consumed once
        self.reject_statuses: deque[int] = deque()
        self.handshake_delay_s = 0.0
        #: a fixed wait before each response starts (benchmarks inject model latency)
        self.response_delay_s = 0.0
        self.drop_after_deltas: int | None = None
        self.stall_reads_s = 0.0
        self._server: Server | None = None
        self._ids = itertools.count(1)
        self._tasks: set[asyncio.Task[None]] = set()
        self._change = asyncio.Event()
        self._live: set[ServerConnection] = set()

    def drop_connections(self) -> None:
        """Drop every open socket at once, without a close frame (a network failure)."""
        for ws in list(self._live):
            if ws.transport is not None:
                ws.transport.abort()

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> FakeRealtime:
        self._server = await serve(
            self._handle, "127.0.0.1", 0, process_request=self._process_request, max_size=None
        )
        return self

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def __aenter__(self) -> FakeRealtime:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def url(self) -> str:
        assert self._server is not None
        port = next(iter(self._server.sockets)).getsockname()[1]
        return f"ws://127.0.0.1:{port}/v1/realtime"

    # -- what tests look at ------------------------------------------------------------------

    def events(self, kind: str) -> list[dict[str, Any]]:
        return [e for s in self.sessions for e in s.of_type(kind)]

    async def wait_until(
        self, ready: Callable[[], bool], timeout_s: float = 10.0, what: str = "condition"
    ) -> None:
        await wait_until(ready, self._change, timeout_s, f"fake Realtime: {what}", 0.1)

    def _changed(self) -> None:
        self._change.set()

    # -- handshake ---------------------------------------------------------------------------

    async def _process_request(
        self, connection: ServerConnection, request: Request
    ) -> Response | None:
        if self.handshake_delay_s:
            delay, self.handshake_delay_s = self.handshake_delay_s, 0.0
            await asyncio.sleep(delay)
        status = 101
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            status = 401
        elif self.reject_statuses:
            status = self.reject_statuses.popleft()
        self.handshakes.append((status, request.headers))
        self._changed()
        if status == 101:
            return None
        body = json.dumps({"error": {"type": "invalid_request_error", "code": str(status)}})
        return connection.respond(HTTPStatus(status), body + "\n")

    # -- one connection ----------------------------------------------------------------------

    async def _handle(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        session = FakeSession(ws.request.path, ws.request.headers)
        self.sessions.append(session)
        conn = _Connection(self, ws, session)
        self._live.add(ws)
        try:
            await conn.send({"type": "session.created", "session": {"type": "realtime"}})
            async for message in ws:
                if self.stall_reads_s:
                    stall, self.stall_reads_s = self.stall_reads_s, 0.0
                    await asyncio.sleep(stall)
                event = json.loads(message)
                session.events.append(event)
                await conn.on_event(event)
                self._changed()
        except ConnectionClosed:
            pass
        finally:
            self._live.discard(ws)
            await conn.stop_response()
            session.closed = True
            self._changed()

    def next_id(self, prefix: str) -> str:
        return f"{prefix}_{next(self._ids):04d}"

    def next_reply(self) -> Reply:
        return self.replies.popleft() if self.replies else self.default_reply

    def spawn(self, coro: Any) -> asyncio.Task[None]:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task


class _Connection:
    """Protocol state of one connection: the VAD, the active response."""

    def __init__(self, fake: FakeRealtime, ws: ServerConnection, session: FakeSession) -> None:
        self.fake = fake
        self.ws = ws
        self.session = session
        self.vad = _Vad()
        self.speech_item = ""
        self.response_task: asyncio.Task[None] | None = None
        self.response_id: str | None = None
        self.response_metadata: dict[str, Any] | None = None

    async def send(self, event: dict[str, Any]) -> None:
        event.setdefault("event_id", self.fake.next_id("event"))
        self.session.sent.append(event)
        with contextlib.suppress(ConnectionClosed):
            await self.ws.send(json.dumps(event))

    async def error(self, code: str, message: str, event: dict[str, Any]) -> None:
        await self.send(
            {
                "type": "error",
                "error": {
                    "type": "invalid_request_error",
                    "code": code,
                    "message": message,
                    "event_id": event.get("event_id"),
                },
            }
        )

    async def on_event(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "session.update":
            self.session.config.update(event["session"])
            await self.send({"type": "session.updated", "session": self.session.config})
        elif kind == "input_audio_buffer.append":
            audio = base64.b64decode(event["audio"])
            self.session.audio += audio
            await self.on_audio(audio)
        elif kind == "response.create":
            if self.response_task is not None:
                await self.error(
                    "conversation_already_has_active_response", "a response is active", event
                )
                return
            self.start_response(event.get("response") or {})
        elif kind == "response.cancel":
            if self.response_task is None or event.get("response_id") != self.response_id:
                await self.error("response_cancel_not_active", "no active response", event)
                return
            await self.stop_response(status="cancelled")
        elif kind == "conversation.item.truncate":
            generated_ms = self.session.items_ms.get(event.get("item_id", ""))
            if generated_ms is None:
                await self.error("item_not_found", "no such item", event)
            elif event.get("audio_end_ms", 0) > generated_ms + 1:
                await self.error("invalid_value", "audio_end_ms is past the audio", event)
            else:
                await self.send({"type": "conversation.item.truncated", **event})
        elif kind == "conversation.item.delete":
            item_id = event.get("item_id", "")
            if item_id in self.session.user_items:
                self.session.user_items.remove(item_id)
            elif self.session.items_ms.pop(item_id, None) is None:
                await self.error("item_not_found", "no such item", event)
                return
            self.session.deleted.append(item_id)
            await self.send({"type": "conversation.item.deleted", "item_id": item_id})
        elif kind == "conversation.item.create":
            item = {"id": self.fake.next_id("item"), **event.get("item", {})}
            if item.get("type") == "function_call_output":
                call_id = str(item.get("call_id", ""))
                if call_id not in self.session.calls:
                    await self.error("invalid_value", f"no function call {call_id}", event)
                    return
                self.session.outputs[call_id] = str(item.get("output", ""))
            await self.send({"type": "conversation.item.added", "item": item})

    async def on_audio(self, audio: bytes) -> None:
        if self.session.audio_format == "audio/pcmu":
            pcm, rate_hz = ulaw_to_pcm16(audio), 8000
        else:
            pcm, rate_hz = audio, 24000
        detection = self.session.turn_detection
        silence_ms = int(detection.get("silence_duration_ms", 500))
        for what in self.vad.push(pcm, rate_hz, silence_ms):
            if what == "started":
                # the user item that the speech becomes is named when it starts
                self.speech_item = item_id = self.fake.next_id("item")
                await self.send(
                    {
                        "type": "input_audio_buffer.speech_started",
                        "audio_start_ms": self.vad.position_ms,
                        "item_id": item_id,
                    }
                )
                if detection.get("interrupt_response", True) and self.response_task is not None:
                    await self.stop_response(status="cancelled")
                continue
            item_id = self.speech_item
            self.session.user_items.append(item_id)
            await self.send(
                {
                    "type": "input_audio_buffer.speech_stopped",
                    "audio_end_ms": self.vad.position_ms,
                    "item_id": item_id,
                }
            )
            await self.send({"type": "input_audio_buffer.committed", "item_id": item_id})
            await self.send(
                {
                    "type": "conversation.item.input_audio_transcription.completed",
                    "item_id": item_id,
                    "content_index": 0,
                    "transcript": self.fake.user_transcript,
                }
            )
            if detection.get("create_response", True) and self.response_task is None:
                self.start_response({})

    # -- responses ---------------------------------------------------------------------------

    def start_response(self, params: dict[str, Any]) -> None:
        self.response_id = self.fake.next_id("resp")
        self.response_metadata = params.get("metadata")
        reply = self.fake.next_reply()
        self.response_task = self.fake.spawn(self.stream_response(self.response_id, reply))

    async def stop_response(self, status: str = "") -> None:
        task, self.response_task = self.response_task, None
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        if status:
            await self.send(
                {
                    "type": "response.done",
                    "response": {
                        "id": self.response_id,
                        "status": status,
                        "metadata": self.response_metadata,
                        "output": [],
                    },
                }
            )

    def reply_audio(self, reply: Reply) -> tuple[bytes, float]:
        """The reply's tone in the session's output format, and bytes per ms."""
        if self.session.audio_format == "audio/pcmu":
            return pcm16_to_ulaw(tone_pcm(reply.audio_ms, reply.freq_hz, 8000)), 8.0
        return tone_pcm(reply.audio_ms, reply.freq_hz, 24000), 48.0

    async def stream_response(self, response_id: str, reply: Reply) -> None:
        if self.fake.response_delay_s:
            await asyncio.sleep(self.fake.response_delay_s)
        meta = self.response_metadata
        await self.send(
            {
                "type": "response.created",
                "response": {"id": response_id, "status": "in_progress", "metadata": meta},
            }
        )
        output: list[dict[str, Any]] = []
        if reply.speak:
            item_id = self.fake.next_id("item")
            item = {"id": item_id, "type": "message", "role": "assistant"}
            await self.send(
                {"type": "response.output_item.added", "response_id": response_id, "item": item}
            )
            audio, bytes_per_ms = self.reply_audio(reply)
            step = int(DELTA_MS * bytes_per_ms)
            self.session.items_ms[item_id] = 0.0
            for index, offset in enumerate(range(0, len(audio), step)):
                chunk = audio[offset : offset + step]
                await self.send(
                    {
                        "type": "response.output_audio.delta",
                        "response_id": response_id,
                        "item_id": item_id,
                        "output_index": 0,
                        "content_index": 0,
                        "delta": base64.b64encode(chunk).decode("ascii"),
                    }
                )
                self.session.items_ms[item_id] += len(chunk) / bytes_per_ms
                if (
                    self.fake.drop_after_deltas is not None
                    and index + 1 >= self.fake.drop_after_deltas
                ):
                    self.fake.drop_after_deltas = None
                    assert self.ws.transport is not None
                    self.ws.transport.abort()  # a dropped socket: no close frame
                    return
                await asyncio.sleep(DELTA_MS / 1000 / self.fake.pace)
            await self.send({"type": "response.output_audio.done", "response_id": response_id})
            await self.send(
                {
                    "type": "response.output_audio_transcript.done",
                    "response_id": response_id,
                    "item_id": item_id,
                    "transcript": reply.transcript,
                }
            )
            output.append({**item, "status": "completed"})
        for name, arguments in reply.tool_calls:
            call = {
                "id": self.fake.next_id("item"),
                "type": "function_call",
                "name": name,
                "call_id": self.fake.next_id("call"),
                "arguments": json.dumps(arguments),
            }
            self.session.calls[call["call_id"]] = name
            output.append(call)
        if reply.end_call:
            call = {
                "id": self.fake.next_id("item"),
                "type": "function_call",
                "name": "end_call",
                "call_id": self.fake.next_id("call"),
                "arguments": json.dumps({"reason": "the caller said goodbye"}),
            }
            await self.send(
                {
                    "type": "response.function_call_arguments.done",
                    "response_id": response_id,
                    **{k: call[k] for k in ("name", "call_id", "arguments")},
                }
            )
            output.append(call)
        self.response_task = None
        await self.send(
            {
                "type": "response.done",
                "response": {
                    "id": response_id,
                    "status": "completed",
                    "metadata": meta,
                    "output": output,
                },
            }
        )


def pcm_rate_from_tone(pcm16: bytes, freq_hz: float, candidate_rates_hz: tuple[int, ...]) -> int:
    """Which sample rate makes ``pcm16`` a ``freq_hz`` tone (the dominant FFT bin)."""
    samples = np.frombuffer(pcm16, dtype=np.int16).astype(np.float64)
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    peak_bin = int(np.argmax(spectrum[1:])) + 1
    return min(candidate_rates_hz, key=lambda r: abs(peak_bin * r / len(samples) - freq_hz))
