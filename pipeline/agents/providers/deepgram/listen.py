"""Deepgram streaming recognition (Nova-3 or Flux, directly or through Cloudflare AI
Gateway) as a call's :class:`StreamingSpeechToText` stage.

One socket per call, opened when the call starts and kept for all of it:

* :meth:`DeepgramListen.feed` never blocks: frames go to an :class:`AudioHold`. While the
  socket is up, nothing is waiting to be sent and the socket takes writes, the frame is
  written to it at once, in ``feed`` (:func:`send_now`): a task woken per frame cost more
  than everything else a frame does. Otherwise a sender task writes what is held (after a
  reconnect, while the socket pushes back); with no audio for ``keepalive_s`` it keeps the
  socket alive (Nova-3's ``KeepAlive``; Flux, which has none, hears a little silence);
* a reader task tells the cascade the turns (:mod:`.listen_turns`);
* a dropped socket is opened again with backoff, and the audio the recogniser had not yet
  answered for (the turn under way) is sent again first, so the turn is not lost;
* after ``reconnect_attempts`` failures in a row the stream is *lost*: the cascade's own
  endpointer finds the turns and :meth:`DeepgramListen.transcribe` hears each on a socket of
  its own (:mod:`.listen_once`), while the stage keeps trying, slowly, and says
  ``connected`` when the stream is back. A permanent failure (a bad key, a refused query)
  is reported once and ends :meth:`DeepgramListen.listen`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time

from websockets.asyncio.client import ClientConnection
from websockets.protocol import State

from pipeline.agents.base import CallInfo
from pipeline.agents.cascade.stages import Attempt, StageFactory, StreamingSpeechToText, TurnEvents
from pipeline.agents.providers.deepgram.listen_hold import AudioHold
from pipeline.agents.providers.deepgram.listen_once import FluxOnce, NovaOnce, transcribe_once
from pipeline.agents.providers.deepgram.listen_options import ListenOptions, listen_spec, stream_url
from pipeline.agents.providers.deepgram.listen_turns import (
    FluxReader,
    NoEvents,
    NovaReader,
    TurnReader,
)
from pipeline.agents.providers.websocket import (
    PermanentReporter,
    StreamError,
    classify,
    describe,
    open_socket,
)
from pipeline.agents.retry import Retry
from pipeline.audio import AudioSpec
from pipeline.call_logger import CallLog

log = logging.getLogger("pipeline.agents.providers.deepgram")

#: the most audio one message carries (audio sent again after a drop goes in pieces; live
#: frames go as they come)
SEND_CHUNK_MS = 250


#: what a socket says when it opens, before it has heard anything
GREETINGS = frozenset({"Connected", "Metadata"})


class RecognizerStalled(TimeoutError):
    """The stream took a whole turn's audio and answered nothing (transient: reopened)."""


class DeepgramListen(StreamingSpeechToText):
    def __init__(
        self,
        options: ListenOptions,
        spec: AudioSpec,
        call: CallInfo,
        reporter: PermanentReporter,
    ) -> None:
        self.provider = options.access.provider
        self.input_spec = spec
        self._options = options
        self._reporter = reporter
        self._log = CallLog.of(log, call.call_id, call.transport)
        self._url = stream_url(options, spec)
        self._name = f"{options.access.provider} {options.model}"
        self._hold = AudioHold(spec, options.hold_s)
        self._reader: TurnReader = (
            FluxReader(self._hold) if options.model == "flux" else NovaReader(self._hold)
        )
        self._idle_replay_bytes = self._hold.bytes_for_s(options.idle_replay_s)
        silence = b"\xff" if spec.encoding == "ulaw" else b"\x00\x00"
        self._silence = silence * (spec.rate_hz * options.keepalive_silence_ms // 1000)
        self._ws: ClientConnection | None = None
        #: the current socket has answered something (so it was healthy)
        self._answered = False
        self._closing = False
        self._stop = asyncio.Event()
        #: when audio (or a keepalive) last went to the socket
        self._last_sent_s = time.monotonic()
        #: the cascade found the stream silent through a whole turn (see :meth:`stalled`)
        self._stall = asyncio.Event()
        #: stalls in a row, with no answer in between
        self._stalls = 0

    # -- Stage -----------------------------------------------------------------------------

    def classify(self, exc: Exception) -> Retry | None:
        return classify(exc)

    def report_permanent(self, exc: Exception) -> None:
        self._reporter.report(self.kind, self._options.access.where(self._options.model), exc)

    async def aclose(self) -> None:
        """``CloseStream``, then a short wait for the recogniser to close the socket; what it
        says meanwhile is no longer told (the call is over)."""
        if self._closing:
            return
        self._closing = True
        self._reader.events = NoEvents()
        self._stop.set()
        self._hold.wake()
        ws = self._ws
        if ws is None:
            return
        try:
            await ws.send(json.dumps({"type": "CloseStream"}))
            await asyncio.wait_for(ws.wait_closed(), self._options.close_wait_s)
        except Exception as exc:  # the socket was going anyway
            self._log.debug("deepgram stream did not close cleanly: %s", describe(exc))
        finally:
            await ws.close()

    # -- SpeechToText ----------------------------------------------------------------------

    async def transcribe(self, utterance: bytes, attempt: Attempt) -> str:
        reader = FluxOnce() if self._options.model == "flux" else NovaOnce()
        text = await transcribe_once(
            self._url,
            self._options.access.headers(),
            reader,
            utterance,
            self.input_spec,
            attempt.timeout_s,
            self._name,
        )
        self._log.debug(
            "%s one-shot transcription %s: %d chars",
            self._name,
            attempt.request_id,
            len(text),
            extra={"turn_id": attempt.turn_id},
        )
        return text

    # -- StreamingSpeechToText -------------------------------------------------------------

    def feed(self, audio: bytes) -> None:
        if self._closing:
            return
        hold = self._hold
        ws = self._ws
        if ws is None or hold.pending_bytes or not can_send_now(ws):
            hold.append(audio)  # the sender task sends it
            return
        hold.append(audio, wake=False)
        send_now(ws, hold.take(len(audio)))
        self._last_sent_s = time.monotonic()
        hold.trim(self._reader.keep_from(self._idle_replay_bytes))

    def stalled(self) -> None:
        if self._ws is None or self._closing:
            return
        self._stalls += 1
        self._stall.set()

    async def listen(self, events: TurnEvents) -> None:
        if self._closing:
            return
        self._reader.events = events  # aclose silences it: the call is over
        try:
            await self._run()
        finally:
            self._reader.events = NoEvents()

    # -- the stream ------------------------------------------------------------------------

    async def _run(self) -> None:
        """Connect, serve, reconnect; returns when the call closes the stage."""
        failures = 0
        lost = False
        while not self._closing:
            try:
                ws = await open_socket(
                    self._url,
                    self._options.access.headers(),
                    self._options.connect_timeout_s,
                    self._name,
                )
            except Exception as exc:
                failures += 1
                lost = await self._failed(exc, failures, lost)
                continue
            try:
                if self._closing:  # closed during the handshake
                    return
                self._connected(ws, lost)
                lost = False
                opened_s = time.monotonic()
                try:
                    await self._serve(ws)
                except Exception as exc:
                    if self._closing:
                        return
                    lived_s = time.monotonic() - opened_s
                    healthy = self._answered or lived_s >= self._options.healthy_after_s
                    failures = 1 if healthy else failures + 1
                    if isinstance(exc, RecognizerStalled):  # once: again; twice: lost
                        failures = 1 if self._stalls < 2 else self._options.reconnect_attempts + 1
                    self._log.warning(
                        "%s stream dropped after %.1f s (%s)", self._name, lived_s, describe(exc)
                    )
                    lost = await self._failed(exc, failures, lost)
            finally:
                self._ws = None
                await ws.close()

    def _connected(self, ws: ClientConnection, lost: bool) -> None:
        """A socket is up: it hears the call from where the recogniser needs it, or, after
        the stream was lost (the endpointer heard what came meanwhile), from now on."""
        if lost:
            self._reader.forget(self._hold.to_live())
        else:
            self._hold.rewind(self._reader.keep_from(self._idle_replay_bytes))
        self._ws = ws
        self._answered = False
        replay_ms = self.input_spec.duration_ms(self._hold.pending_bytes)
        request_id = ws.response.headers.get("dg-request-id", "") if ws.response else ""
        self._log.info(
            "%s stream connected%s; sending %.0f ms of held audio",
            self._name,
            f" (request {request_id})" if request_id else "",
            replay_ms,
        )
        self._reader.events.connected()

    async def _failed(self, exc: Exception, failures: int, lost: bool) -> bool:
        """After a failed connection or a drop: raises a permanent error (once the cascade
        is told), else waits before the next attempt. Returns whether the stream is lost."""
        verdict = classify(exc)
        events = self._reader.events
        if self._closing:
            return lost
        if verdict is None:
            if not lost:
                events.lost(exc)
            self.report_permanent(exc)
            raise exc
        if not lost and failures > self._options.reconnect_attempts:
            self._log.warning(
                "%s stream lost after %d failed attempts (%s); the call's endpointer finds "
                "the turns until it is back",
                self._name,
                failures,
                describe(exc),
            )
            events.lost(exc)
            lost = True
        if lost:
            delay_s = self._options.slow_retry_s
        else:
            delay_s = self._options.reconnect_policy.backoff_s(failures)
            if verdict.after_s is not None:
                delay_s = max(delay_s, min(verdict.after_s, self._options.slow_retry_s))
        self._log.log(  # while lost, once every few seconds for as long as it lasts: quieter
            logging.DEBUG if lost else logging.INFO,
            "%s stream: %s; next attempt in %.2f s",
            self._name,
            describe(exc),
            delay_s,
        )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), delay_s)
        return lost

    async def _serve(self, ws: ClientConnection) -> None:
        """Send and read until the socket fails (raised) or closes (``ConnectionClosed``,
        also raised: a socket the call did not close is a drop)."""
        self._stall.clear()
        sender = asyncio.create_task(self._send(ws), name="deepgram-listen-send")
        reader = asyncio.create_task(self._read(ws), name="deepgram-listen-read")
        watch = asyncio.create_task(self._watch_stall(), name="deepgram-listen-stall")
        try:
            # the sender ends quietly when the call closes; the reader then sees the close
            done, _ = await asyncio.wait(
                {sender, reader, watch}, return_when=asyncio.FIRST_EXCEPTION
            )
        finally:
            for task in (sender, reader, watch):
                task.cancel()
            await asyncio.gather(sender, reader, watch, return_exceptions=True)
        for task in (watch, reader, sender):
            if task in done and not task.cancelled():
                error = task.exception()
                if error is not None:
                    raise error

    async def _watch_stall(self) -> None:
        await self._stall.wait()
        raise RecognizerStalled(f"{self._name} answered nothing through a whole turn")

    async def _send(self, ws: ClientConnection) -> None:
        options = self._options
        hold = self._hold
        chunk_bytes = hold.bytes_for_s(SEND_CHUNK_MS / 1000)
        self._last_sent_s = time.monotonic()
        while not self._closing:
            chunk = hold.take(chunk_bytes)
            if chunk:
                await ws.send(chunk)
                self._last_sent_s = time.monotonic()
                hold.trim(self._reader.keep_from(self._idle_replay_bytes))
                continue
            # live frames go out in feed() meanwhile, and count as sent
            idle_s = time.monotonic() - self._last_sent_s
            if idle_s < options.keepalive_s:
                await hold.wait(options.keepalive_s - idle_s)
            elif options.model == "flux":
                hold.append(self._silence)  # sent next time round, counted as call audio
            else:
                await ws.send(json.dumps({"type": "KeepAlive"}))
                self._last_sent_s = time.monotonic()

    async def _read(self, ws: ClientConnection) -> None:
        while True:
            raw = await ws.recv()
            if isinstance(raw, bytes):
                continue
            self._answered = True
            try:
                message = json.loads(raw)
                if isinstance(message, dict):
                    if message.get("type") not in GREETINGS:
                        self._stalls = 0  # it hears: not stalled
                    self._reader.read(message)
            except StreamError:
                raise
            except (ValueError, TypeError, KeyError, AttributeError, IndexError) as exc:
                # a message of a shape we do not know must not end the stream for good
                self._log.warning("%s: unreadable message skipped (%r)", self._name, exc)


def can_send_now(ws: ClientConnection) -> bool:
    """Whether a frame may be written to ``ws`` right now, outside ``ws.send``: the socket is
    open, its transport is not pushing back, and no fragmented message is half sent."""
    # the attributes are the asyncio client's (websockets 14 and later); where one is
    # missing, the frame takes the ordinary path through the sender task
    return (
        ws.protocol.state is State.OPEN
        and getattr(ws, "paused", True) is False
        and getattr(ws, "send_in_progress", True) is None
    )


def send_now(ws: ClientConnection, audio: bytes) -> None:
    """Write one binary message synchronously: what ``ws.send`` does, without its context
    manager, lock checks and drain (:func:`can_send_now` checked those conditions)."""
    ws.protocol.send_binary(audio)
    ws.send_data()


class DeepgramListenFactory(StageFactory[DeepgramListen]):
    """Every call's Deepgram recognition stage; permanent failures are reported once per
    process, whichever call met them."""

    def __init__(self, options: ListenOptions) -> None:
        self.options = options
        self.provider = options.access.provider
        self._reporter = PermanentReporter(self.provider, options.access.key_setting)

    def create(self, call: CallInfo) -> DeepgramListen:
        spec = listen_spec(self.options, call.audio_in)
        return DeepgramListen(self.options, spec, call, self._reporter)
