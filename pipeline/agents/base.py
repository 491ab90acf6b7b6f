"""The agent seam: one interface for cascaded (STT -> LLM -> TTS) and speech-to-speech agents.

Two turn models share it:

* ``detects_turns = False`` (cascaded, echo): the pipeline's endpointer finds each user turn
  and calls :meth:`Agent.respond` with the whole utterance; the agent speaks through
  :class:`AgentOutput` using the ``turn_id`` it was given.
* ``detects_turns = True`` (speech-to-speech, e.g. OpenAI Realtime): the pipeline streams
  every inbound frame to :meth:`Agent.feed`; the agent opens its own turns with
  :meth:`AgentOutput.begin_turn` and reports barge-in with
  :meth:`AgentOutput.user_speech_started`.

A cascade with a streaming recogniser sits between the two (``hears_every_frame = True``):
it gets every frame through :meth:`Agent.feed` *and* the endpointer keeps running. While the
recogniser is up (:attr:`Agent.commits_turns`), the agent commits turns itself with
:meth:`AgentOutput.commit_turn`; the endpointer's onsets still barge in, and when the
recogniser is down the endpointer's turns reach :meth:`Agent.respond` as usual.

Either way the pipeline owns playback: it paces audio, stamps it with turn ids, and on
barge-in tells the agent how much of a turn the user actually heard (:meth:`Agent.interrupted`)
so a transcript can be cut at what was heard, not at what was generated.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from pipeline.audio import AudioSpec
from pipeline.tasks import TaskSet
from pipeline.tools.base import ToolCallRecord, TransferTarget
from pipeline.tools.call_tools import CallTools


@dataclass(frozen=True, slots=True)
class CallInfo:
    """What an agent may know about the call it serves."""

    call_id: str
    transport: str
    #: native inbound audio at the pipeline edge (PCM16 at the endpointer rate)
    native_in: AudioSpec
    #: caller identity: a masked phone number, a device id
    caller: str = ""
    callee: str = ""
    params: Mapping[str, str] = field(default_factory=dict)
    #: the wire's own formats (μ-law 8 kHz on a phone line), for a stage that can take or
    #: produce them as they are and so spare the call a conversion; None: ``native_in``
    wire_in: AudioSpec | None = None
    wire_out: AudioSpec | None = None
    #: the far end's own tools (a xiaozhi device's MCP tools), listed during the call;
    #: LLM agents offer them for this call only (``pipeline/tools/call_tools.py``)
    tools: CallTools | None = None

    @property
    def audio_in(self) -> AudioSpec:
        """The caller's audio as the wire carries it."""
        return self.wire_in or self.native_in

    @property
    def audio_out(self) -> AudioSpec:
        """The format the far end plays."""
        return self.wire_out or self.native_in


class AgentOutput(Protocol):
    """What an agent may do to its call. Implemented by :class:`CallSession`."""

    #: the call's tasks: an agent starts every task of its own here, never with
    #: ``asyncio.create_task``, so the call's end cancels it (and a supervised task that
    #: fails ends the call with an internal error instead of failing unseen)
    tasks: TaskSet

    def begin_turn(self) -> int:
        """Open an agent-initiated response (greeting, speech-to-speech reply); returns its id."""
        ...

    async def audio(self, turn_id: int, pcm: bytes) -> None:
        """Queue reply audio in the agent's ``output_spec``. Waits while the playout is full.

        Audio for a turn that is no longer current (barged in) is dropped silently.
        """

    def end_turn(self, turn_id: int) -> None:
        """No more audio for ``turn_id``."""

    def caption(self, turn_id: int, text: str) -> None:
        """The audio queued next for ``turn_id`` speaks ``text`` (a sentence): a far end with
        a screen shows it as that audio starts to play (``pipeline/captions.py``)."""

    def commit_turn(self, words: str | None = None) -> int | None:
        """The agent's recogniser found the end of a user turn of ``words``: open it and have
        :meth:`Agent.respond` answer it (with no audio: the agent knows the words). None: it
        was a sound over a reply judged not to be an interruption (a backchannel), so there
        is no turn to answer."""
        ...

    def user_speech_started(self) -> None:
        """The agent's own turn detection heard the user start speaking (barge-in signal)."""

    def interrupt(self) -> None:
        """The agent's far end stopped its reply now (a Twilio-ready backend's ``clear``): a
        real interruption, never judged; the agent then hears :meth:`Agent.interrupted`."""

    async def played(self, turn_id: int, position_ms: float | None = None) -> None:
        """Wait until the caller has heard ``turn_id`` up to ``position_ms`` of it (None: all
        of it), or there is nothing more of it to hear (a backend's ``mark``)."""

    def judging_sound(self) -> bool:
        """True while a sound over a reply is judged, or was judged harmless and the caller
        has not started another since: speech the agent hears now is that sound."""
        ...

    def transcript(self, turn_id: int, role: str, text: str) -> None:
        """Report text for call records (user or assistant)."""

    def hang_up(self, reason: str) -> None:
        """End the call once everything queued so far has been heard (the agent's goodbye)."""

    def tool_call(self, record: ToolCallRecord) -> None:
        """Report a tool call (started, ended, or its spoken answer cut off) for the records."""

    async def transfer(self, target: TransferTarget) -> None:
        """Hand the call to a person once what was said has been heard; raises
        :class:`~pipeline.tools.base.TransferFailed` and the call goes on."""

    async def fail_turn(self, turn_id: int, kind: str) -> None:
        """Give up on ``turn_id`` after retries: the caller hears an apology, a toy an error.

        Cascaded agents simply raise from :meth:`Agent.respond`; speech-to-speech agents, whose
        turns run in their own tasks, call this. ``kind`` names the failure for metrics.
        """


class Agent(ABC):
    """One agent instance serves one call."""

    input_spec: AudioSpec
    output_spec: AudioSpec
    detects_turns: bool = False
    #: gets every frame (:meth:`feed`) while the endpointer still runs (see the module doc)
    hears_every_frame: bool = False
    #: has a recogniser of its own for :meth:`words_in` (False: sounds are judged alone)
    hears_words: bool = False
    #: answers keypad entries (:meth:`keypad`); False: keys are only seen (:meth:`dtmf`)
    uses_keypad: bool = False
    #: answers typed text (:meth:`typed`); False: a typed turn is logged and ignored
    reads_text: bool = False
    #: detects the caller talking over it and stops itself (:meth:`AgentOutput.interrupt`):
    #: the session's onsets then never cut its audio (a Twilio-ready backend's ``clear``)
    owns_interruptions: bool = False

    @property
    def commits_turns(self) -> bool:
        """True while the agent, not the endpointer, ends the user's turns."""
        return False

    async def start(self, out: AgentOutput) -> None:  # noqa: B027 - optional hook
        """Connect and optionally open a greeting turn through ``out``.

        Must return promptly: the transport opens the call around it and reads nothing from
        the far end until it returns (no caller audio, no playback confirmations). Open the
        greeting's turn here, so the transport knows one is coming, and speak it from a task
        started with ``out.tasks``.
        """

    async def respond(self, turn_id: int, utterance: bytes, out: AgentOutput) -> None:  # noqa: B027
        """Answer one user utterance (``input_spec`` PCM). Cancelled on barge-in."""

    def prepare(self, turn_id: int, utterance: bytes) -> None:  # noqa: B027 - optional hook
        """The caller paused: if the silence lasts, :meth:`respond` gets this very ``utterance``
        as ``turn_id``, a few hundred milliseconds from now. An agent may start on it (e.g.
        transcribe it) so that time is not added to the caller's wait; if the caller speaks
        again instead, ``respond`` later gets different audio. Must not block."""

    def endpointer_turn(  # noqa: B027 - only for agents that commit turns
        self, utterance: bytes, duration_ms: float, speech_ms: float
    ) -> None:
        """While :attr:`commits_turns`: the endpointer found a turn too (not committed). An
        agent may check its recogniser against it (one that heard nothing is stalled)."""

    def feed(self, audio: bytes) -> None:  # noqa: B027 - detects_turns, hears_every_frame
        """Stream inbound audio (``input_spec``); must not block."""

    def dtmf(self, digit: str, out: AgentOutput) -> None:  # noqa: B027
        """A keypad digit from the caller, as it is pressed (in the receive path)."""

    async def keypad(self, turn_id: int, digits: str, out: AgentOutput) -> None:  # noqa: B027
        """Answer a keypad entry (``digits``, gathered by the session) as user turn
        ``turn_id`` (:attr:`uses_keypad`). Cancelled on barge-in, like :meth:`respond`."""

    async def typed(self, turn_id: int, text: str, out: AgentOutput) -> None:  # noqa: B027
        """Answer ``text`` the user typed (a device's text input) as user turn ``turn_id``
        (:attr:`reads_text`): the words are the user's, no speech to recognise; reported
        as the user's transcript. Cancelled on barge-in, like :meth:`respond`."""

    async def say(self, turn_id: int, text: str, out: AgentOutput) -> None:  # noqa: B027
        """Speak exactly ``text`` as ``turn_id`` (a voicemail message); an agent that cannot
        speak text stays silent."""

    @property
    def voicemail(self) -> str:
        """What to leave on an answering machine (the persona's); empty: hang up."""
        return ""

    async def farewell(self, turn_id: int, out: AgentOutput) -> None:  # noqa: B027
        """The call is ending (idle or too long): say a short goodbye as ``turn_id``."""

    def interrupted(self, turn_id: int, heard_ms: float) -> None:  # noqa: B027
        """Turn ``turn_id`` was cut off after ``heard_ms`` of it had been heard."""

    @property
    def backchannels(self) -> tuple[str, ...]:
        """What callers say over this agent's replies to show they listen (a persona's list);
        empty: the bridge's default list."""
        return ()

    async def words_in(self, utterance: bytes) -> str | None:
        """The words in a short sound the caller made over a reply (``input_spec`` PCM), so
        an "uh-huh" can be told from "stop"; "" for none. None: this agent has no recogniser
        of its own, and the sound alone decides (``pipeline/barge_in.py``)."""
        return None

    def interruption_began(self, turn_id: int) -> None:  # noqa: B027 - optional hook
        """The caller made a sound over ``turn_id``: its playback is held while it is judged;
        the verdict is :meth:`interrupted` (real) or :meth:`interruption_dismissed`."""

    def interruption_dismissed(self, turn_id: int) -> None:  # noqa: B027 - optional hook
        """The sound was not an interruption: ``turn_id`` goes on where the caller stopped
        hearing it, and what the agent heard of the sound must not become a turn."""

    async def close(self) -> None:  # noqa: B027
        """Release connections; called exactly once when the call ends."""


class AgentFactory(ABC):
    """Process-wide: loads models once, then creates one :class:`Agent` per call."""

    name: str

    @abstractmethod
    def create(self, call: CallInfo) -> Agent: ...

    async def start(self) -> None:  # noqa: B027
        """The process starts serving: connect what is shared (MCP servers' tool lists)."""

    async def aclose(self) -> None:  # noqa: B027
        """Release process-wide resources at shutdown."""
