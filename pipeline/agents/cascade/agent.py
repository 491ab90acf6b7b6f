"""The cascaded agent: hear (speech to text), think (streamed chat), speak (text to speech).

Each stage is an interface (``stages.py``) that any provider implements; the cascade never
names one. Today's ``openai`` agent is this cascade with the OpenAI stages.

Transcription starts before the turn ends when it can: once the caller has paused long enough
(:meth:`CascadeAgent.prepare`), the would-be turn is sent off, and the rest of the endpointer's
silence window hides the round trip. The committed turn reuses that transcript if its audio is
the same; if the caller spoke again, the early one is dropped.

With a streaming recogniser (``StreamingSpeechToText``), the agent hears every frame and the
recogniser finds the turns (``listening.py``): its eager end of turn starts the chat
speculatively, its end of turn commits the turn.

Per user turn, two things run at once: the chat stream (``chat_run.py``), cut into sentences
as they end, and the reply's speech (``speaker.py``), which hands each sentence to the speech
stage and forwards its audio as it arrives. While the caller hears sentence one, the model
writes sentence two; the playout's bounded queue is what lets synthesis of the next sentence
overlap playback of the current one.

When the model asks for tools (``tool_use.py``), the turn goes on after them with an answer
built on their results. A keypad entry is a turn whose words are "[keypad: 1]"; typed text
(a device's text input) is a turn whose words are the text: no speech to recognise.

Failures are retried within one per-turn :class:`~pipeline.agents.retry.Deadline` that bounds
the caller's silence. Nothing is ever repeated: the chat is retried only until its first
sentence was handed on, a sentence's speech only until its first audio was sent. When a turn
cannot be saved, :meth:`CascadeAgent.respond` raises and the session plays its packaged
apology (phones) or signals an error (toys); the call stays up.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable

from pipeline.agents.base import Agent, AgentOutput, CallInfo
from pipeline.agents.cascade.chat_run import ChatRun, cancel_and_wait
from pipeline.agents.cascade.config import CascadeConfig
from pipeline.agents.cascade.listening import Listening
from pipeline.agents.cascade.memory import Conversation, SpokenReply, ToolRound
from pipeline.agents.cascade.speaker import NextSentence, ReplySpeech, fixed_text
from pipeline.agents.cascade.stage_calls import StageCalls
from pipeline.agents.cascade.stages import (
    Attempt,
    CascadeStages,
    ChatReply,
    Message,
    OnSentence,
    StreamingSpeechToText,
)
from pipeline.agents.cascade.tool_use import MAX_TOOL_ROUNDS, ToolUse
from pipeline.agents.early import EarlyWork
from pipeline.agents.persona import Persona
from pipeline.agents.retry import Deadline
from pipeline.call_logger import CallLog
from pipeline.tools.toolbox import Toolbox

log = logging.getLogger("pipeline.agents.cascade")


class CascadeAgent(Agent):
    hears_words = True
    uses_keypad = True
    reads_text = True

    def __init__(
        self,
        call: CallInfo,
        persona: Persona,
        stages: CascadeStages,
        config: CascadeConfig,
        toolbox: Toolbox | None = None,
    ) -> None:
        self.input_spec = stages.stt.input_spec
        self.output_spec = stages.tts.output_spec
        self.hears_every_frame = isinstance(stages.stt, StreamingSpeechToText)
        self._call = call
        self._persona = persona
        self._voice = persona.voice
        self._stages = stages
        self._cfg = config
        self._memory = Conversation(persona.system_prompt)
        self._out: AgentOutput | None = None
        self._listening: Listening | None = None
        self._greeting: asyncio.Task[None] | None = None
        self._greeting_turn: int | None = None
        #: a transcription started in the caller's pause
        self._early = EarlyWork[str]()
        self._eager_runs = 0
        self.log = CallLog.of(log, call.call_id, call.transport)
        self._calls = StageCalls(call.call_id, config, self.log)
        self._tools = ToolUse(toolbox or Toolbox([], self.log), persona, self._memory)

    @property
    def persona(self) -> Persona:
        return self._persona

    @property
    def backchannels(self) -> tuple[str, ...]:
        return self._persona.backchannels

    @property
    def voicemail(self) -> str:
        return self._persona.voicemail

    @property
    def commits_turns(self) -> bool:
        listening = self._listening
        return listening is not None and listening.live

    # -- the seam --------------------------------------------------------------------------

    async def start(self, out: AgentOutput) -> None:
        """Open the stream (if any) and the greeting turn at once; both run in tasks so the
        call starts listening."""
        self._out = out
        stt = self._stages.stt
        if isinstance(stt, StreamingSpeechToText):
            loop = asyncio.get_running_loop()
            self._listening = Listening(out, self._speculate, stt.stalled, self.log, loop.time)
            out.tasks.spawn(self._listen(stt, self._listening), "stt-stream", supervised=False)
        out.tasks.spawn(self._prepare_speech(), "tts-prepare", supervised=False)
        if not self._persona.first_message:
            return
        turn = out.begin_turn()
        self._greeting_turn = turn
        self._greeting = out.tasks.spawn(self._greet(turn, out), "greeting")

    def feed(self, audio: bytes) -> None:
        stt = self._stages.stt
        if isinstance(stt, StreamingSpeechToText):
            stt.feed(audio)

    def endpointer_turn(self, utterance: bytes, duration_ms: float, speech_ms: float) -> None:
        if self._listening is not None:
            self._listening.endpointer_turn(utterance, duration_ms, speech_ms)

    def prepare(self, turn_id: int, utterance: bytes) -> None:
        if self._early.pending:
            self.log.debug(
                "turn %d: the caller spoke on after a pause; transcribing the longer turn",
                turn_id,
                extra={"turn_id": turn_id},
            )
        self._early.drop()
        if self._out is None:
            return
        # unsupervised: its outcome is the turn's to take, and a void one is simply dropped
        task = self._out.tasks.spawn(
            self._transcribe(turn_id, utterance, Deadline(self._cfg.turn_deadline_s)),
            f"early-stt{turn_id}",
            supervised=False,
        )
        self._early.start(utterance, task)

    async def respond(self, turn_id: int, utterance: bytes, out: AgentOutput) -> None:
        await self._stop_greeting()
        heard = self._listening.take(turn_id) if self._listening is not None else None
        run: ChatRun | None = None
        deadline = Deadline(self._cfg.turn_deadline_s)
        if heard is not None and not heard.utterance:
            text, run = heard.text, heard.run
        elif heard is not None:  # the stream stalled on this turn: the endpointer's audio
            text = await self._transcribe(turn_id, heard.utterance, deadline)
        else:
            text = await self._transcript(turn_id, utterance, deadline)
        if not text:
            self.log.info("turn %d: nothing recognised", turn_id, extra={"turn_id": turn_id})
            return
        await self._reply_to(turn_id, text, out, deadline, run)

    async def keypad(self, turn_id: int, digits: str, out: AgentOutput) -> None:
        await self.typed(turn_id, f"[keypad: {digits}]", out)

    async def typed(self, turn_id: int, text: str, out: AgentOutput) -> None:
        await self._stop_greeting()
        await self._reply_to(turn_id, text, out, Deadline(self._cfg.turn_deadline_s), None)

    async def say(self, turn_id: int, text: str, out: AgentOutput) -> None:
        await self._stop_greeting()
        await self._say(turn_id, text, out)

    async def _reply_to(
        self, turn_id: int, text: str, out: AgentOutput, deadline: Deadline, run: ChatRun | None
    ) -> None:
        """Answer the caller's ``text``, with as many tool rounds as the model asks for."""
        out.transcript(turn_id, "user", text)
        self._memory.add_user(text)
        messages = self._memory.messages()
        if run is not None and run.messages != messages:
            await run.cancel()  # the conversation changed under it (a barge-in's cut)
            run = None
        if run is None:
            run = self._start_chat(messages, deadline, f"{turn_id}-chat", turn_id)
        else:
            self.log.debug("turn %d: the eager answer stands", turn_id, extra={"turn_id": turn_id})
        chat = await self._answer(turn_id, run, out, deadline)
        for round_no in range(2, MAX_TOOL_ROUNDS + 2):
            if not chat.tool_calls:
                break

            async def say(text: str, before: ToolRound | None) -> None:
                await self._say(turn_id, text, out, before)

            if await self._tools.round(turn_id, chat, out, say):
                return  # the call went to a person
            deadline = Deadline(self._cfg.turn_deadline_s)
            messages = self._memory.messages()
            run = self._start_chat(messages, deadline, f"{turn_id}-chat{round_no}", turn_id)
            chat = await self._answer(turn_id, run, out, deadline)
        if chat.end_call:
            out.hang_up("agent ended the call")

    async def farewell(self, turn_id: int, out: AgentOutput) -> None:
        await self._stop_greeting()
        try:
            await self._say(turn_id, self._cfg.farewell, out)
        except Exception as exc:  # the call ends anyway; a failed goodbye must not stop that
            self.log.warning("farewell failed: %r", exc)

    async def words_in(self, utterance: bytes) -> str:
        """The speech stage's one-shot transcription of the sound (a streaming stage has one
        too), kept as early work: if the sound was the caller taking the turn, the turn is
        this very audio and its transcription is not asked for twice. The session bounds
        the wait (shielded: the turn may still take the work)."""
        task = self._early.peek(utterance)
        if task is None:
            self.prepare(0, utterance)
            task = self._early.peek(utterance)
        return await asyncio.shield(task) if task is not None else ""

    def interrupted(self, turn_id: int, heard_ms: float) -> None:
        if turn_id == self._greeting_turn and self._greeting is not None:
            self._greeting.cancel()
        for reply in self._memory.heard(turn_id, heard_ms):
            self._report(reply)
        if self._out is not None:
            self._tools.toolbox.speech_cancelled(turn_id, self._out)

    async def close(self) -> None:
        self._early.drop()
        await self._stop_greeting()
        for stage in self._stages.all():
            try:
                await stage.aclose()
            except Exception as exc:  # a stage failing to close must not break teardown
                self.log.warning("%s %s stage did not close: %r", stage.provider, stage.kind, exc)

    # -- hearing ---------------------------------------------------------------------------

    async def _listen(self, stt: StreamingSpeechToText, listening: Listening) -> None:
        """The recogniser's stream, for the whole call. If it gives up for good, the call's
        endpointer finds the turns and :meth:`SpeechToText.transcribe` hears them."""
        try:
            await stt.listen(listening)
        except Exception as exc:
            listening.lost(exc)
            if stt.classify(exc) is None:
                stt.report_permanent(exc)

    async def _prepare_speech(self) -> None:
        """Open the speech stage's socket while the caller is still saying hello; a failure
        here is the first reply's to retry, not the call's."""
        try:
            await self._stages.tts.prepare(self._voice)
        except Exception as exc:
            self.log.info("speech stage did not open at the start of the call: %r", exc)

    def _speculate(self, text: str) -> ChatRun:
        """The recogniser thinks the caller said ``text`` and is done: start the answer."""
        self._eager_runs += 1
        messages = [*self._memory.messages(), {"role": "user", "content": text}]
        deadline = Deadline(self._cfg.turn_deadline_s)
        return self._start_chat(messages, deadline, f"eager{self._eager_runs}-chat", 0)

    async def _transcript(self, turn_id: int, utterance: bytes, deadline: Deadline) -> str:
        """The turn's text: the early transcription's if it is of this very audio (waiting
        for it if it is still on its way), else a transcription started now.

        An early transcription that failed is the turn's failure: it had the same retries
        within a deadline of its own, so the same request again would fail the same way.
        """
        early = self._early.take(utterance)  # none: the turn ended otherwise (a toy's stop)
        if early is not None:
            self.log.debug("turn %d: transcribed early", turn_id, extra={"turn_id": turn_id})
            return await early
        return await self._transcribe(turn_id, utterance, deadline)

    async def _transcribe(self, turn_id: int, utterance: bytes, deadline: Deadline) -> str:
        stt = self._stages.stt
        return await self._calls.run(
            stt,
            lambda: stt.transcribe(utterance, self._calls.attempt(turn_id, "stt", deadline)),
            deadline,
        )

    # -- answering -------------------------------------------------------------------------

    def _start_chat(
        self, messages: list[Message], deadline: Deadline, name: str, turn_id: int
    ) -> ChatRun:
        chat = self._stages.chat
        assert self._out is not None

        def call(on_sentence: OnSentence, may_retry: Callable[[], bool]) -> Awaitable[ChatReply]:
            request_id = f"{self._call.call_id}-{name}"
            return self._calls.run(
                chat,
                lambda: chat.reply(
                    messages,
                    on_sentence,
                    deadline.progress,
                    Attempt(turn_id, request_id, self._calls.timeout_s(deadline)),
                    self._tools.toolbox.specs,
                ),
                deadline,
                may_retry=may_retry,
            )

        return ChatRun(messages, call, self._out.tasks, name)

    async def _answer(
        self, turn_id: int, run: ChatRun, out: AgentOutput, deadline: Deadline
    ) -> ChatReply:
        """Speak the run's answer sentence by sentence while it streams."""
        reply = self._memory.add_reply(turn_id, self.output_spec)
        try:
            await self._speak(turn_id, reply, run.next_sentence, out, deadline, run.audible)
        except asyncio.CancelledError:
            raise  # barge-in: interrupted() reports what was heard
        except Exception:
            self._report(reply)
            raise
        finally:
            await run.cancel()
        self._report(reply)
        return run.result()

    async def _greet(self, turn_id: int, out: AgentOutput) -> None:
        try:
            await self._say(turn_id, self._persona.first_message, out)
        except Exception as exc:
            self.log.warning("greeting failed: %r", exc)
            await out.fail_turn(turn_id, type(exc).__name__)
            return
        out.end_turn(turn_id)

    async def _say(
        self, turn_id: int, text: str, out: AgentOutput, before: ToolRound | None = None
    ) -> None:
        """Speak fixed text (greeting, farewell, filler) as one remembered reply."""
        reply = self._memory.add_reply(turn_id, self.output_spec, before)
        deadline = Deadline(self._cfg.turn_deadline_s)
        try:
            await self._speak(turn_id, reply, fixed_text(text), out, deadline)
        except asyncio.CancelledError:
            raise  # barge-in: interrupted() reports what was heard
        except Exception:
            self._report(reply)
            raise
        self._report(reply)

    async def _speak(
        self,
        turn_id: int,
        reply: SpokenReply,
        next_sentence: NextSentence,
        out: AgentOutput,
        deadline: Deadline,
        on_audible: Callable[[], None] = lambda: None,
    ) -> None:
        async def forward(pcm: bytes) -> None:
            await out.audio(turn_id, pcm)

        tts = self._stages.tts
        speech = ReplySpeech(tts, self._voice, reply, next_sentence, forward, deadline, on_audible)
        speech.caption = functools.partial(out.caption, turn_id)  # each sentence, as it plays
        await self._calls.run(
            tts,
            lambda: speech.attempt(self._calls.attempt(turn_id, "tts", deadline)),
            deadline,
            may_retry=speech.may_retry,
        )

    # -- helpers ---------------------------------------------------------------------------

    def _report(self, reply: SpokenReply) -> None:
        if self._out is not None:
            reply.report(self._out.transcript)

    async def _stop_greeting(self) -> None:
        task, self._greeting = self._greeting, None
        if task is not None:
            await cancel_and_wait(task)
