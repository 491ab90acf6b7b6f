"""OpenAI transcription: a user turn, uploaded whole as a WAV file, to its text.

The turn goes at the call's own rate (a phone's 8 kHz, a toy's 16 kHz): upsampling adds no
information for the model, which resamples itself, and doubles the upload and the work before.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipeline.agents.base import CallInfo
from pipeline.agents.cascade.stages import Attempt, SpeechToText, StageFactory
from pipeline.agents.providers.openai.clients import CLIENT_REQUEST_ID, OpenAIClients
from pipeline.agents.providers.openai.config import Endpoint
from pipeline.agents.providers.openai.stage import OpenAIStage
from pipeline.audio import AudioSpec
from pipeline.wav import wav_bytes

#: transcription models work at 16 kHz; a toy sends that, a phone line 8 kHz
STT_MAX_RATE_HZ = 16000


def stt_spec(native: AudioSpec) -> AudioSpec:
    """What a call's turns are transcribed from: PCM16 at the call's own rate, up to 16 kHz."""
    return AudioSpec("pcm16", min(native.rate_hz, STT_MAX_RATE_HZ))


@dataclass(frozen=True, slots=True)
class TranscriptionOptions:
    endpoint: Endpoint
    model: str = "gpt-4o-mini-transcribe"
    #: ISO-639-1 hint; empty: the model detects the language
    language: str = ""


class OpenAITranscription(OpenAIStage, SpeechToText):
    def __init__(self, clients: OpenAIClients, options: TranscriptionOptions, spec: AudioSpec):
        super().__init__(clients, options.endpoint)
        self.input_spec = spec
        self._options = options

    async def transcribe(self, utterance: bytes, attempt: Attempt) -> str:
        options = self._options
        extra: dict[str, Any] = {"language": options.language} if options.language else {}
        result = await self.client.audio.transcriptions.create(
            model=options.model,
            file=("turn.wav", wav_bytes(utterance, self.input_spec.rate_hz), "audio/wav"),
            response_format="json",
            timeout=attempt.timeout_s,
            extra_headers={CLIENT_REQUEST_ID: attempt.request_id},
            **extra,
        )
        return str(result.text).strip()


class OpenAITranscriptionFactory(StageFactory[OpenAITranscription]):
    provider = "openai"

    def __init__(self, clients: OpenAIClients, options: TranscriptionOptions) -> None:
        self.clients = clients
        self.options = options

    def create(self, call: CallInfo) -> OpenAITranscription:
        return OpenAITranscription(self.clients, self.options, stt_spec(call.native_in))

    async def aclose(self) -> None:
        await self.clients.aclose()
