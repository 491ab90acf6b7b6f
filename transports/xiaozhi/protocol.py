"""Sans-I/O core of the xiaozhi-esp32 WebSocket protocol (our server's side).

Messages in, typed events out; builders for every message we send. No sockets, no clocks.
The device speaks first (its ``hello``) and gives up unless our ``hello`` says
``"transport": "websocket"`` within 10 s; ours always carries the session id and the audio
parameters we really encode, because the device sizes its decoder from them (a packet longer
than the announced frame fails to decode). Audio is one Opus packet per binary message in
the framing of the handshake's ``Protocol-Version`` (``framing.py``), both ways.

The device's microphone is on only while it listens: after ``listen start`` and until our
``tts start`` (or its ``listen stop``), unless the mode is ``realtime`` (full duplex, AEC on
the device). Audio outside those windows is counted and dropped. Hostile input ends with a
close code, never an exception: bad JSON past a limit (1008), audio before ``hello`` (1008),
oversized messages (1009), frames whose header lies about their size (1007).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from transports.xiaozhi import framing

DEFAULT_FRAME_MS = 60
UPLINK_FRAME_MS = (20, 40, 60)
MAX_TEXT_CHARS = 64 * 1024
MAX_INVALID_TEXTS = 50
#: what the firmware's audio service decodes by default; what we encode (24 kHz, 60 ms)
DOWNLINK_RATE_HZ = 24000
DOWNLINK_FRAME_MS = 60
#: the reference server's wake words: ``listen detect`` with one of these is no typed turn
WAKE_WORDS = frozenset({"你好小智", "你好小志", "小爱同学", "你好小鑫", "小美同学", "hi esp"})


class Mode(Enum):
    AUTO = "auto"
    MANUAL = "manual"
    REALTIME = "realtime"


@dataclass(frozen=True, slots=True)
class DeviceHello:
    version: int | None = None
    #: the Opus frame of the device's microphone
    frame_ms: int = DEFAULT_FRAME_MS
    sample_rate_hz: int = 16000
    mcp: bool = False
    features: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Hello:
    hello: DeviceHello


@dataclass(frozen=True, slots=True)
class UpstreamOpus:
    packet: bytes
    timestamp_ms: int = 0


@dataclass(frozen=True, slots=True)
class ListenStart:
    mode: Mode


@dataclass(frozen=True, slots=True)
class ListenStop:
    #: the mode the device was listening in (manual: push-to-talk released, a turn ends)
    mode: Mode


@dataclass(frozen=True, slots=True)
class WakeWord:
    text: str


@dataclass(frozen=True, slots=True)
class TypedText:
    """``listen detect`` whose text is no wake word: the user typed a turn."""

    text: str


@dataclass(frozen=True, slots=True)
class Abort:
    reason: str


@dataclass(frozen=True, slots=True)
class Mcp:
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ProtocolViolation:
    close_code: int
    reason: str


Event = (
    Hello
    | UpstreamOpus
    | ListenStart
    | ListenStop
    | WakeWord
    | TypedText
    | Abort
    | Mcp
    | ProtocolViolation
)


@dataclass(slots=True)
class Counters:
    upstream_packets: int = 0
    discarded_packets: int = 0
    invalid_texts: int = 0
    ignored_messages: int = 0
    packets_sent: int = 0


class XiaozhiProtocol:
    def __init__(self, version: int = 1, wake_words: frozenset[str] = WAKE_WORDS) -> None:
        if version not in framing.VERSIONS:
            raise ValueError(f"protocol version {version}")
        self.version = version
        self.wake_words = frozenset(w.lower() for w in wake_words)
        self.device: DeviceHello | None = None
        #: the device streams its microphone
        self.listening = False
        self.mode = Mode.AUTO
        #: a ``tts start`` went out and its ``tts stop`` has not
        self.speaking = False
        self.counters = Counters()

    @property
    def greeted(self) -> bool:
        return self.device is not None

    @property
    def full_duplex(self) -> bool:
        return self.mode is Mode.REALTIME

    # -- inbound ---------------------------------------------------------------------------

    def receive_binary(self, data: bytes) -> list[Event]:
        if self.device is None:
            return [ProtocolViolation(1008, "audio before hello")]
        try:
            frame = framing.unpack(self.version, data)
        except framing.FramingError as exc:
            return [ProtocolViolation(exc.close_code, exc.reason)]
        if frame.frame_type != framing.TYPE_AUDIO or not frame.payload:
            self.counters.ignored_messages += 1
            return []
        if not self.listening:
            self.counters.discarded_packets += 1
            return []
        self.counters.upstream_packets += 1
        return [UpstreamOpus(frame.payload, frame.timestamp_ms)]

    def receive_text(self, text: str) -> list[Event]:
        if len(text) > MAX_TEXT_CHARS:
            return [ProtocolViolation(1009, f"text message of {len(text)} chars")]
        try:
            msg = json.loads(text)
        except ValueError:
            return self._invalid()
        if not isinstance(msg, dict) or not isinstance(msg.get("type"), str):
            return self._invalid()
        kind = msg["type"]
        if kind == "hello":
            return self._hello(msg)
        if self.device is None:
            self.counters.ignored_messages += 1  # nothing counts before the hello
            return []
        if kind == "listen":
            return self._listen(msg)
        if kind == "abort":
            reason = msg.get("reason")
            return [Abort(reason if isinstance(reason, str) else "")]
        if kind == "mcp" and isinstance(msg.get("payload"), dict):
            return [Mcp(msg["payload"])]
        self.counters.ignored_messages += 1  # unknown types are ignored, as the device does
        return []

    def _invalid(self) -> list[Event]:
        self.counters.invalid_texts += 1
        if self.counters.invalid_texts > MAX_INVALID_TEXTS:
            return [ProtocolViolation(1008, f"more than {MAX_INVALID_TEXTS} invalid messages")]
        return []

    def _hello(self, msg: dict[str, Any]) -> list[Event]:
        if self.device is not None:
            self.counters.ignored_messages += 1  # one hello per connection
            return []
        self.device = parse_device_hello(msg)
        return [Hello(self.device)]

    def _listen(self, msg: dict[str, Any]) -> list[Event]:
        state = msg.get("state")
        if state == "start":
            try:
                self.mode = Mode(msg.get("mode", "auto"))
            except ValueError:
                self.mode = Mode.AUTO
            self.listening = True
            return [ListenStart(self.mode)]
        if state == "stop":
            self.listening = False
            return [ListenStop(self.mode)]
        if state == "detect":
            text = msg.get("text")
            text = text.strip() if isinstance(text, str) else ""
            if not text or text.lower() in self.wake_words:
                return [WakeWord(text)]
            return [TypedText(text)]
        self.counters.ignored_messages += 1
        return []

    # -- outbound --------------------------------------------------------------------------

    def hello(self, session_id: str) -> str:
        """Our answer: what the device needs to stay, and what we encode, exactly."""
        return _text(
            {
                "type": "hello",
                "transport": "websocket",
                "session_id": session_id,
                "audio_params": {
                    "format": "opus",
                    "sample_rate": DOWNLINK_RATE_HZ,
                    "channels": 1,
                    "frame_duration": DOWNLINK_FRAME_MS,
                },
            }
        )

    def tts_start(self) -> str:
        """The device enters speaking and resets its decoder; a half-duplex mic goes off."""
        self.speaking = True
        if not self.full_duplex:
            self.listening = False
        return _text({"type": "tts", "state": "start"})

    def tts_stop(self) -> str:
        """The device drops what it has queued and listens again (idle in manual mode)."""
        self.speaking = False
        return _text({"type": "tts", "state": "stop"})

    @staticmethod
    def sentence_start(text: str) -> str:
        return _text({"type": "tts", "state": "sentence_start", "text": text})

    @staticmethod
    def stt(text: str) -> str:
        return _text({"type": "stt", "text": text})

    @staticmethod
    def llm(emotion: str, text: str) -> str:
        return _text({"type": "llm", "emotion": emotion, "text": text})

    @staticmethod
    def alert(status: str, message: str, emotion: str) -> str:
        return _text({"type": "alert", "status": status, "message": message, "emotion": emotion})

    @staticmethod
    def mcp(payload: dict[str, Any], session_id: str = "") -> str:
        """A JSON-RPC message to the device's MCP server (with the session id, as the
        reference server sends it)."""
        return _text({"session_id": session_id, "type": "mcp", "payload": payload})

    def audio(self, packet: bytes) -> bytes:
        """One Opus packet, framed; only inside ``tts start`` … ``tts stop``."""
        if not self.speaking:
            raise RuntimeError("audio outside tts start/stop")
        self.counters.packets_sent += 1
        return framing.pack(self.version, packet)


def parse_device_hello(msg: dict[str, Any]) -> DeviceHello:
    """The device's hello, any field missing or wrong read as the firmware's default."""
    version = msg.get("version")
    features = msg.get("features")
    features = features if isinstance(features, dict) else {}
    params = msg.get("audio_params")
    params = params if isinstance(params, dict) else {}
    frame_ms = params.get("frame_duration")
    rate = params.get("sample_rate")
    return DeviceHello(
        version=version if _is_int(version) else None,
        frame_ms=frame_ms if _is_int(frame_ms) and frame_ms in UPLINK_FRAME_MS else 60,
        sample_rate_hz=rate if _is_int(rate) and rate in (8000, 16000, 24000, 48000) else 16000,
        mcp=features.get("mcp") is True,
        features=features,
    )


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _text(obj: dict[str, Any]) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
