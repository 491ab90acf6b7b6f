"""A fake OpenAI API on loopback that the real ``openai`` client talks to over real HTTP.

It serves the three endpoints of the cascaded agent in their wire formats:

* ``POST /v1/audio/transcriptions``: multipart form (``file``, ``model``, ...) -> JSON text;
* ``POST /v1/chat/completions`` with ``stream: true``: server-sent ``chat.completion.chunk``
  events, text deltas token by token, ``tool_calls`` deltas (id and name first, arguments in
  pieces), a ``finish_reason`` chunk and ``data: [DONE]``;
* ``POST /v1/audio/speech``: raw 24 kHz PCM16 streamed in 100 ms chunks.

Tests script it (transcripts, replies, tool calls, per-chunk delays), read back every request
it received, and inject faults per endpoint: an HTTP status (429 with ``Retry-After``, 500,
503, 401), a hang, or a connection dropped after some chunks. Speech is a tone whose length is
proportional to the text (:data:`TTS_MS_PER_CHAR`), so a test can tell what a caller heard.

A scripted transcript belongs to a user turn, not to a request: transcription requests that
carry the same ``X-Client-Request-Id`` (a retry, or a turn transcribed early, in a pause, and
again after the caller spoke on) all get the transcript the first of them got.
"""

from __future__ import annotations

import asyncio
import io
import json
import re
import time
import uuid
import wave
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.fakes.faults import FaultSchedule
from tests.support.serverthread import UvicornThread

Endpoint = Literal["transcriptions", "chat", "speech"]

TTS_RATE_HZ = 24000
TTS_MS_PER_CHAR = 20
TTS_CHUNK_BYTES = TTS_RATE_HZ * 2 // 10  # 100 ms
#: the error event the API streams when the model fails mid-answer
STREAM_ERROR_EVENT = (
    b'data: {"error": {"message": "The server had an error while processing your request.", '
    b'"type": "server_error", "param": null, "code": null}}\n\n'
)


def tts_ms(text: str) -> float:
    """How long the fake's speech for ``text`` lasts."""
    return len(text) * TTS_MS_PER_CHAR


class DroppedConnection(ConnectionResetError):
    """Raised inside a response body: uvicorn then cuts the connection mid-response."""


@dataclass(frozen=True, slots=True)
class Fault:
    kind: Literal["status", "hang", "drop", "event"]
    status: int = 500
    retry_after: str | None = None
    #: for "hang", "drop" and "event": how many body chunks are sent first (0: right after
    #: headers)
    after_chunks: int = 0

    @classmethod
    def http(cls, status: int, retry_after: str | None = None) -> Fault:
        return cls("status", status, retry_after)

    @classmethod
    def hang(cls, after_chunks: int = 0) -> Fault:
        return cls("hang", after_chunks=after_chunks)

    @classmethod
    def drop(cls, after_chunks: int = 0) -> Fault:
        return cls("drop", after_chunks=after_chunks)

    @classmethod
    def error_event(cls, after_chunks: int = 0) -> Fault:
        """A streamed chat answer that ends in an ``error`` event, as the API sends one when
        the model fails after the response has begun."""
        return cls("event", after_chunks=after_chunks)


@dataclass(slots=True)
class ChatScript:
    """One scripted chat answer."""

    text: str
    end_call: bool = False
    #: pause before each streamed chunk
    chunk_delay_s: float = 0.0
    #: tools the answer calls after its text: (name, arguments: a dict, or raw JSON text)
    tool_calls: list[tuple[str, dict[str, Any] | str]] = field(default_factory=list)


@dataclass(slots=True)
class Recorded:
    endpoint: Endpoint
    headers: dict[str, str]
    #: the caller's port: requests with the same one came over the same connection
    client_port: int = 0
    body: dict[str, Any] = field(default_factory=dict)
    started_at: float = field(default_factory=time.monotonic)
    #: when the response's first body byte was handed to the server (streamed endpoints)
    first_byte_at: float | None = None
    finished_at: float | None = None
    fault: Fault | None = None


class FakeOpenAI:
    def __init__(self, api_key: str | None = None) -> None:
        #: when set, requests with another bearer key get 401 like the real API
        self.api_key = api_key
        self.transcripts: deque[str] = deque()
        #: the transcript each request id got first
        self._transcribed: dict[str, str] = {}
        #: when set, it writes every transcript from the request (its ``audio_ms``...) instead
        self.transcript_of: Callable[[Recorded], str] | None = None
        self.default_transcript = "Hello there."
        self.replies: deque[ChatScript] = deque()
        #: when set, it writes every answer from the request (its messages, tools) instead
        self.reply_of: Callable[[Recorded], ChatScript] | None = None
        self.default_reply = ChatScript("Hi! I am a fake model.")
        self.tts_chunk_delay_s = 0.0
        #: a fixed wait before each endpoint's first byte (benchmarks inject provider latency)
        self.first_byte_delay_s: dict[str, float] = {}
        self.requests: list[Recorded] = []
        self._schedule: FaultSchedule[str, Fault] = FaultSchedule()
        self._release: asyncio.Event | None = None
        app = Starlette(
            routes=[
                Route("/v1/audio/transcriptions", self._transcriptions, methods=["POST"]),
                Route("/v1/chat/completions", self._chat, methods=["POST"]),
                Route("/v1/audio/speech", self._speech, methods=["POST"]),
            ]
        )
        self._server = UvicornThread(
            app,
            log_config=None,
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=2,
            # idle connections stay open as long as at a real API's edge, not uvicorn's 5 s
            timeout_keep_alive=120,
        )

    # -- control (test side) ---------------------------------------------------------------

    def start(self) -> FakeOpenAI:
        self._server.start()
        self._release = self._server.call_in_loop(_new_event)
        return self

    def stop(self) -> None:
        loop, release = self._server.loop, self._release
        if loop is not None and release is not None:
            loop.call_soon_threadsafe(release.set)  # let hung handlers finish
        self._server.stop()

    @property
    def base_url(self) -> str:
        return f"{self._server.http}/v1"

    def fail(self, endpoint: Endpoint, fault: Fault, times: int | None = 1) -> None:
        """The next ``times`` requests to ``endpoint`` fail with ``fault`` (None: all)."""
        self._schedule.fail(endpoint, fault, times)

    def heal(self) -> None:
        self._schedule.heal()

    def to(self, endpoint: Endpoint) -> list[Recorded]:
        return [r for r in self.requests if r.endpoint == endpoint]

    async def wait_for(
        self, ready: Callable[[], bool], timeout_s: float = 10.0, what: str = "condition"
    ) -> None:
        deadline = time.monotonic() + timeout_s
        while not ready():
            if time.monotonic() > deadline:
                raise AssertionError(f"fake OpenAI: timed out waiting for {what}")
            await asyncio.sleep(0.02)

    # -- endpoints -------------------------------------------------------------------------

    async def _transcriptions(self, request: Request) -> Response:
        record = self._record("transcriptions", request)
        form = await request.form()
        body: dict[str, Any] = {}
        for key, value in form.multi_items():
            if isinstance(value, UploadFile):
                data = await value.read()
                body[key] = data
                body[f"{key}_name"] = value.filename
                body[f"{key}_type"] = value.content_type
            else:
                body[key] = value
        self._publish(record, body)
        early = await self._refuse(request, record)
        if early is not None:
            return early
        audio = body.get("file")
        if not isinstance(audio, bytes):
            return _error(400, "file is required")
        with wave.open(io.BytesIO(audio), "rb") as wav:
            body["rate_hz"] = wav.getframerate()
            body["audio_ms"] = wav.getnframes() / wav.getframerate() * 1000
        if self.transcript_of is not None:
            text = self.transcript_of(record)
        else:
            text = self._transcript_for(record.headers.get("x-client-request-id", ""))
        payload = json.dumps({"text": text}).encode()
        halves = [payload[: len(payload) // 2], payload[len(payload) // 2 :]]
        return self._stream(record, halves, "application/json", len(payload))

    async def _chat(self, request: Request) -> Response:
        record = self._record("chat", request)
        self._publish(record, await request.json())
        early = await self._refuse(request, record)
        if early is not None:
            return early
        if self.reply_of is not None:
            script = self.reply_of(record)
        else:
            script = self.replies.popleft() if self.replies else self.default_reply
        events = [f"data: {json.dumps(c)}\n\n".encode() for c in _chat_chunks(record, script)]
        events.append(b"data: [DONE]\n\n")
        return self._stream(record, events, "text/event-stream", None, script.chunk_delay_s)

    async def _speech(self, request: Request) -> Response:
        record = self._record("speech", request)
        self._publish(record, await request.json())
        early = await self._refuse(request, record)
        if early is not None:
            return early
        if record.body.get("response_format") != "pcm":
            return _error(400, "this fake only speaks response_format=pcm")
        pcm = tone(tts_ms(str(record.body.get("input", ""))))
        chunks = [pcm[i : i + TTS_CHUNK_BYTES] for i in range(0, len(pcm), TTS_CHUNK_BYTES)]
        return self._stream(
            record, chunks, "application/octet-stream", None, self.tts_chunk_delay_s
        )

    # -- helpers ---------------------------------------------------------------------------

    def _record(self, endpoint: Endpoint, request: Request) -> Recorded:
        """A request as it arrives; tests see it once its body is parsed (:meth:`_publish`)."""
        port = request.client.port if request.client else 0
        record = Recorded(endpoint, dict(request.headers), port)
        record.fault = self._next_fault(endpoint)
        return record

    def _publish(self, record: Recorded, body: dict[str, Any]) -> None:
        record.body = body
        self.requests.append(record)

    def _transcript_for(self, request_id: str) -> str:
        if request_id in self._transcribed:
            return self._transcribed[request_id]
        text = self.transcripts.popleft() if self.transcripts else self.default_transcript
        if request_id:
            self._transcribed[request_id] = text
        return text

    def _next_fault(self, endpoint: str) -> Fault | None:
        return self._schedule.next(endpoint)

    async def _refuse(self, request: Request, record: Recorded) -> Response | None:
        """Authentication and the faults that strike before a response starts."""
        key = self.api_key
        if key is not None and request.headers.get("authorization") != f"Bearer {key}":
            record.finished_at = time.monotonic()
            return _error(401, "Incorrect API key provided.", code="invalid_api_key")
        fault = record.fault
        if fault is None:
            return None
        if fault.kind == "status":
            record.finished_at = time.monotonic()
            headers = {"retry-after": fault.retry_after} if fault.retry_after else {}
            return _error(fault.status, f"injected {fault.status}", headers=headers)
        if fault.kind == "hang" and fault.after_chunks == 0:
            assert self._release is not None
            await self._release.wait()
            return _error(500, "released at shutdown")
        return None

    def _stream(
        self,
        record: Recorded,
        chunks: list[bytes],
        media_type: str,
        length: int | None,
        delay_s: float = 0.0,
    ) -> StreamingResponse:
        fault = record.fault
        release = self._release
        first_byte_delay_s = self.first_byte_delay_s.get(record.endpoint, 0.0)

        async def body() -> AsyncIterator[bytes]:
            if first_byte_delay_s:
                await asyncio.sleep(first_byte_delay_s)
            for i, chunk in enumerate(chunks):
                if fault is not None and i == fault.after_chunks:
                    if fault.kind == "drop":
                        record.finished_at = time.monotonic()
                        raise DroppedConnection("injected: connection dropped")
                    if fault.kind == "hang" and release is not None:
                        await release.wait()
                        return
                    if fault.kind == "event":
                        yield STREAM_ERROR_EVENT
                        record.finished_at = time.monotonic()
                        return
                if delay_s:
                    await asyncio.sleep(delay_s)
                if record.first_byte_at is None:
                    record.first_byte_at = time.monotonic()
                yield chunk
            record.finished_at = time.monotonic()

        headers = {"content-length": str(length)} if length is not None else {}
        return StreamingResponse(body(), media_type=media_type, headers=headers)


def tone(ms: float, freq_hz: float = 440.0) -> bytes:
    t = np.arange(int(TTS_RATE_HZ * ms / 1000)) / TTS_RATE_HZ
    return (8000 * np.sin(2 * np.pi * freq_hz * t)).astype(np.int16).tobytes()


def _chat_chunks(record: Recorded, script: ChatScript) -> list[dict[str, Any]]:
    """The chunks of one streamed answer, as the real API sends them."""
    base = {
        "id": f"chatcmpl-fake{len(record.headers)}",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": record.body.get("model", ""),
        "system_fingerprint": "fp_fake",
    }

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {
            **base,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }

    out = [chunk({"role": "assistant", "content": "", "refusal": None})]
    out += [chunk({"content": token}) for token in re.findall(r"\s*\S+", script.text)]
    calls: list[tuple[str, str]] = [
        (name, args if isinstance(args, str) else json.dumps(args))
        for name, args in script.tool_calls
    ]
    if script.end_call:
        calls.append(("end_call", '{"reason": "the caller said goodbye"}'))
    for index, (name, arguments) in enumerate(calls):
        # as the API streams them: id and name first, then the arguments in pieces
        call_id = f"call_{uuid.uuid4().hex[:16]}"
        named = {"index": index, "id": call_id, "type": "function"}
        out.append(chunk({"tool_calls": [{**named, "function": {"name": name, "arguments": ""}}]}))
        half = len(arguments) // 2
        for piece in (arguments[:half], arguments[half:]):
            out.append(chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]}))
    out.append(chunk({}, "tool_calls" if calls else "stop"))
    return out


def _error(
    status: int, message: str, code: str | None = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    kind = {401: "invalid_request_error", 429: "rate_limit_exceeded"}.get(status, "server_error")
    body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return JSONResponse(body, status_code=status, headers=headers)


async def _new_event() -> asyncio.Event:
    return asyncio.Event()


__all__ = ["ChatScript", "FakeOpenAI", "Fault", "Recorded", "tone", "tts_ms"]
