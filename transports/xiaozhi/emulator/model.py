"""A xiaozhi device as the server sees it, pure: what it sends, and what it makes of replies.

Modelled on the firmware (``main/application.cc``): a device is idle, listening or
speaking; ``tts start`` makes it speak (a fresh reply, its decoder reset), ``tts stop`` makes
it listen again (idle in manual mode), and it keeps binary frames only while speaking: audio
outside a ``tts`` bracket is stale and counted, never played. No sockets, no clocks: the
client (``client.py``) feeds it messages, sends what it answers, and stamps the times.

What the screen would show is recorded with where it arrived in the audio: each
``sentence_start`` with the number of the reply's packets before it, each ``llm`` emotion
with its reply, and any caption that came outside a ``tts`` bracket (after ``tts stop``).
With an MCP server (``mcp_server.py``) the device says ``features.mcp`` in its hello and
answers the server's JSON-RPC requests.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from transports.xiaozhi import framing
from transports.xiaozhi.emulator.mcp_server import DeviceMcp

MAX_QUEUED_PACKETS = 40  # the firmware's decode queue; overflow is dropped


@dataclass
class Reply:
    """One ``tts start`` … ``tts stop`` bracket as the device lived it."""

    packets: list[bytes] = field(default_factory=list)
    sentences: list[str] = field(default_factory=list)
    #: packets of this reply received before each ``sentence_start``
    sentence_at: list[int] = field(default_factory=list)
    #: the ``llm`` emotions received during this reply
    emotions: list[str] = field(default_factory=list)
    stopped: bool = False


@dataclass
class DeviceModel:
    version: int = 1
    frame_ms: int | None = 60
    mode: str = "auto"
    state: str = "connecting"
    session_id: str = ""
    server_hello: dict[str, Any] | None = None
    replies: list[Reply] = field(default_factory=list)
    stt: list[str] = field(default_factory=list)
    emotions: list[str] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    unknown: list[dict[str, Any]] = field(default_factory=list)
    stale_packets: int = 0
    #: ``sentence_start`` or ``llm`` outside a ``tts`` bracket (e.g. after ``tts stop``)
    late_captions: int = 0
    mcp: DeviceMcp | None = None

    @staticmethod
    def headers(token: str | None, device_id: str, client_id: str, version: int) -> dict[str, str]:
        found = {"Device-Id": device_id, "Client-Id": client_id, "Protocol-Version": str(version)}
        if token is not None:
            found["Authorization"] = f"Bearer {token}"
        return found

    def hello(self) -> str:
        msg: dict[str, Any] = {
            "type": "hello",
            "version": self.version,
            "features": {"mcp": self.mcp is not None},
            "transport": "websocket",
        }
        if self.frame_ms is not None:
            msg["audio_params"] = {
                "format": "opus",
                "sample_rate": 16000,
                "channels": 1,
                "frame_duration": self.frame_ms,
            }
        return json.dumps(msg)

    def _message(self, kind: str, **fields: Any) -> str:
        return json.dumps({"session_id": self.session_id, "type": kind, **fields})

    def listen_start(self, mode: str = "auto") -> str:
        """Listen from now on; a reply already playing (a greeting that came first) plays on
        and still ends with its ``tts stop``."""
        self.mode = mode
        if not self.speaking:
            self.state = "listening"
        return self._message("listen", state="start", mode=mode)

    def listen_stop(self) -> str:
        self.state = "idle"
        return self._message("listen", state="stop")

    def listen_detect(self, text: str) -> str:
        return self._message("listen", state="detect", text=text)

    def typed(self, text: str) -> str:
        """A typed user turn: ``listen detect`` whose text is no wake word."""
        return self.listen_detect(text)

    def abort(self, reason: str = "") -> str:
        return self._message("abort", **({"reason": reason} if reason else {}))

    def frame(self, packet: bytes, timestamp_ms: int = 0) -> bytes:
        return framing.pack(self.version, packet, timestamp_ms)

    @property
    def speaking(self) -> bool:
        return self.state == "speaking"

    def on_text(self, text: str) -> list[str]:
        """Take a message from the server; what the device sends back (MCP answers)."""
        msg = json.loads(text)
        kind = msg.get("type")
        if kind == "mcp" and self.mcp is not None and isinstance(msg.get("payload"), dict):
            answers = self.mcp.handle(msg["payload"])
            return [self._message("mcp", payload=answer) for answer in answers]
        if kind == "hello":
            self.server_hello = msg
            self.session_id = str(msg.get("session_id", ""))
            self.state = "idle"
        elif kind == "tts":
            self._tts(msg)
        elif kind == "stt":
            self.stt.append(str(msg.get("text", "")))
        elif kind == "alert":
            self.alerts.append(msg)
        elif kind == "llm":
            self.emotions.append(str(msg.get("emotion", "")))
            if self.speaking:
                self.replies[-1].emotions.append(self.emotions[-1])
            else:
                self.late_captions += 1
        else:
            self.unknown.append(msg)
        return []

    def _tts(self, msg: dict[str, Any]) -> None:
        state = msg.get("state")
        if state == "start":
            if not self.speaking:
                self.replies.append(Reply())
            self.state = "speaking"
        elif state == "sentence_start" and not self.speaking:
            self.late_captions += 1
        elif state == "sentence_start":
            reply = self.replies[-1]
            reply.sentences.append(str(msg.get("text", "")))
            reply.sentence_at.append(len(reply.packets))
        elif state == "stop":
            if self.speaking:
                self.replies[-1].stopped = True
            self.state = "idle" if self.mode == "manual" else "listening"

    def on_binary(self, data: bytes) -> bytes | None:
        """The Opus packet this frame carries if the device plays it, else None (stale)."""
        packet = framing.unpack(self.version, data).payload
        if not self.speaking:
            self.stale_packets += 1
            return None
        self.replies[-1].packets.append(packet)
        return packet
