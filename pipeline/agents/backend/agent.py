"""``BRIDGE_AGENT=backend``: any voice agent that speaks Twilio Media Streams answers the call.

Many teams already run such a server. Towards it the bridge behaves exactly as Twilio does,
whatever the caller's transport (a phone, a toy): ``connected``, ``start`` (its
``customParameters`` name the transport, the caller and the persona; a toy's call gets
callSid/streamSid/accountSid of our own making), the caller's audio as 20 ms μ-law ``media``,
``dtmf``, ``mark`` echoes once the marked audio has played to OUR caller, ``stop`` at the end.
It honours the backend's ``media`` (played to the caller), ``mark`` and ``clear``.

Audio: the agent's formats are μ-law 8 kHz both ways, so a phone call passes through untouched
(no decoding, no resampling: the bytes the caller sends are the bytes the backend gets, and
back); the session converts a toy's 16 kHz PCM to μ-law and the backend's μ-law to the toy's
Opus, once each way.

Design choices (see also :mod:`.replies` for turns and marks, :mod:`.link` for reconnects):

* **The backend owns barge-in** (:attr:`Agent.owns_interruptions`). It hears the caller and
  sends ``clear`` when they talk over it; the session's endpointer onsets then only count as
  activity and never cut its audio (doing both would stop replies the backend meant to go on
  with, and judge sounds it already judged). A ``clear`` is a real interruption through the
  session (:meth:`AgentOutput.interrupt`, the toy button's path): playback stops at once, the
  turn is cancelled, and every pending mark is echoed at once, as Twilio does.
* **Turns** are the speaker's: opened by audio, ended by a quiet mark, a long gap or ``clear``.
* **Failures**: a refused handshake (401/403: no retry) or a backend that stays away: the
  caller hears the apology (a toy gets RESPONSE.ERROR) and the call ends politely. A drop
  mid-call: what was playing becomes the apology and the link reconnects (a new stream of the
  same call), within a small per-call budget, with backoff. A backend that closes normally
  (1000) ended the call: we hang up once its last words were heard.
* **Farewell and voicemail**: a Twilio backend cannot be asked to say a given line; the call
  ends without one.
"""

from __future__ import annotations

import asyncio
import logging

from pipeline.agents.backend.config import BackendConfig
from pipeline.agents.backend.link import BackendLink
from pipeline.agents.backend.messages import (
    Clear,
    Mark,
    Media,
    Rejected,
    TwilioStream,
    new_sid,
    parse,
)
from pipeline.agents.backend.replies import Replies
from pipeline.agents.base import Agent, AgentFactory, AgentOutput, CallInfo
from pipeline.agents.persona import PersonaBook
from pipeline.audio import ULAW_8K
from pipeline.call_logger import CallLog

log = logging.getLogger("pipeline.agents.backend")

#: at most this many ignored frames are logged per call (a hostile backend cannot flood logs)
MAX_LOGGED_REJECTS = 5


def stream_params(call: CallInfo, persona: str) -> dict[str, str]:
    """``customParameters``: the call's own (a phone's TwiML ``<Parameter>``s) and ours."""
    return {
        **{str(k): str(v) for k, v in call.params.items()},
        "transport": call.transport,
        "caller": call.caller,
        "callee": call.callee,
        "persona": persona,
    }


class BackendAgent(Agent):
    detects_turns = True
    owns_interruptions = True
    input_spec = ULAW_8K
    output_spec = ULAW_8K

    def __init__(self, config: BackendConfig, call: CallInfo, persona: str = "default") -> None:
        self.config = config
        self.call = call
        self.log = CallLog.of(log, call.call_id, call.transport)
        # a phone call keeps its own CallSid; any other call gets one of our making
        twilio = call.transport == "twilio" and call.call_id.startswith("CA")
        self.call_sid = call.call_id if twilio else new_sid("CA")
        self.account_sid = call.params.get("accountSid") or new_sid("AC")
        self.params = stream_params(call, persona)
        self._link = BackendLink(config, self._new_stream, self.log)
        self._replies = Replies(config, self._echo)
        self._out: AgentOutput | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.rejected = 0
        self._drop_logged = False

    def _new_stream(self) -> TwilioStream:
        return TwilioStream(self.call_sid, self.account_sid, self.params)

    @property
    def connections(self) -> int:
        return self._link.connections

    @property
    def dropped_ms(self) -> float:
        """Caller audio dropped while the backend was away or slow."""
        return ULAW_8K.duration_ms(self._link.dropped_bytes)

    # -- Agent -----------------------------------------------------------------------------

    async def start(self, out: AgentOutput) -> None:
        """Connect in the background: the transport's receive loop must keep running."""
        self._out = out
        self._tasks = [
            out.tasks.spawn(self._link.run(self), "backend-link"),
            out.tasks.spawn(self._link.send_loop(), "backend-sender"),
            out.tasks.spawn(self._replies.run(out), "backend-speaker"),
            out.tasks.spawn(self._replies.echo_loop(out), "backend-marks"),
        ]

    def feed(self, audio: bytes) -> None:
        if self._link.put_audio(audio) and not self._drop_logged:
            self._drop_logged = True
            self.log.warning("the backend is not keeping up: dropping the oldest caller audio")

    def dtmf(self, digit: str, out: AgentOutput) -> None:
        self._link.send(lambda stream: stream.dtmf(digit))

    def interrupted(self, turn_id: int, heard_ms: float) -> None:
        """We stopped the reply ourselves (a toy's button, a watchdog; or after a ``clear``):
        its marks will never play, so they come back now, as after a ``clear``."""
        if self._replies.turn == turn_id:
            for name in self._replies.clear():
                self._echo(name)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._link.close()
        if self._link.dropped_bytes:
            self.log.warning("dropped %.0f ms of caller audio", self.dropped_ms)

    # -- the link's listener ---------------------------------------------------------------

    def on_frame(self, frame: str | bytes, stream: TwilioStream) -> None:
        message = parse(frame, stream.stream_sid, self.config.max_frame_bytes)
        if isinstance(message, Media):
            self._replies.media(message.ulaw)
        elif isinstance(message, Mark):
            self._replies.mark(message.name)
        elif isinstance(message, Clear):
            for name in self._replies.clear():
                self._echo(name)
            if self._out is not None:
                self._out.interrupt()
        else:
            self._reject(message)

    def _reject(self, message: Rejected) -> None:
        self.rejected += 1
        if self.rejected <= MAX_LOGGED_REJECTS:
            self.log.warning("ignoring a backend message: %s", message.why)

    def on_lost(self) -> None:
        self._replies.forget_marks()
        self._replies.failed("backend_dropped", hang_up=False)

    def on_ended(self) -> None:
        """The backend closed its stream: it ended the call (after its last words)."""
        self.log.info("the backend ended the call")
        self._replies.ended("backend ended the call")

    def on_give_up(self, kind: str) -> None:
        self._replies.failed(kind, hang_up=True)

    def _echo(self, name: str) -> None:
        self._link.send(lambda stream: stream.mark(name))


class BackendAgentFactory(AgentFactory):
    """One backend connection per call."""

    name = "backend"

    def __init__(self, config: BackendConfig, personas: PersonaBook | None = None) -> None:
        self.config = config
        self.personas = personas

    def create(self, call: CallInfo) -> Agent:
        persona = self.personas.for_call(call).name if self.personas is not None else "default"
        return BackendAgent(self.config, call, persona)
