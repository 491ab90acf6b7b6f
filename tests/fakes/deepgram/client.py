"""A bare Deepgram client, written from the documents and not from any bridge code: what a
test needs to talk to the fake directly with the ``websockets`` library.

Headers follow Deepgram ("Authorization: Token <api_key>") and Cloudflare
(``cf-aig-authorization: Bearer <token>``); control messages are the JSON text frames of the
docs (``{"type": "KeepAlive"}``, ``{"type": "Speak", "text": ...}``...); audio goes up as
binary frames, as fast as the socket takes it (the fake times events by the audio itself).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import numpy as np
from websockets.asyncio.client import ClientConnection

from pipeline.audio import ULAW_8K, AudioSpec, Converter
from pipeline.wav import read_wav
from tests.fakes.deepgram.server import API_KEY, CF_TOKEN
from tests.support.audio import FIXTURES

DIRECT_HEADERS = {"Authorization": f"Token {API_KEY}"}
GATEWAY_HEADERS = {"cf-aig-authorization": f"Bearer {CF_TOKEN}"}


def hello_ulaw() -> bytes:
    """``hello_16k.wav`` as a phone sends it: μ-law at 8 kHz (about 4.8 s, with pauses)."""
    pcm, rate_hz = read_wav(FIXTURES / "hello_16k.wav")
    converter = Converter(AudioSpec("pcm16", rate_hz), ULAW_8K)
    return converter.process(pcm) + converter.flush()


def tone(ms: int, rate_hz: int = 16000) -> bytes:
    """Linear16 "speech": loud enough for the fake's voice detector in every 20 ms frame."""
    t = np.arange(rate_hz * ms // 1000) / rate_hz
    return (6000 * np.sin(2 * np.pi * 300 * t)).astype(np.int16).tobytes()


def quiet(ms: int, rate_hz: int = 16000) -> bytes:
    """Linear16 silence."""
    return bytes(rate_hz * ms // 1000 * 2)


async def send_audio(ws: ClientConnection, audio: bytes, chunk_bytes: int = 640) -> None:
    for offset in range(0, len(audio), chunk_bytes):
        await ws.send(audio[offset : offset + chunk_bytes])


async def send_json(ws: ClientConnection, kind: str, **fields: Any) -> None:
    await ws.send(json.dumps({"type": kind, **fields}))


async def events_until(
    ws: ClientConnection, kind: str, timeout_s: float = 5.0, *, final: bool = False
) -> list[dict[str, Any]]:
    """JSON events (audio skipped) up to the first whose ``type`` or Flux ``event`` is
    ``kind`` (and, with ``final``, whose ``is_final`` is true)."""
    out: list[dict[str, Any]] = []
    while True:
        message = await asyncio.wait_for(ws.recv(), timeout_s)
        if isinstance(message, bytes):
            continue
        event = json.loads(message)
        out.append(event)
        if kind in (event.get("type"), event.get("event")) and (event.get("is_final") or not final):
            return out


async def speak(ws: ClientConnection, text: str) -> tuple[bytes, list[dict[str, Any]]]:
    """Aura: ``Speak`` then ``Flush``; the audio and the events up to ``Flushed``."""
    await send_json(ws, "Speak", text=text)
    await send_json(ws, "Flush")
    audio, events = b"", list[dict[str, Any]]()
    while not events or events[-1]["type"] != "Flushed":
        message = await asyncio.wait_for(ws.recv(), 5)
        if isinstance(message, bytes):
            audio += message
        else:
            events.append(json.loads(message))
    return audio, events


def transcript(results: dict[str, Any]) -> str:
    """Nova-3: the transcript of a ``Results`` message."""
    return str(results["channel"]["alternatives"][0]["transcript"])


def turns(events: list[dict[str, Any]]) -> list[tuple[str, int, str, float]]:
    """Flux: the turn events but ``Update``, as (event, turn_index, transcript,
    audio_window_end)."""
    return [
        (e["event"], e["turn_index"], e["transcript"], e["audio_window_end"])
        for e in events
        if e.get("type") == "TurnInfo" and e["event"] != "Update"
    ]
