"""Sans-I/O core of the Elato device protocol (our server's side). No sockets, no clocks.

The device is half-duplex and server-driven: it listens only after a response bracket
(``RESPONSE.CREATED`` … ``RESPONSE.COMPLETE``/``ERROR``) closes plus a fixed 1000 ms hold,
drops binary outside a bracket, and has no timeouts of its own. This module holds the state
machine that keeps those promises and refuses, with :class:`OutboundViolation`, to build any
frame the device would choke on (non-JSON text, oversized frames, binary outside a bracket,
``CREATED`` inside the listen hold, a second ``auth``). Time comes in as ``now_ms`` arguments.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import Enum
from typing import Any

from pipeline.audio import SampleAligner

#: the device's WebSocket library rejects frames of 15 * 1024 bytes or more
MAX_DEVICE_FRAME_BYTES = 15 * 1024
#: our margin on top of the hold before the next CREATED (spec TE4: >= 1200 ms + unplayed)
CREATED_GAP_MS = 1200
#: invalid text messages tolerated per session before closing 1008
MAX_INVALID_TEXTS = 100
#: upstream faster than 4x real time, averaged over this window, closes 1008
UPSTREAM_RATE_WINDOW_MS = 5000
UPSTREAM_RATE_FACTOR = 4


class DeviceState(Enum):
    OPEN = "open"  # accepted; auth sent; greeting pending
    RESPONDING = "responding"  # CREATED sent; Opus may flow
    HOLD = "hold"  # COMPLETE/ERROR sent; device resumes listening after its hold
    LISTENING = "listening"  # the gap has passed; a new CREATED is allowed
    COMMITTED = "committed"  # AUDIO.COMMITTED sent; a response or ERROR must follow
    ENDING = "ending"  # SESSION.END sent; only the close may follow


class OutboundViolation(RuntimeError):
    """A frame the device would mishandle; it must not be sent (a bug in our server)."""


@dataclass(frozen=True, slots=True)
class AuthSettings:
    """The four fields the firmware reads from ``auth``; a missing one reads as zero."""

    volume_control: int = 70
    pitch_factor: float = 1.0
    is_ota: bool = False


@dataclass(frozen=True, slots=True)
class UpstreamAudio:
    pcm16: bytes


@dataclass(frozen=True, slots=True)
class EndOfSpeech:
    pass


@dataclass(frozen=True, slots=True)
class Interrupt:
    #: ms of the current response the device says it played; None if absent or invalid
    audio_end_ms: int | None


@dataclass(frozen=True, slots=True)
class EndSession:
    pass


@dataclass(frozen=True, slots=True)
class ProtocolViolation:
    close_code: int
    reason: str


Event = UpstreamAudio | EndOfSpeech | Interrupt | EndSession | ProtocolViolation


class Outbound(Enum):
    """The frames the server sends."""

    AUTH = "auth"
    CREATED = "RESPONSE.CREATED"
    AUDIO = "binary audio"
    COMMITTED = "AUDIO.COMMITTED"
    COMPLETE = "RESPONSE.COMPLETE"
    ERROR = "RESPONSE.ERROR"
    SESSION_END = "SESSION.END"


_O, _R, _H, _L, _C, _E = (
    DeviceState.OPEN,
    DeviceState.RESPONDING,
    DeviceState.HOLD,
    DeviceState.LISTENING,
    DeviceState.COMMITTED,
    DeviceState.ENDING,
)

#: (state, frame) -> the state after sending it. A pair that is not here is a frame the
#: device would mishandle in that state: building it raises :class:`OutboundViolation`.
#: HOLD turns into LISTENING by time alone (:meth:`Esp32Protocol.refresh`), so CREATED is
#: refused during the listen hold and allowed once it has passed. ``auth`` is checked apart:
#: it is the first frame, exactly once, whatever the state.
OUTBOUND: dict[tuple[DeviceState, Outbound], DeviceState] = {
    (_O, Outbound.CREATED): _R,
    (_L, Outbound.CREATED): _R,
    (_C, Outbound.CREATED): _R,
    (_R, Outbound.AUDIO): _R,
    (_O, Outbound.COMMITTED): _C,
    (_H, Outbound.COMMITTED): _C,
    (_L, Outbound.COMMITTED): _C,
    **{(s, Outbound.COMPLETE): _H for s in (_O, _R, _C)},
    **{(s, Outbound.ERROR): _H for s in (_O, _R, _C)},
    **{(s, Outbound.SESSION_END): _E for s in DeviceState if s is not _E},
}

#: the inbound messages the device may send, and the states in which they count (anywhere
#: else they are ignored and counted): the microphone streams only while the device listens
INBOUND: dict[str, frozenset[DeviceState]] = {
    "audio": frozenset({_H, _L}),
    "end_of_speech": frozenset({_H, _L}),
    "INTERRUPT": frozenset({_R}),
    "END_SESSION": frozenset(DeviceState) - {_E},
}


@dataclass(slots=True)
class Counters:
    upstream_bytes: int = 0
    upstream_discarded_bytes: int = 0
    empty_binary: int = 0
    invalid_texts: int = 0
    ignored_instructions: int = 0
    packets_sent: int = 0
    responses: int = 0
    errors_sent: int = 0


class Esp32Protocol:
    def __init__(self, upstream_rate_hz: int = 16000) -> None:
        self.state = DeviceState.OPEN
        self.counters = Counters()
        self._auth_sent = False
        self._aligner = SampleAligner()
        self._gap_until_ms = 0.0
        self._max_upstream_bytes_per_window = (
            upstream_rate_hz * 2 * UPSTREAM_RATE_FACTOR * UPSTREAM_RATE_WINDOW_MS // 1000
        )
        self._window_start_ms: float | None = None
        self._window_bytes = 0

    # -- state queries ---------------------------------------------------------------------

    def refresh(self, now_ms: float) -> DeviceState:
        """Advance HOLD to LISTENING once the gap has passed."""
        if self.state is DeviceState.HOLD and now_ms >= self._gap_until_ms:
            self.state = DeviceState.LISTENING
        return self.state

    def created_wait_ms(self, now_ms: float) -> float:
        """How long to wait before a CREATED may go out (0 when it may go now)."""
        if self.state in (DeviceState.HOLD, DeviceState.LISTENING):
            return max(0.0, self._gap_until_ms - now_ms)
        return 0.0

    @property
    def response_open(self) -> bool:
        return self.state is DeviceState.RESPONDING

    def _send(self, frame: Outbound) -> None:
        """Move on as the table says for ``frame``, or refuse it."""
        self._require_auth()
        after = OUTBOUND.get((self.state, frame))
        if after is None:
            raise OutboundViolation(f"{frame.value} in state {self.state.value}")
        self.state = after

    # -- inbound ---------------------------------------------------------------------------

    def receive_binary(self, data: bytes, now_ms: float) -> list[Event]:
        """Microphone PCM as a byte stream: odd bytes carry over, gated by state, rate-capped."""
        if not data:
            self.counters.empty_binary += 1
            return []
        violation = self._check_rate(len(data), now_ms)
        if violation is not None:
            return [violation]
        self.refresh(now_ms)
        if self.state not in INBOUND["audio"]:
            self.counters.upstream_discarded_bytes += len(data)
            self._aligner.align(data)  # dropped, but the stream stays sample-aligned
            return []
        self.counters.upstream_bytes += len(data)
        data = self._aligner.align(data)
        return [UpstreamAudio(data)] if data else []

    def _check_rate(self, n_bytes: int, now_ms: float) -> ProtocolViolation | None:
        if (
            self._window_start_ms is None
            or now_ms - self._window_start_ms > UPSTREAM_RATE_WINDOW_MS
        ):
            self._window_start_ms = now_ms
            self._window_bytes = 0
        self._window_bytes += n_bytes
        if self._window_bytes > self._max_upstream_bytes_per_window:
            return ProtocolViolation(1008, "upstream faster than 4x real time")
        return None

    def receive_text(self, text: str) -> list[Event]:
        try:
            msg = json.loads(text)
        except ValueError:
            return self._invalid_text()
        if not isinstance(msg, dict) or msg.get("type") != "instruction":
            return self._invalid_text()
        kind = msg.get("msg")
        if kind not in INBOUND or kind == "audio":
            return self._invalid_text()
        if self.state not in INBOUND[kind]:
            self.counters.ignored_instructions += 1
            return []
        if kind == "end_of_speech":
            return [EndOfSpeech()]
        if kind == "INTERRUPT":
            return [Interrupt(_non_negative_int(msg.get("audio_end_ms")))]
        return [EndSession()]

    def _invalid_text(self) -> list[Event]:
        self.counters.invalid_texts += 1
        if self.counters.invalid_texts > MAX_INVALID_TEXTS:
            return [ProtocolViolation(1008, f"more than {MAX_INVALID_TEXTS} invalid messages")]
        return []

    # -- outbound --------------------------------------------------------------------------

    def auth(self, settings: AuthSettings) -> str:
        if self._auth_sent:
            raise OutboundViolation("auth is sent exactly once")
        self._auth_sent = True
        volume = max(0, min(100, int(settings.volume_control)))
        return _text(
            {
                "type": "auth",
                "volume_control": volume,
                "pitch_factor": float(settings.pitch_factor),
                "is_ota": bool(settings.is_ota),
                "is_reset": False,
            }
        )

    def created(self, now_ms: float) -> str:
        """Open a response bracket; refused inside the listen hold (brackets never nest)."""
        self.refresh(now_ms)
        self._send(Outbound.CREATED)
        self.counters.responses += 1
        return _server("RESPONSE.CREATED")

    def audio(self, packet: bytes) -> bytes:
        if not packet or len(packet) >= MAX_DEVICE_FRAME_BYTES:
            raise OutboundViolation(f"Opus packet of {len(packet)} bytes")
        self._send(Outbound.AUDIO)
        self.counters.packets_sent += 1
        return packet

    def committed(self) -> str:
        self._send(Outbound.COMMITTED)
        self._aligner.reset()
        return _server("AUDIO.COMMITTED")

    def complete(self, now_ms: float, unplayed_ms: float, volume: int | None = None) -> str:
        """Close the open bracket (or answer a greeting slot) with RESPONSE.COMPLETE."""
        return self._close_bracket(Outbound.COMPLETE, now_ms, unplayed_ms, volume)

    def error(self, now_ms: float, unplayed_ms: float = 0.0, volume: int | None = None) -> str:
        """RESPONSE.ERROR: a failed turn, or nothing to say. The device listens again."""
        frame = self._close_bracket(Outbound.ERROR, now_ms, unplayed_ms, volume)
        self.counters.errors_sent += 1
        return frame

    def _close_bracket(
        self, frame: Outbound, now_ms: float, unplayed_ms: float, volume: int | None
    ) -> str:
        self._send(frame)
        self._gap_until_ms = now_ms + CREATED_GAP_MS + max(0.0, unplayed_ms)
        extra: dict[str, Any] = {}
        if volume is not None:
            extra["volume_control"] = max(0, min(100, int(volume)))
        return _server(frame.value, **extra)

    def session_end(self) -> str:
        self._send(Outbound.SESSION_END)
        return _server("SESSION.END")

    def _require_auth(self) -> None:
        if not self._auth_sent:
            raise OutboundViolation("auth must be the first frame")


def _server(msg: str, **extra: Any) -> str:
    return _text({"type": "server", "msg": msg, **extra})


def _text(obj: dict[str, Any]) -> str:
    text = json.dumps(obj, separators=(",", ":"))
    if len(text.encode()) >= MAX_DEVICE_FRAME_BYTES:
        raise OutboundViolation("text frame too large for the device")
    return text


def _non_negative_int(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return value
