"""An ESP32 toy running the Elato firmware, as a pure model: messages and times in, device
behaviour out (no sockets, no asyncio, no clock reads; every time is a ``now_s`` argument).

It is deliberately as unforgiving as the firmware:

* every binary message is decoded as exactly one Opus packet at 48 kHz, and only while the
  firmware would play it (between ``RESPONSE.CREATED`` and ``RESPONSE.COMPLETE``/``ERROR``,
  in ``SPEAKING``, outside the listen hold);
* playback is paced like the device's 10 240-byte ring with no jitter buffer:
  :meth:`ToyModel.read_at_s` says when the device reads its socket again, so a client that
  honours it makes TCP back-pressure pace the sender;
* the microphone may stream only while ``LISTENING`` (:attr:`ToyModel.mic_open`).

Whatever the real device would choke on, or that breaks a MUST of the spec that the device
can observe, is appended to :attr:`ToyModel.protocol_errors` instead of raising, so one run
reports every problem.

Device states (:class:`~transports.esp32.emulator.device.ToyState`, the firmware's names):

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
    after ``SESSION.END``: everything stops and the socket is to be closed.

The firmware's timers (the 50 ms ``vTaskDelay`` on CREATED, during which it reads nothing,
and the listen hold) are due times here: :meth:`ToyModel.due_s` says when the next one
fires and :meth:`ToyModel.advance` fires every one due. Each input first advances to its
``now_s``, and state changes are stamped with the ``now_s`` that applied them.
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any

import opuslib

from transports.esp32.emulator.auth import (
    VOLUME_RANGE,
    as_float,
    as_int,
    auth_problems,
    is_json_int,
    outside,
)
from transports.esp32.emulator.device import (
    BYTES_PER_SAMPLE,
    CREATED_TO_SPEAKING_MS,
    DEVICE_DECODE_RATE_HZ,
    DEVICE_HOLD_MS,
    DEVICE_RING_BYTES,
    MAX_MESSAGE_BYTES,
    MAX_PACKET_MS,
    MS_PER_S,
    OPUS_RATES_HZ,
    SERVER_COMMITTED,
    SERVER_COMPLETE,
    SERVER_CREATED,
    SERVER_ERROR,
    SERVER_SESSION_END,
    ToyResponse,
    ToyState,
)
from transports.esp32.emulator.playback import PlayClock

#: how much of an offending text message an error quotes
QUOTE_CHARS = 80


class ToyAction(StrEnum):
    """What the device does to its connection in reaction to a message."""

    CLOSE_SOCKET = "close-socket"  # SESSION.END: the device sleeps and hangs up


class ToyModel:
    """One toy's firmware, fed what arrives on its socket (see the module doc)."""

    def __init__(
        self,
        *,
        decode_rate_hz: int = DEVICE_DECODE_RATE_HZ,
        realtime_playback: bool = True,
        ring_bytes: int = DEVICE_RING_BYTES,
        hold_ms: int = DEVICE_HOLD_MS,
        speaking_delay_ms: int = CREATED_TO_SPEAKING_MS,
    ) -> None:
        if decode_rate_hz not in OPUS_RATES_HZ:
            raise ValueError(f"decode_rate_hz must be one of {OPUS_RATES_HZ}")
        self.decode_rate_hz = decode_rate_hz
        self.hold_ms = hold_ms
        self.speaking_delay_ms = speaking_delay_ms
        self.ring_ms = ring_bytes / BYTES_PER_SAMPLE / decode_rate_hz * MS_PER_S
        self.clock = PlayClock(realtime=realtime_playback, ring_s=self.ring_ms / MS_PER_S)

        self.state: str = ToyState.IDLE
        #: (time, state) for every transition, for timing assertions
        self.state_history: list[tuple[float, str]] = []
        self.auth: dict[str, Any] | None = None
        self.volume_control: int | None = None
        self.pitch_factor: float | None = None
        self.connected_at: float | None = None
        self.first_message_at: float | None = None
        #: (time, "text", parsed JSON or raw str) / (time, "binary", length)
        self.messages: list[tuple[float, str, object]] = []
        self.responses: list[ToyResponse] = []
        self.protocol_errors: list[str] = []
        self.dropped_binary = 0
        self.session_ended = False

        self._open: ToyResponse | None = None
        self._decoder: opuslib.Decoder | None = None
        #: when the listening restart fires (None: no hold pending)
        self._hold_until_s: float | None = None
        #: when the 50 ms sleep after CREATED ends (None: not entering SPEAKING)
        self._speaking_at_s: float | None = None

    # -- inputs -----------------------------------------------------------------------------

    def connected(self, now_s: float) -> None:
        """The WebSocket opened: the firmware is PROCESSING until its first hold ends."""
        self.connected_at = now_s
        self._set_state(ToyState.PROCESSING, now_s)

    def disconnected(self, now_s: float) -> None:
        """The firmware goes IDLE on a disconnect (SLEEP stays SLEEP); timers stop."""
        self.advance(now_s)
        self._hold_until_s = None
        self._speaking_at_s = None
        self.clock.cut(now_s)
        if self.state != ToyState.SLEEP:
            self._set_state(ToyState.IDLE, now_s)

    def receive_text(self, text: str, now_s: float) -> list[ToyAction]:
        """One text message from the server; returns what the device does to its socket."""
        self.advance(now_s)
        first = self.first_message_at is None
        try:
            message: object = json.loads(text)
            parsed = True
        except (ValueError, RecursionError):
            message, parsed = text, False
        self._record("text", message, now_s)
        if self.session_ended:
            self.note_error(f"message after SESSION.END: {text[:QUOTE_CHARS]}")
            return []
        kind = message.get("type") if isinstance(message, dict) else None
        if first and kind != "auth":
            self.note_error(f"first message is not auth: {text[:QUOTE_CHARS]}")
        if not parsed:
            self._on_bad_json(text, now_s)
        elif not isinstance(message, dict):
            self.note_error(f"text is not a JSON object: {text[:QUOTE_CHARS]}")
        elif kind == "auth":
            self._on_auth(message, first)
        elif kind == "server":
            return self._on_server(message, now_s)
        else:
            self.note_error(f"unknown message type (ignored by the device): {text[:QUOTE_CHARS]}")
        return []

    def receive_binary(self, packet: bytes, now_s: float) -> None:
        """One binary message: an Opus packet, played only inside a response in SPEAKING."""
        self.advance(now_s)
        self._record("binary", len(packet), now_s)
        if self.session_ended:
            self.note_error(f"message after SESSION.END: binary of {len(packet)} bytes")
            return
        response = self._open
        if response is None:
            self.note_error(f"binary outside CREATED..COMPLETE ({len(packet)} bytes)")
            self.dropped_binary += 1
            return
        response.packets.append(packet)
        response.packet_times.append(now_s)
        if self._packet_size_ok(packet) and self._would_play(response):
            self._decode_and_play(response, packet, now_s)
        else:
            self.dropped_binary += 1

    def fragment_lost(self) -> None:
        """The socket saw a fragmented message: the firmware's library ignores fragments."""
        self.note_error("fragmented message (the device ignores fragments)")

    def note_error(self, text: str) -> None:
        """Record a protocol error (also used by the client for its own failures)."""
        self.protocol_errors.append(text)

    # -- time ---------------------------------------------------------------------------------

    def due_s(self) -> float | None:
        """When the next firmware timer fires; None when none is pending.

        A hold that ends during the 50 ms sleep after CREATED takes effect only when the
        sleep ends (the firmware checks it in that task), so the sleep comes first.
        """
        if self._speaking_at_s is not None:
            return self._speaking_at_s
        return self._hold_until_s

    def advance(self, now_s: float) -> None:
        """Fire every timer due by ``now_s``: enter SPEAKING, then end the hold."""
        if self._speaking_at_s is not None:
            if self._speaking_at_s > now_s:
                return
            self._speaking_at_s = None
            if self.state != ToyState.SLEEP:
                self._set_state(ToyState.SPEAKING, now_s)
        if self._hold_until_s is not None and self._hold_until_s <= now_s:
            self._end_hold(now_s)

    def read_at_s(self) -> float | None:
        """When the device reads its socket again; None: it reads now.

        Not during the 50 ms sleep after CREATED, and not while the ring is full (the ring
        write blocks the reading task).
        """
        waits = [t for t in (self._speaking_at_s, self.clock.ring_free_at_s()) if t is not None]
        return max(waits) if waits else None

    # -- queries ------------------------------------------------------------------------------

    @property
    def hold_pending(self) -> bool:
        """True between COMPLETE/ERROR and the return to LISTENING (binary is dropped)."""
        return self._hold_until_s is not None

    @property
    def mic_open(self) -> bool:
        """The firmware's mic task streams only while LISTENING."""
        return self.state == ToyState.LISTENING

    def played_ms(self, now_s: float) -> float:
        """Ms of the current (or last) response played by ``now_s`` per the play clock.

        Without realtime playback, audio counts as played once decoded.
        """
        return self.clock.played_ms(now_s)

    def ended_responses(self) -> list[ToyResponse]:
        """Responses closed by COMPLETE/ERROR (bare ones included), in order."""
        return [r for r in self.responses if r.ended_at is not None]

    # -- text reactions -----------------------------------------------------------------------

    def _record(self, kind: str, value: object, now_s: float) -> None:
        if self.first_message_at is None:
            self.first_message_at = now_s
        self.messages.append((now_s, kind, value))

    def _on_bad_json(self, text: str, now_s: float) -> None:
        """The firmware logs "Error deserializing JSON" and drops to IDLE."""
        self.note_error(f"non-JSON text (device goes IDLE): {text[:QUOTE_CHARS]!r}")
        self._set_state(ToyState.IDLE, now_s)

    def _on_auth(self, message: dict[str, Any], first: bool) -> None:
        if self.auth is not None:
            self.note_error("second auth")
        elif not first:
            self.note_error("auth is not the first message")
        else:
            self.auth = message
        for problem in auth_problems(message):
            self.note_error(f"auth: {problem}")
        # the firmware reads a missing field as 0 / 0.0 / false
        self.volume_control = as_int(message.get("volume_control"))
        self.pitch_factor = as_float(message.get("pitch_factor"))

    def _on_server(self, message: dict[str, Any], now_s: float) -> list[ToyAction]:
        msg = message.get("msg")
        if msg == SERVER_CREATED:
            self._on_created(now_s)
        elif msg in (SERVER_COMPLETE, SERVER_ERROR):
            self._on_closing(message, now_s, ok=msg == SERVER_COMPLETE)
        elif msg == SERVER_COMMITTED:
            self._on_committed(now_s)
        elif msg == SERVER_SESSION_END:
            self._on_session_end(now_s)
            return [ToyAction.CLOSE_SOCKET]
        else:
            self.note_error(f"unknown server msg (ignored by the device): {msg!r}")
        return []

    def _on_created(self, now_s: float) -> None:
        """Open a bracket; SPEAKING after the firmware's 50 ms delay (reads blocked)."""
        if self._open is not None:
            self.note_error("CREATED while already responding")
            self._open.ended_at = now_s
        response = ToyResponse(created_at=now_s, rate_hz=self.decode_rate_hz)
        if self.hold_pending:
            # the pending restart is not cancelled: the whole response is dropped (TE3)
            self.note_error("CREATED inside hold (the device drops this response)")
            response.dropped = True
        self.responses.append(response)
        self._open = response
        self._decoder = opuslib.Decoder(self.decode_rate_hz, 1)
        self.clock.new_response()
        self._speaking_at_s = now_s + self.speaking_delay_ms / MS_PER_S

    def _on_closing(self, message: dict[str, Any], now_s: float, *, ok: bool) -> None:
        """COMPLETE/ERROR: binary dropped from now on; LISTENING after the hold."""
        volume = message.get("volume_control")
        if "volume_control" in message and not is_json_int(volume):
            self.note_error(f"volume_control on COMPLETE/ERROR is not an integer: {volume!r}")
        elif outside(volume, VOLUME_RANGE):
            self.note_error(f"volume_control on COMPLETE/ERROR out of range: {volume}")
        response = self._open or ToyResponse(created_at=now_s, bracketed=False)
        if self._open is None:
            self.responses.append(response)
        response.ended_at = now_s
        response.ok = ok
        response.volume_control = as_int(volume) if "volume_control" in message else None
        if response.volume_control is not None:
            self.volume_control = response.volume_control
        self._open = None
        self._decoder = None
        # the firmware (re)schedules its listening restart on every COMPLETE/ERROR
        self._hold_until_s = now_s + self.hold_ms / MS_PER_S

    def _on_committed(self, now_s: float) -> None:
        if self._open is not None:
            self.note_error("AUDIO.COMMITTED inside a response (the device stops playing)")
        self._set_state(ToyState.PROCESSING, now_s)

    def _on_session_end(self, now_s: float) -> None:
        """SLEEP: stop everything (the client closes the socket and keeps reading)."""
        if self._open is not None:
            self.note_error("SESSION.END inside a response")
        self.session_ended = True
        self._hold_until_s = None
        self.clock.cut(now_s)
        self._set_state(ToyState.SLEEP, now_s)

    def _end_hold(self, now_s: float) -> None:
        """transitionToListening: flush the speaker, start the mic."""
        self._hold_until_s = None
        if self.state == ToyState.SLEEP:
            return
        self.clock.cut(now_s)
        self._set_state(ToyState.LISTENING, now_s)

    def _set_state(self, state: str, now_s: float) -> None:
        if state != self.state:
            self.state = state
            self.state_history.append((now_s, state))

    # -- binary: decode and play ------------------------------------------------------------

    def _would_play(self, response: ToyResponse) -> bool:
        """The firmware decodes only in SPEAKING with no listening restart pending."""
        return not response.dropped and not self.hold_pending and self.state == ToyState.SPEAKING

    def _packet_size_ok(self, packet: bytes) -> bool:
        if len(packet) >= MAX_MESSAGE_BYTES:
            self.note_error(
                f"binary message of {len(packet)} bytes (device limit < {MAX_MESSAGE_BYTES})"
            )
            return False
        if not packet:
            self.note_error("empty binary message inside a response")
            return False
        return True

    def _decode_and_play(self, response: ToyResponse, packet: bytes, now_s: float) -> None:
        decoder = self._decoder
        assert decoder is not None
        max_samples = self.decode_rate_hz * MAX_PACKET_MS // int(MS_PER_S)
        index = len(response.packets) - 1
        try:
            pcm: bytes = decoder.decode(packet, frame_size=max_samples)
        except opuslib.OpusError as exc:
            self.note_error(f"packet {index} does not decode: {exc}")
            return
        samples = len(pcm) // BYTES_PER_SAMPLE
        if samples > max_samples:
            self.note_error(f"packet {index} decodes to {samples} samples (> {MAX_PACKET_MS} ms)")
            return
        response.pcm_48k.extend(pcm)
        self.clock.queue(samples / self.decode_rate_hz, now_s)
