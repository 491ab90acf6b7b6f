"""What the model's server events, and losing the connection, mean for the call.

Every handler is synchronous and never waits: it updates the turn bookkeeping, sends control
events through the link and queues speech for the speaker. So the caller starting to speak,
or a response beginning or ending, is acted on the moment it arrives, never stuck behind
audio waiting for playout space.

A lost connection is the caller's business too: whatever they were waiting for (a greeting,
an answer, a goodbye) becomes an apology rather than silence.
"""

from __future__ import annotations

import base64
import json
from collections import deque
from collections.abc import Callable
from typing import Any

from pipeline.agents.base import AgentOutput
from pipeline.agents.realtime import events
from pipeline.agents.realtime.judged import Commit, JudgedItems
from pipeline.agents.realtime.speaker import Speaker
from pipeline.agents.realtime.tool_calls import tool_calls_of
from pipeline.agents.realtime.turns import Response, Turns
from pipeline.call_logger import CallLog
from pipeline.tools.base import ToolRequest

#: error codes that are expected races, not bugs (a cancel after the response finished)
BENIGN_ERROR_CODES = frozenset({"response_cancel_not_active"})

Handler = Callable[["ServerEvents", dict[str, Any]], None]


class ServerEvents:
    """Handles one call's server events; a :class:`~.link.LinkListener`."""

    def __init__(
        self,
        turns: Turns,
        speaker: Speaker,
        history: deque[tuple[str, str]],
        send: Callable[[events.Event], None],
        log: CallLog,
    ) -> None:
        self.turns = turns
        self.speaker = speaker
        #: (role, text) of the conversation so far, replayed after a reconnect
        self.history = history
        self.send = send
        self.log = log
        #: the call, once the agent has started
        self.out: AgentOutput | None = None
        #: which user items are answered, held for a verdict or deleted
        self.items = JudgedItems()
        #: told when a finished response called tools (``tool_calls.py``)
        self.on_tools: Callable[[Response, list[ToolRequest]], None] | None = None

    def on_message(self, message: str | bytes) -> None:
        try:
            event = json.loads(message)
            kind = event["type"]
        except (ValueError, KeyError, TypeError):
            self.log.warning("ignoring a malformed Realtime event")
            return
        handler = self._handlers.get(kind)
        if handler is not None:
            handler(self, event)

    # -- server events ---------------------------------------------------------------------

    def _on_error(self, event: dict[str, Any]) -> None:
        error = event.get("error") or {}
        if error.get("code") in BENIGN_ERROR_CODES:
            self.log.debug("Realtime: %s", error.get("message"))
            return
        self.log.warning(
            "Realtime error type=%s code=%s param=%s event_id=%s: %s",
            error.get("type"),
            error.get("code"),
            error.get("param"),
            error.get("event_id"),
            error.get("message"),
        )

    def _on_speech_started(self, event: dict[str, Any]) -> None:
        assert self.out is not None
        active = self.turns.active
        if active is not None and active.turn_id is None and not active.done:
            # The model is about to answer but has not spoken: the caller goes on talking.
            active.cancelled = True
            self.send(events.response_cancel(active.response_id))
        self.out.user_speech_started()
        self.items.speech_started(str(event.get("item_id") or ""), self.out.judging_sound())

    def _on_committed(self, event: dict[str, Any]) -> None:
        item_id = str(event.get("item_id") or "")
        commit = self.items.committed(item_id)
        if commit is Commit.ANSWER:
            self.answer()
        elif commit is Commit.DELETE:
            self.send(events.item_delete(item_id))

    def answer(self) -> None:
        """Ask the model to answer the caller's committed turn."""
        self.turns.awaiting_answer = True
        self.turns.user_turns += 1
        self.send(events.answer())

    def _on_user_transcript(self, event: dict[str, Any]) -> None:
        text = str(event.get("transcript") or "").strip()
        if text and self.out is not None:
            self.history.append(("user", text))
            self.out.transcript(self.turns.last_turn, "user", text)

    def _on_response_created(self, event: dict[str, Any]) -> None:
        body = event.get("response") or {}
        response = Response(str(body.get("id", "")))
        self.turns.remember(response)
        self.turns.active = response
        self.turns.awaiting_answer = False
        metadata = body.get("metadata") or {}
        wanted = metadata.get(events.TURN_METADATA_KEY)
        pending = self.turns.pending
        if wanted is not None and pending is not None and wanted == str(pending):
            self.turns.bind(response, pending)
            self.turns.pending = None

    def _on_audio_delta(self, event: dict[str, Any]) -> None:
        response = self.turns.by_id.get(str(event.get("response_id", "")))
        if response is None or response.cancelled:
            return
        try:
            audio = base64.b64decode(event["delta"], validate=True)
        except (KeyError, ValueError, TypeError):
            self.log.warning("ignoring an undecodable audio delta")
            return
        if response.turn_id is None:
            assert self.out is not None
            pending, self.turns.pending = self.turns.pending, None
            self.turns.bind(response, pending if pending is not None else self.out.begin_turn())
        if response.audio_item_id is None:
            response.audio_item_id = event.get("item_id")
        response.audio_bytes += len(audio)
        assert response.turn_id is not None
        self.speaker.audio(response.turn_id, audio)

    def _on_assistant_transcript(self, event: dict[str, Any]) -> None:
        response = self.turns.by_id.get(str(event.get("response_id", "")))
        text = str(event.get("transcript") or "").strip()
        if text and self.out is not None:
            self.history.append(("assistant", text))
            turn = response.turn_id if response and response.turn_id is not None else 0
            self.out.transcript(turn, "assistant", text)

    def _on_response_done(self, event: dict[str, Any]) -> None:
        body = event.get("response") or {}
        response = self.turns.by_id.get(str(body.get("id", "")))
        if response is None:
            return
        response.done = True
        if self.turns.active is response:
            self.turns.active = None
        status = body.get("status")
        end_call = end_call_of(body)
        hang_up = self.turns.hang_ups.pop(response.turn_id or 0, None)
        if status == "failed":
            self.log.warning("Realtime response failed: %s", body.get("status_details"))
            self._fail(response.turn_id, "realtime_response_failed")
        elif response.cancelled:
            # one the bridge asked for and waits on (a filler, a voicemail) is over too
            waiter = self.turns.external.get(response.turn_id or 0)
            if waiter is not None:
                waiter.set()
            return
        elif response.turn_id is not None:
            self.speaker.end(response.turn_id)
        if hang_up is not None:  # the goodbye asked for after a silent end_call
            self.speaker.hang_up(response.turn_id or 0, hang_up)
        elif end_call is not None and status != "failed":
            self._end_call(response, *end_call)
        calls = tool_calls_of(body)
        if calls and status == "completed" and self.on_tools is not None:
            self.on_tools(response, calls)

    def _end_call(self, response: Response, call_id: str, reason: str) -> None:
        """The model called ``end_call``: hang up once its goodbye has been heard."""
        self.log.info("the model ended the call: %s", reason or "no reason given")
        if response.turn_id is None:
            # It ended without speaking: ask for the goodbye, then hang up after it.
            assert self.out is not None
            turn = self.out.begin_turn()
            self.turns.pending = turn
            self.send(events.function_output(call_id, '{"ok": true}'))
            self.send(events.response_create(turn, events.GOODBYE_INSTRUCTIONS))
            self.turns.hang_ups[turn] = reason or "end_call"
            return
        self.speaker.hang_up(response.turn_id, reason or "end_call")

    _handlers: dict[str, Handler] = {
        "error": _on_error,
        "input_audio_buffer.speech_started": _on_speech_started,
        "input_audio_buffer.committed": _on_committed,
        "conversation.item.input_audio_transcription.completed": _on_user_transcript,
        "response.created": _on_response_created,
        "response.output_audio.delta": _on_audio_delta,
        "response.output_audio_transcript.done": _on_assistant_transcript,
        "response.done": _on_response_done,
    }

    # -- the connection's failures ---------------------------------------------------------

    def on_lost(self) -> None:
        """The connection dropped: whatever the caller was waiting for becomes an apology."""
        open_turns = self.turns.take_open()
        if self.turns.awaiting_answer:
            self.turns.awaiting_answer = False
            if not open_turns:
                open_turns.append(-1)
        for turn in open_turns:
            self._fail(turn, "realtime_disconnected")

    def on_give_up(self, kind: str) -> None:
        """No connection before the deadline: apologise once, then end the call."""
        open_turns = self.turns.take_open()
        self._fail(open_turns[0] if open_turns else None, kind)
        self.speaker.hang_up(0, "agent unavailable")

    def _fail(self, turn_id: int | None, kind: str) -> None:
        """Fail ``turn_id`` (None or -1: open a new turn for it) through the speaker."""
        if turn_id is None or turn_id < 0:
            assert self.out is not None
            turn_id = self.out.begin_turn()
        self.speaker.fail(turn_id, kind)


def end_call_of(body: dict[str, Any]) -> tuple[str, str] | None:
    """``(call_id, reason)`` when the response called the ``end_call`` tool."""
    for item in body.get("output") or []:
        if item.get("type") == "function_call" and item.get("name") == events.END_CALL_TOOL:
            try:
                arguments = json.loads(item.get("arguments") or "{}")
            except ValueError:
                arguments = {}
            reason = arguments.get("reason", "") if isinstance(arguments, dict) else ""
            return str(item.get("call_id", "")), str(reason)
    return None
