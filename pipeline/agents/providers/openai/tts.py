"""OpenAI speech: one sentence to streamed audio, read as it arrives.

Speech is requested as raw PCM (24 kHz, 16-bit), so the caller hears the start of a sentence
while the rest is being synthesised.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.agents.base import CallInfo
from pipeline.agents.cascade.stages import Attempt, OnAudio, SentenceSpeech, StageFactory
from pipeline.agents.providers.openai.clients import CLIENT_REQUEST_ID, OpenAIClients
from pipeline.agents.providers.openai.config import Endpoint
from pipeline.agents.providers.openai.stage import OpenAIStage
from pipeline.audio import PCM16_24K

#: OpenAI's ``response_format="pcm"``: 24 kHz, 16-bit little-endian, mono
TTS_SPEC = PCM16_24K
DEFAULT_VOICE = "alloy"


@dataclass(frozen=True, slots=True)
class SpeechOptions:
    endpoint: Endpoint
    model: str = "gpt-4o-mini-tts"
    #: the voice of a reply that names none (a persona without one, a backup stage's)
    voice: str = DEFAULT_VOICE


class OpenAISpeech(OpenAIStage, SentenceSpeech):
    output_spec = TTS_SPEC

    def __init__(self, clients: OpenAIClients, options: SpeechOptions) -> None:
        super().__init__(clients, options.endpoint)
        self._options = options

    async def synthesize(self, text: str, voice: str, on_audio: OnAudio, attempt: Attempt) -> None:
        """Stream ``text`` as ``TTS_SPEC`` PCM to ``on_audio``, in whole samples, as it arrives."""
        odd = b""
        async with self.client.audio.speech.with_streaming_response.create(
            model=self._options.model,
            voice=voice or self._options.voice,
            input=text,
            response_format="pcm",
            timeout=attempt.timeout_s,
            extra_headers={CLIENT_REQUEST_ID: attempt.request_id},
        ) as response:
            # whatever has arrived, at once: waiting to fill a fixed read size would hold the
            # start of the sentence back while the server streams slower than it is read
            async for chunk in response.iter_bytes():
                data = odd + chunk
                whole = len(data) - len(data) % 2
                odd = data[whole:]
                if whole:
                    await on_audio(data[:whole])


class OpenAISpeechFactory(StageFactory[OpenAISpeech]):
    provider = "openai"

    def __init__(self, clients: OpenAIClients, options: SpeechOptions) -> None:
        self.clients = clients
        self.options = options

    def create(self, call: CallInfo) -> OpenAISpeech:
        return OpenAISpeech(self.clients, self.options)

    async def aclose(self) -> None:
        await self.clients.aclose()
