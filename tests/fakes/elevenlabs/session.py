"""One accepted connection of the fake ElevenLabs: contexts, generation, timeouts, faults.

Behaviour and where it comes from (paths in ``elevenlabs/elevenlabs-docs`` unless noted):

* Text is buffered per context and spoken as :mod:`.context` describes.
* stream-input: ``{"text": ""}`` ends the stream (AsyncAPI ``CloseConnection``): what is
  buffered is spoken, then ``{"isFinal": true}`` (``FinalOutput``) and a 1000 close (the SDK's
  ``realtime_tts.py`` takes 1000 as a normal end). A blank ``" "`` keeps it alive (guide
  ``developer-guides/websockets.mdx``, "Tips").
* multi-stream-input (``best-practices/conversational-agents.mdx`` and the AsyncAPI): the
  first message to an unknown ``context_id`` opens that context (no id: the default context);
  ``{"context_id", "text": ""}`` only resets its inactivity clock; ``close_context`` drops the
  text not yet flushed, lets audio already flushed finish ("If it has already been set to flush
  it will continue flushing", schema ``CloseContext``), then sends ``{"isFinal": true,
  "contextId"}``; a bare flush sends no ``isFinal`` (bolna-ai/bolna#790, checked against the
  live API); ``close_socket`` does the same for every context, then closes with 1000; at most
  5 contexts, counted until their ``isFinal`` (livekit/agents-js#1985).
* Inactivity (query ``inactivity_timeout``, default 20 s): an idle context is closed (with an
  ``isFinal``: the documents say only that it is "closed automatically"); a socket that gets no
  message at all is closed with the ``input_timeout_exceeded`` error and 1008.
* ``voice_settings`` / ``generation_config`` belong to a context's first message; a later message
  that changes them closes the socket with 1008 (AsyncAPI ``SendText``; reason text from
  pipecat-ai/pipecat#4541).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Coroutine
from typing import Any, Protocol

from starlette.types import Receive, Scope, Send

from tests.fakes.elevenlabs import wire
from tests.fakes.elevenlabs.context import SETTINGS_FIELDS, Context
from tests.fakes.elevenlabs.records import ClientMessage, Connection, ServerMessage, redact


class Host(Protocol):
    """What a session reads from the fake that accepted it (tests may change it any time)."""

    api_key: str
    auth_tokens: set[str]
    pace: float
    first_audio_delay_s: float
    max_contexts: int
    chars_per_message: int
    close_drains_flushed: bool
    inactivity_timeout_s: float
    stopping: bool

    def abort(self, client: Any) -> None: ...

    async def wait_released(self) -> None: ...


class Session:
    def __init__(
        self,
        host: Host,
        conn: Connection,
        scope: Scope,
        channel: tuple[Receive, Send],
        query: dict[str, str],
        headers: dict[str, str],
    ) -> None:
        self.host = host
        self.conn = conn
        #: as received: the connection's record has the credentials redacted
        self.query = query
        self.headers = headers
        self.client = scope.get("client")
        self.receive, self.send = channel
        self.fault = conn.fault
        self.fault_fired = False
        self.stalled = False
        self.closing = False
        self.ending = False  # close_socket received: later messages are ignored
        self.authed: bool | None = None
        self.fmt = wire.audio_format(self.query.get("output_format", wire.DEFAULT_OUTPUT_FORMAT))
        self.auto_mode = wire.flag(self.query, "auto_mode", False)
        self.timeout_s = host.inactivity_timeout_s
        self.contexts: dict[str | None, Context] = {}
        self.draining: set[Context] = set()
        self.last_message_s = time.monotonic()
        self._tasks: set[asyncio.Task[None]] = set()

    # -- lifecycle ---------------------------------------------------------------------------

    async def run(self) -> None:
        try:
            if await self._start():
                self._spawn(self._watch())
            await self._read()
        finally:
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            if self.conn.closed_at_s is None:
                self.conn.closed_at_s = time.monotonic()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _start(self) -> bool:
        """Checks that need no client message; False when the socket is already failing."""
        fault = self.fault
        if fault is not None and fault.after_messages == 0:
            self.fault_fired = True
            if fault.kind == "drop":
                self._drop()
                return False
            if fault.kind == "event":
                await self._fail(fault.error, fault.message)
                return False
            self.stalled = fault.kind == "stall"
        key = self.headers.get("xi-api-key")
        self.authed = self._auth(
            key, self.query.get("authorization") or self.headers.get("authorization")
        )
        if self.authed is False:
            await self._fail(wire.INVALID_API_KEY, "Invalid API key")
            return False
        if self.authed:
            self.conn.auth = "header" if key is not None else "token"
        name = self.query.get("output_format", wire.DEFAULT_OUTPUT_FORMAT)
        if self.fmt is None:
            await self._fail(
                wire.UNSUPPORTED_BY_FAKE,
                f"fake ElevenLabs: output_format {name} is not encoded here; "
                f"use one of {', '.join(wire.OUTPUT_FORMATS)}",
            )
            return False
        raw = self.query.get("inactivity_timeout")
        if raw is not None:
            # the API takes whole seconds; the fake also takes fractions, for fast tests
            try:
                self.timeout_s = float(raw)
            except ValueError:
                self.timeout_s = -1.0
            if not 0 < self.timeout_s <= wire.MAX_INACTIVITY_TIMEOUT_S:
                await self._fail(wire.INVALID_MESSAGE, f"invalid inactivity_timeout {raw}")
                return False
        return True

    def _auth(self, key: Any, token: Any) -> bool | None:
        """The AsyncAPI allows ``xi-api-key`` (header, or field of the first message) or an
        ``authorization`` token (query, header or first message). None: not given here."""
        if isinstance(key, str):
            return key == self.host.api_key
        if isinstance(token, str):
            return token.removeprefix("Bearer ") in self.host.auth_tokens
        return None

    async def _read(self) -> None:
        while True:
            message = await self.receive()
            if message["type"] == "websocket.disconnect":
                if self.conn.closed_by is None:
                    self.conn.closed_by = "client"
                    self.conn.close_code = message.get("code")
                    self.conn.closed_at_s = time.monotonic()
                return
            if message["type"] != "websocket.receive":
                continue
            now = time.monotonic()
            self.last_message_s = now
            data = _parse(message.get("text"))
            raw = str(message.get("text") or message.get("bytes")).replace(self.host.api_key, "")
            shown = redact(data) if data is not None else {"_invalid": raw}
            self.conn.received.append(ClientMessage(now, shown))
            if self.closing or self.stalled or self.ending:
                continue
            if data is None:
                await self._fail(wire.INVALID_MESSAGE, "messages must be JSON objects")
            elif await self._first_message_auth(data):
                await (self._on_multi(data) if self.conn.multi else self._on_single(data))

    async def _first_message_auth(self, data: dict[str, Any]) -> bool:
        if self.authed is not None:
            return True
        key = data.get("xi-api-key", data.get("xi_api_key"))
        self.authed = self._auth(key, data.get("authorization"))
        if self.authed:
            self.conn.auth = "message"
            return True
        text = "Invalid API key" if self.authed is False else "No API key given"
        await self._fail(wire.INVALID_API_KEY, text)
        return False

    # -- client messages ---------------------------------------------------------------------

    async def _on_single(self, data: dict[str, Any]) -> None:
        ctx = self.contexts.get(None)
        if ctx is None:
            ctx = self._open(None, data)
        elif ctx.closing or not await self._same_settings(ctx, data):
            return
        ctx.last_s = time.monotonic()
        text = data.get("text")
        if text == "":
            ctx.emit()  # the end of the stream speaks what is buffered
            ctx.close(drain=True)
            return
        ctx.feed(
            text if isinstance(text, str) else "",
            flush=data.get("flush") is True,
            try_trigger=data.get("try_trigger_generation") is True,
            auto_mode=self.auto_mode,
        )

    async def _on_multi(self, data: dict[str, Any]) -> None:
        if data.get("close_socket") is True:
            self.ending = True
            self._spawn(self._close_socket())
            return
        context_id = ClientMessage(0.0, data).context_id
        ctx = self.contexts.get(context_id)
        if data.get("close_context") is True:
            if ctx is not None:
                self._retire(ctx, drain=self.host.close_drains_flushed)
            return
        if ctx is None:
            if len(self.contexts) + len(self.draining) >= self.host.max_contexts:
                limit = self.host.max_contexts
                await self._fail(wire.MAX_ACTIVE_CONTEXTS, wire.max_contexts_text(limit))
                return
            ctx = self._open(context_id, data)
        elif not await self._same_settings(ctx, data):
            return
        ctx.last_s = time.monotonic()
        text = data.get("text")
        ctx.feed(
            text if isinstance(text, str) else "",
            flush=data.get("flush") is True,
            try_trigger=data.get("try_trigger_generation") is True,
            auto_mode=self.auto_mode,
        )

    async def _same_settings(self, ctx: Context, data: dict[str, Any]) -> bool:
        for name in SETTINGS_FIELDS:
            if name in data and data[name] != ctx.settings[name]:
                await self._fail(wire.SETTINGS_CHANGED, wire.settings_changed_text(name))
                return False
        return True

    def _open(self, context_id: str | None, first: dict[str, Any]) -> Context:
        ctx = Context(context_id, first)
        self.contexts[context_id] = ctx
        ctx.task = self._spawn(self._speak(ctx))
        return ctx

    def _retire(self, ctx: Context, *, drain: bool) -> None:
        """Close a context; its id may be reused at once, for a new context."""
        if self.contexts.get(ctx.id) is ctx:
            del self.contexts[ctx.id]
        self.draining.add(ctx)
        ctx.close(drain=drain)

    async def _close_socket(self) -> None:
        for ctx in list(self.contexts.values()):
            self._retire(ctx, drain=True)
        speakers = [ctx.task for ctx in self.draining if ctx.task is not None]
        if speakers:
            await asyncio.wait(speakers)
        await self._close(1000, "")

    # -- speech ------------------------------------------------------------------------------

    async def _speak(self, ctx: Context) -> None:
        while True:
            text = await ctx.queue.get()
            if text is None:
                break
            if ctx.cut:
                continue
            ctx.speaking = True
            try:
                sent = await self._generate(ctx, text)
            finally:
                ctx.speaking = False
                ctx.last_s = time.monotonic()
            if not sent:
                return
        sent = await self._send(wire.final_message(ctx.id, self.conn.multi))
        self.draining.discard(ctx)
        if sent and not self.conn.multi:
            await self._close(1000, "")

    async def _generate(self, ctx: Context, text: str) -> bool:
        """One generation: the injected wait, then its audio in messages of
        ``chars_per_message`` characters, paced ``pace`` times faster than real time."""
        assert self.fmt is not None
        if self.host.first_audio_delay_s:
            await asyncio.sleep(self.host.first_audio_delay_s)
        pieces = wire.speak(text, self.fmt)
        step = max(1, self.host.chars_per_message)
        for start in range(0, len(text), step):
            if ctx.cut:
                return True
            chars = text[start : start + step]
            chunk = b"".join(pieces[start : start + step])
            if not await self._send(wire.audio_message(chunk, chars, ctx.id, self.conn.multi)):
                return False
            await asyncio.sleep(wire.tts_ms(chars) / 1000 / self.host.pace)
        return True

    # -- timeouts ----------------------------------------------------------------------------

    async def _watch(self) -> None:
        tick_s = min(0.05, self.timeout_s / 10)
        while not self.closing:
            await asyncio.sleep(tick_s)
            if self.stalled or self.closing or self.ending:
                continue
            now = time.monotonic()
            for ctx in list(self.contexts.values()):
                if self.conn.multi and not ctx.busy and now - ctx.last_s >= self.timeout_s:
                    self._retire(ctx, drain=True)
            everyone = [*self.contexts.values(), *self.draining]
            last_s = max([self.last_message_s, *(c.last_s for c in everyone)])
            idle = not self.draining and not any(c.busy for c in everyone)
            if idle and now - last_s >= self.timeout_s:
                await self._fail(wire.INPUT_TIMEOUT, wire.input_timeout_text(self.timeout_s))

    # -- sending, faults and closing ---------------------------------------------------------

    async def _send(self, message: dict[str, Any]) -> bool:
        """Send one protocol message unless a fault strikes first; False: the socket is gone."""
        if self.closing:
            return False
        fault = self.fault
        if (
            fault is not None
            and not self.fault_fired
            and fault.kind != "status"
            and len(self.conn.sent) >= fault.after_messages
        ):
            self.fault_fired = True
            if fault.kind == "drop":
                self._drop()
                return False
            if fault.kind == "event":
                await self._fail(fault.error, fault.message)
                return False
            self.stalled = True
        return await self._emit(message)

    async def _emit(self, message: dict[str, Any]) -> bool:
        if self.stalled:
            await self.host.wait_released()
        if self.closing or self.host.stopping:
            return False
        try:
            await self.send({"type": "websocket.send", "text": json.dumps(message)})
        except (OSError, RuntimeError):  # the peer is gone
            return False
        self.conn.sent.append(ServerMessage(time.monotonic(), message))
        return True

    async def _fail(self, error: str, message: str) -> None:
        """The API's way to fail a socket: an error message, then a 1008 close."""
        if self.closing:
            return
        await self._emit(wire.error_message(error, message))
        await self._close(wire.POLICY_VIOLATION, wire.close_reason(message))

    async def _close(self, code: int, reason: str) -> None:
        if self.stalled:
            await self.host.wait_released()
        if self.closing:
            return
        self.closing = True
        self.conn.closed_by, self.conn.close_code, self.conn.close_reason = "server", code, reason
        self.conn.closed_at_s = time.monotonic()
        with contextlib.suppress(OSError, RuntimeError):
            await self.send({"type": "websocket.close", "code": code, "reason": reason})

    def _drop(self) -> None:
        self.closing = True
        self.conn.closed_by, self.conn.close_code = "drop", 1006
        self.conn.closed_at_s = time.monotonic()
        self.host.abort(self.client)


def _parse(text: Any) -> dict[str, Any] | None:
    if not isinstance(text, str):
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None
