"""The websockets client traces handshake headers at DEBUG: with the bridge's redaction
installed, no provider credential reaches a log line (a real handshake to the fakes)."""

from __future__ import annotations

import logging

import pytest

from bridge.ops.logs import install_redaction
from pipeline.agents.providers.deepgram.access import DeepgramAccess
from pipeline.agents.providers.websocket import open_socket
from tests.fakes.deepgram import API_KEY, CF_TOKEN, FakeDeepgram
from tests.fakes.elevenlabs import API_KEY as XI_KEY
from tests.fakes.elevenlabs import FakeElevenLabs


async def test_provider_credentials_are_redacted_from_debug_traces(
    caplog: pytest.LogCaptureFixture,
) -> None:
    install_redaction()
    deepgram = FakeDeepgram().start()
    elevenlabs = FakeElevenLabs().start()
    try:
        with caplog.at_level(logging.DEBUG, logger="websockets.client"):
            for access in (
                DeepgramAccess("deepgram", deepgram.ws, API_KEY),
                DeepgramAccess("cloudflare", deepgram.ws, CF_TOKEN, "acct", "gw"),
            ):
                url = access.url(
                    "aura", "aura-2-thalia-en", {"encoding": "mulaw", "sample_rate": 8000}
                )
                ws = await open_socket(url, access.headers(), 5.0, "test")
                await ws.close()
            url = elevenlabs.url("voice1", "multi-stream-input", output_format="ulaw_8000")
            ws = await open_socket(url, {"xi-api-key": XI_KEY}, 5.0, "test")
            await ws.close()
    finally:
        deepgram.stop()
        elevenlabs.stop()
    lines = [r.getMessage() for r in caplog.records if r.name == "websockets.client"]
    assert any("[redacted]" in line for line in lines)  # the trace is there, masked
    for secret in (API_KEY, CF_TOKEN, XI_KEY):
        assert not any(secret in line for line in lines), secret
