"""The two audio stages: a user turn to text, and a sentence to streamed speech.

Transcription gets the turn as a WAV file built in memory, at the call's own rate (a phone's
8 kHz, a toy's 16 kHz). Speech is requested as raw PCM (24 kHz, 16-bit) and read as
a stream, so the caller hears the start of a sentence while the rest is being synthesised.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import openai

from pipeline.agents.openai.clients import CLIENT_REQUEST_ID
from pipeline.audio import PCM16_24K, AudioSpec
from pipeline.wav import wav_bytes

#: transcription models work at 16 kHz; a toy sends that, a phone line 8 kHz
STT_MAX_RATE_HZ = 16000
#: OpenAI's ``response_format="pcm"``: 24 kHz, 16-bit little-endian, mono
TTS_SPEC = PCM16_24K


def stt_spec(native: AudioSpec) -> AudioSpec:
    """What a call's turns are transcribed from: PCM16 at the call's own rate, up to 16 kHz.

    A phone line's 8 kHz is sent as it is: upsampling adds no information for the model,
    which resamples itself, and doubles the upload and the bridge's work before it.
    """
    return AudioSpec("pcm16", min(native.rate_hz, STT_MAX_RATE_HZ))


async def transcribe(
    client: openai.AsyncOpenAI,
    model: str,
    utterance: bytes,
    rate_hz: int,
    language: str,
    timeout_s: float,
    request_id: str,
) -> str:
    """The text of one user turn (PCM16 at ``rate_hz``)."""
    extra: dict[str, Any] = {"language": language} if language else {}
    result = await client.audio.transcriptions.create(
        model=model,
        file=("turn.wav", wav_bytes(utterance, rate_hz), "audio/wav"),
        response_format="json",
        timeout=timeout_s,
        extra_headers={CLIENT_REQUEST_ID: request_id},
        **extra,
    )
    return str(result.text).strip()


async def synthesize(
    client: openai.AsyncOpenAI,
    model: str,
    voice: str,
    text: str,
    on_audio: Callable[[bytes], Awaitable[None]],
    timeout_s: float,
    request_id: str,
) -> None:
    """Stream ``text`` as ``TTS_SPEC`` PCM to ``on_audio``, in whole samples, as it arrives."""
    odd = b""
    async with client.audio.speech.with_streaming_response.create(
        model=model,
        voice=voice,
        input=text,
        response_format="pcm",
        timeout=timeout_s,
        extra_headers={CLIENT_REQUEST_ID: request_id},
    ) as response:
        # whatever has arrived, at once: waiting to fill a fixed read size would hold the
        # start of the sentence back while the server streams slower than it is read
        async for chunk in response.iter_bytes():
            data = odd + chunk
            whole = len(data) - len(data) % 2
            odd = data[whole:]
            if whole:
                await on_audio(data[:whole])
