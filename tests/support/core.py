"""A call's core without a socket: a real :class:`CallSession` on a recording port and a
virtual clock, with a caller that speaks real recorded speech frame by frame.

The harness plays the transport's part: it feeds inbound frames at the wire's pace (virtual
time, so a 2 s utterance takes microseconds) and, like an adapter whose socket went away,
tears the session down once the session has closed the port.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from pipeline.agents.base import Agent, CallInfo
from pipeline.audio import PCM16_16K, AudioSpec, Converter
from pipeline.endpointing import native_spec
from pipeline.observers import ObservedCall, SessionObserver
from pipeline.session import CallSession
from pipeline.session_config import SessionConfig
from pipeline.wav import read_wav
from tests.fakes.port import RecordingPort
from tests.support.audio import FIXTURES

FRAME_MS = 20


def speech(spec: AudioSpec, name: str = "hello_16k.wav") -> bytes:
    """A recorded utterance (about 1.6 s) in ``spec``."""
    pcm, rate_hz = read_wav(FIXTURES / name)
    converter = Converter(AudioSpec("pcm16", rate_hz), spec)
    return converter.process(pcm) + converter.flush()


def silence(spec: AudioSpec, ms: int) -> bytes:
    fill = b"\xff" if spec.encoding == "ulaw" else b"\x00"
    return fill * (spec.bytes_for_ms(ms) // len(fill))


@dataclass
class Hook:
    at_s: float
    name: str
    args: tuple[object, ...]


@dataclass
class RecordingObserver(SessionObserver):
    """Every hook the session calls, with the (virtual) time it was called."""

    hooks: list[Hook] = field(default_factory=list)

    def _add(self, name: str, *args: object) -> None:
        now = asyncio.get_running_loop().time()
        self.hooks.append(Hook(now, name, args))

    def named(self, name: str) -> list[Hook]:
        return [h for h in self.hooks if h.name == name]

    def on_user_turn(self, session: ObservedCall, turn_id: int, speech_ms: float) -> None:
        self._add("user_turn", turn_id, speech_ms)

    def on_turn_latency(self, session: ObservedCall, turn_id: int, latency_ms: float) -> None:
        self._add("latency", turn_id, latency_ms)

    def on_barge_in(self, session: ObservedCall, turn_id: int, heard_ms: float) -> None:
        self._add("barge_in", turn_id, heard_ms)

    def on_false_interruption(self, session: ObservedCall, turn_id: int, paused_ms: float) -> None:
        self._add("false_interruption", turn_id, paused_ms)

    def on_agent_error(self, session: ObservedCall, kind: str) -> None:
        self._add("agent_error", kind)

    def on_call_ended(self, session: ObservedCall) -> None:
        self._add("ended", session.end_reason)


class Core:
    """One call: the session, its port, its agent and what observed it."""

    def __init__(
        self,
        agent: Agent,
        config: SessionConfig | None = None,
        wire: AudioSpec | None = None,
        **port_options: object,
    ) -> None:
        loop = asyncio.get_running_loop()
        wire = wire or PCM16_16K  # toy-like unless the test names a wire
        self.port = RecordingPort(loop.time, wire_in=wire, wire_out=wire, **port_options)  # type: ignore[arg-type]
        self.observer = RecordingObserver()
        info = CallInfo("call-1", "fake", native_spec(wire))
        self.agent = agent
        self.session = CallSession(info, self.port, agent, config, self.observer, loop.time)
        self.closed = asyncio.Event()
        self.port.on_close = self._port_closed

    def _port_closed(self, code: int, reason: str) -> None:
        # as an adapter does once its socket is gone: tear the session down
        asyncio.get_running_loop().create_task(self._teardown(reason), name="teardown")

    async def _teardown(self, reason: str) -> None:
        await self.session.close(reason)
        self.closed.set()

    async def start(self) -> Core:
        await self.session.start()
        return self

    async def say(self, audio: bytes) -> None:
        """Stream ``audio`` (in the wire format) in 20 ms frames at the wire's pace."""
        step = self.port.wire_in.bytes_for_ms(FRAME_MS)
        for offset in range(0, len(audio), step):
            self.session.push_audio(audio[offset : offset + step])
            await asyncio.sleep(FRAME_MS / 1000)

    async def speak(self, trailing_silence_ms: int = 800) -> None:
        """The caller says the recorded utterance, then stays quiet long enough to end it."""
        wire = self.port.wire_in
        await self.say(speech(wire) + silence(wire, trailing_silence_ms))

    async def hang_up(self, reason: str = "caller hung up") -> None:
        """The far end goes away (the transport closes the session)."""
        await self.session.close(reason)
        self.closed.set()

    @property
    def now_s(self) -> float:
        return asyncio.get_running_loop().time()


async def wait_until(predicate: Callable[[], bool], timeout_s: float = 600.0) -> None:
    """Look again every 10 ms of (virtual) time until ``predicate()`` holds."""
    async with asyncio.timeout(timeout_s):
        while not predicate():  # noqa: ASYNC110 - virtual time: polling costs nothing
            await asyncio.sleep(0.01)
