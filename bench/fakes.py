"""The providers' fakes a cascade benchmark talks to, each in a process of its own.

A fake in the bridge's process would share its interpreter lock and its core: its work would
be counted as the bridge's. So each runs apart, on the load generator's core (the children
inherit the generator's CPU affinity):

* the fake OpenAI (``tests/fakes/openai_server.py``) in a ``multiprocessing`` child that, at
  the end, sends back every request it served with its times (:class:`ProviderRequest`), so
  the bench can tell how long the bridge waited on each (the chat always goes there);
* the fake Deepgram (``python -m tests.fakes.deepgram_server``: Nova-3 or Flux, and Aura) and
  the fake ElevenLabs (``python -m tests.fakes.elevenlabs_server``) as command-line servers.

Every stage gets the same delay (``injected_ms``): before the chat's first token, before a
transcription's or a speech request's first byte at the fake OpenAI, before each Aura flush's
first audio, before each ElevenLabs generation's first audio. The streaming recognisers get
none: Flux sends ``EagerEndOfTurn`` 100 ms and ``EndOfTurn`` 200 ms of audio after the last
voiced frame, Nova-3 its ``speech_final`` after the bridge's endpointing (300 ms).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager, suppress
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from bench.procstat import cpu_seconds
from bench.server import free_port

ROOT = Path(__file__).resolve().parent.parent
FAKE_KEY = "sk-bench"
#: the fakes' own defaults (tests/fakes/deepgram/server.py, tests/fakes/elevenlabs/server.py)
DEEPGRAM_KEY = "dg-test-key"
ELEVENLABS_KEY = "xi-test-elevenlabs"
ELEVENLABS_VOICE = "bench-voice"
STT_CHOICES = ("openai", "deepgram")
TTS_CHOICES = ("openai", "deepgram", "elevenlabs")
DEEPGRAM_MODELS = ("nova-3", "flux")
#: audio after the last voiced frame before the fake Flux's EagerEndOfTurn and EndOfTurn
FLUX_EAGER_MS = 100
FLUX_EOT_MS = 200
#: a first sentence of realistic length: a 60 ms "Hi!" would sit in the resampler and the
#: 40 ms chunker until the next sentence arrived, which real speech never does
REPLY = "Sure, here is the answer you asked for. Have a nice day."


@dataclass(frozen=True, slots=True)
class Stack:
    """The cascade's stages (``BRIDGE_AGENT=openai``): the chat is always the fake OpenAI."""

    stt: str = "openai"
    deepgram_model: str = "nova-3"
    tts: str = "openai"

    @property
    def name(self) -> str:
        stt = f"deepgram-{self.deepgram_model}" if self.stt == "deepgram" else self.stt
        return f"{stt}+{self.tts}"

    @property
    def openai_endpoints(self) -> tuple[str, ...]:
        """The fake OpenAI's endpoints this stack uses (always the chat)."""
        used = ["chat"]
        if self.stt == "openai":
            used.append("transcriptions")
        if self.tts == "openai":
            used.append("speech")
        return tuple(used)

    @property
    def streams_speech(self) -> bool:
        """The speech stage is a streaming fake (its wait is the injected delay)."""
        return self.tts != "openai"


@dataclass(frozen=True, slots=True)
class ProviderRequest:
    """One request as the fake OpenAI saw it (wall-clock seconds, as in the call records)."""

    endpoint: str
    client_request_id: str
    #: the fake's handler began: its HTTP parsing before that counts as the bridge's
    started_s: float
    #: when the bridge had what it needed to go on. Transcription: the whole (small) JSON
    #: body. Chat and speech: the first byte; the rest of the stream arrives while the bridge
    #: works, and what the bridge spends on it counts as its overhead (a conservative split).
    ready_s: float


@dataclass
class Fakes:
    """The running fakes: the bridge's settings for them, and what they report."""

    stack: Stack
    injected_ms: float
    env: dict[str, str] = field(default_factory=dict)
    #: every request the fake OpenAI served; filled in as the fakes stop
    served: list[ProviderRequest] = field(default_factory=list)
    #: the fakes' processes, for their CPU time
    pids: list[int] = field(default_factory=list)

    def cpu_seconds(self) -> float:
        """CPU time all the fakes used so far."""
        total = 0.0
        for pid in self.pids:
            with suppress(OSError):  # a fake that has exited used nothing more
                total += cpu_seconds(pid)
        return total


def serve_fake_openai(conn: Connection, delays_s: dict[str, float]) -> None:
    """The fake OpenAI API, until told to stop; then the requests it served."""
    from bridge.ops.heap import settle
    from tests.fakes.openai_server import ChatScript, FakeOpenAI

    fake = FakeOpenAI(api_key=FAKE_KEY).start()
    settle()  # as the bridge does: a full collection of the fake's heap would stall it
    fake.default_reply = ChatScript(REPLY)
    fake.first_byte_delay_s = dict(delays_s)
    conn.send(fake.base_url)
    conn.recv()  # stop
    fake.stop()
    to_wall_s = time.time() - time.monotonic()
    served = []
    for r in fake.requests:
        ready = r.finished_at if r.endpoint == "transcriptions" else r.first_byte_at
        request_id = r.headers.get("x-client-request-id", "")
        started_s = r.started_at + to_wall_s
        served.append(
            ProviderRequest(r.endpoint, request_id, started_s, (ready or r.started_at) + to_wall_s)
        )
    conn.send(served)


@asynccontextmanager
async def fake_openai(
    delays_s: dict[str, float], pids: list[int]
) -> AsyncIterator[tuple[str, list[ProviderRequest]]]:
    """The fake's base URL; once the block ends, the list holds every request it served."""
    ctx = multiprocessing.get_context("spawn")
    here, there = ctx.Pipe()
    child = ctx.Process(target=serve_fake_openai, args=(there, delays_s), daemon=True)
    child.start()
    served: list[ProviderRequest] = []
    try:
        base_url = await asyncio.to_thread(_answer, here, child)
        assert child.pid is not None
        pids.append(child.pid)
        yield base_url, served
    finally:
        if child.is_alive():
            here.send("stop")
            served += await asyncio.to_thread(_answer, here, child)
        child.join(10)


def _answer(conn: Connection, child: BaseProcess) -> Any:
    """The child's next message; raises if it died instead."""
    while not conn.poll(0.5):
        if not child.is_alive():
            raise RuntimeError(f"the fake OpenAI exited ({child.exitcode})")
    return conn.recv()


@asynccontextmanager
async def fake_server(module: str, args: list[str], pids: list[int]) -> AsyncIterator[str]:
    """``python -m module --port N args...`` until the block ends; yields ``ws://…:N``."""
    port = free_port()
    proc = await asyncio.to_thread(_start_listening, module, port, args)
    try:
        pids.append(proc.pid)
        yield f"ws://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            await asyncio.to_thread(proc.wait, 10)
        except subprocess.TimeoutExpired:
            proc.kill()


def _start_listening(module: str, port: int, args: list[str]) -> subprocess.Popen[bytes]:
    """Start the server and wait until it takes connections."""
    proc = subprocess.Popen(
        [sys.executable, "-m", module, "--port", str(port), *args],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(proc.stderr.read().decode() if proc.stderr else "exited")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"{module} did not listen on {port}")


@asynccontextmanager
async def provider_fakes(
    stack: Stack, injected_ms: float, lean_deepgram: bool = False
) -> AsyncIterator[Fakes]:
    """Every fake ``stack`` needs, running, with the bridge's settings for them in ``env``.
    ``lean_deepgram``: Deepgram's protocol behind a cheaper server (``bench/lean_deepgram.py``)."""
    delay_s = injected_ms / 1000
    fakes = Fakes(stack, injected_ms)
    env = fakes.env
    env.update({"BRIDGE_AGENT": "openai", "BRIDGE_STT": stack.stt, "BRIDGE_TTS": stack.tts})
    async with AsyncExitStack() as running:
        delays = dict.fromkeys(stack.openai_endpoints, delay_s)
        base_url, fakes.served = await running.enter_async_context(fake_openai(delays, fakes.pids))
        env.update({"BRIDGE_OPENAI_BASE_URL": base_url, "OPENAI_API_KEY": FAKE_KEY})
        if "deepgram" in (stack.stt, stack.tts):
            args = ["--eager-ms", str(FLUX_EAGER_MS), "--eot-ms", str(FLUX_EOT_MS)]
            args += ["--first-result-delay-ms", f"aura={injected_ms:g}"]
            url = await running.enter_async_context(
                fake_server(
                    "bench.lean_deepgram" if lean_deepgram else "tests.fakes.deepgram_server",
                    args,
                    fakes.pids,
                )
            )
            env.update(
                {
                    "BRIDGE_DEEPGRAM_URL": url,
                    "BRIDGE_DEEPGRAM_API_KEY": DEEPGRAM_KEY,
                    "BRIDGE_DEEPGRAM_STT_MODEL": stack.deepgram_model,
                }
            )
        if stack.tts == "elevenlabs":
            args = ["--first-audio-delay-ms", f"{injected_ms:g}"]
            url = await running.enter_async_context(
                fake_server("tests.fakes.elevenlabs_server", args, fakes.pids)
            )
            env.update(
                {
                    "BRIDGE_ELEVENLABS_URL": url,
                    "BRIDGE_ELEVENLABS_API_KEY": ELEVENLABS_KEY,
                    "BRIDGE_ELEVENLABS_VOICE_ID": ELEVENLABS_VOICE,
                }
            )
        try:
            yield fakes  # fakes.served is filled in as the fake OpenAI stops
        finally:
            fakes.pids.clear()
