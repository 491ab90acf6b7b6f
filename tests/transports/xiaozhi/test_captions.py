"""What the device's screen shows: ``sentence_start`` right before the packet its sentence
starts in and never after ``tts stop``, one ``llm`` face per reply; the emulated device's
record of it. The port runs over a recording socket; the clock is fixed."""

from __future__ import annotations

import json
from typing import Any

import pytest
from starlette.websockets import WebSocketState

from pipeline.audio import PCM16_24K
from transports.link import Link
from transports.xiaozhi import framing
from transports.xiaozhi.emotion import EMOJI, emotion_of
from transports.xiaozhi.emulator.mcp_server import DeviceMcp
from transports.xiaozhi.emulator.model import DeviceModel
from transports.xiaozhi.port import XiaozhiOptions, XiaozhiPort
from transports.xiaozhi.protocol import DOWNLINK_FRAME_MS, XiaozhiProtocol

CHUNK = bytes(PCM16_24K.bytes_for_ms(DOWNLINK_FRAME_MS))


class RecordingSocket:
    application_state = WebSocketState.CONNECTED

    def __init__(self) -> None:
        self.frames: list[str | bytes] = []

    async def send_text(self, text: str) -> None:
        self.frames.append(text)

    async def send_bytes(self, data: bytes) -> None:
        self.frames.append(data)

    async def close(self, code: int, reason: str) -> None:
        pass

    def shown(self) -> list[str]:
        """The frames as the screen sees them: tts states, faces, captions, ``audio``."""
        out = []
        for frame in self.frames:
            if isinstance(frame, bytes):
                out.append("audio")
                continue
            msg: dict[str, Any] = json.loads(frame)
            if msg["type"] == "tts" and msg["state"] == "sentence_start":
                out.append(f"caption {msg['text']}")
            elif msg["type"] == "tts":
                out.append(f"tts {msg['state']}")
            elif msg["type"] == "llm":
                out.append(f"llm {msg['emotion']} {msg['text']}")
        return out


def port_and_socket() -> tuple[XiaozhiPort, RecordingSocket]:
    socket = RecordingSocket()
    options = XiaozhiOptions(close_delay_s=0.0)
    port = XiaozhiPort(Link(socket), XiaozhiProtocol(), options, clock=lambda: 1000.0)  # type: ignore[arg-type]
    return port, socket


async def test_captions_go_out_right_before_their_audio_and_never_after_stop() -> None:
    port, socket = port_and_socket()
    port.caption(1, 0.0, "Great, hello.")
    port.caption(1, 120.0, "Second one.")
    port.caption(1, 180.0, "Never spoken.")  # its audio never comes
    await port.begin_response(1)
    for _ in range(3):
        await port.send_audio(1, CHUNK, DOWNLINK_FRAME_MS)
    await port.end_response(1, had_audio=True, ok=True)  # waits its 180 ms, then stops
    assert socket.shown() == [
        "tts start",
        f"llm happy {EMOJI['happy']}",
        "caption Great, hello.",
        "audio",
        "audio",
        "caption Second one.",
        "audio",
        "tts stop",
    ]


async def test_a_stopped_replys_captions_are_dropped_and_every_reply_has_one_face() -> None:
    port, socket = port_and_socket()
    port.caption(1, 0.0, "Sorry, I cannot.")
    port.caption(1, 60.0, "Not shown.")
    await port.begin_response(1)
    await port.send_audio(1, CHUNK, DOWNLINK_FRAME_MS)
    port.abort()
    await port.interrupt(1)
    await port.send_audio(1, CHUNK, DOWNLINK_FRAME_MS)  # late: dropped
    await port.begin_response(2)  # a reply without words (an echo)
    await port.send_audio(2, CHUNK, DOWNLINK_FRAME_MS)
    assert socket.shown() == [
        "tts start",
        f"llm sad {EMOJI['sad']}",
        "caption Sorry, I cannot.",
        "audio",
        "tts stop",
        "tts start",
        f"llm neutral {EMOJI['neutral']}",
        "audio",
    ]


@pytest.mark.parametrize(
    ("text", "emotion"),
    [
        ("Great question!", "happy"),
        ("That is so funny 😂 really", "funny"),
        ("Haha, good one.", "laughing"),
        ("Sorry, I cannot do that.", "sad"),
        ("Wow, that is far.", "surprised"),
        ("Hmm, let me think.", "thinking"),
        ("The greatest river is long.", "neutral"),  # whole words only
        ("太好了，明天见", "happy"),
        ("", "neutral"),
    ],
)
def test_a_reply_face_from_its_words(text: str, emotion: str) -> None:
    assert emotion_of(text) == (emotion, EMOJI[emotion])


def test_the_emulated_device_records_captions_and_late_ones() -> None:
    model = DeviceModel(version=1)
    assert json.loads(model.hello())["features"] == {"mcp": False}
    assert json.loads(DeviceModel(mcp=DeviceMcp()).hello())["features"] == {"mcp": True}
    model.on_text(json.dumps({"type": "hello", "session_id": "s", "audio_params": {}}))
    for message in (
        {"type": "tts", "state": "start"},
        {"type": "llm", "emotion": "happy", "text": "🙂"},
        {"type": "tts", "state": "sentence_start", "text": "One."},
    ):
        model.on_text(json.dumps(message))
    model.on_binary(framing.pack(1, b"\x01"))
    model.on_binary(framing.pack(1, b"\x02"))
    model.on_text(json.dumps({"type": "tts", "state": "sentence_start", "text": "Two."}))
    model.on_text(json.dumps({"type": "tts", "state": "stop"}))
    model.on_text(json.dumps({"type": "tts", "state": "sentence_start", "text": "Late."}))
    model.on_text(json.dumps({"type": "llm", "emotion": "sad", "text": "😔"}))
    [reply] = model.replies
    assert (reply.sentences, reply.sentence_at, reply.emotions) == (
        ["One.", "Two."],
        [0, 2],
        ["happy"],
    )
    assert model.late_captions == 2


def test_the_emulated_device_answers_mcp_requests() -> None:
    model = DeviceModel(mcp=DeviceMcp(page_size=2))
    model.on_text(json.dumps({"type": "hello", "session_id": "s1"}))
    request = {"jsonrpc": "2.0", "id": 7, "method": "tools/list", "params": {}}
    [answer] = model.on_text(json.dumps({"type": "mcp", "payload": request}))
    sent = json.loads(answer)
    assert (sent["session_id"], sent["type"]) == ("s1", "mcp")
    assert [t["name"] for t in sent["payload"]["result"]["tools"]] == [
        "self.get_device_status",
        "self.audio_speaker.set_volume",
    ]
    assert "nextCursor" not in sent["payload"]["result"]
    notification = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    assert model.on_text(json.dumps({"type": "mcp", "payload": notification})) == []
