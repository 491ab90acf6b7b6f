"""Which bridge turn belongs to which model response.

The bridge numbers its turns (playout, barge-in and call records go by turn id); the model
names its responses. Two ways tie them together: a turn the bridge opens ahead of its response
(greeting, farewell, goodbye) rides in the ``response.create`` metadata and is bound when the
response is created; a response the model starts by itself (its answer to the caller) gets a
turn only with its first audio, so an answer cancelled before it spoke never opens one.

Plain state, no I/O: the server-event handlers, barge-in and the speaker all read and update
it synchronously. Only the last few responses are kept: barge-in can only cut a recent one.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

#: responses remembered for barge-in truncation (the last few are all that can be cut)
KEEP_RESPONSES = 8


@dataclass(slots=True, eq=False)
class Response:
    """One model response, as far as barge-in and the turn's end need to know it."""

    response_id: str
    turn_id: int | None = None
    audio_item_id: str | None = None
    #: audio generated so far (output format): truncation never cuts past it
    audio_bytes: int = 0
    done: bool = False
    cancelled: bool = False


@dataclass(slots=True)
class Turns:
    """Which bridge turn belongs to which model response."""

    #: a turn we opened ahead of its response (greeting, farewell, goodbye)
    pending: int | None = None
    active: Response | None = None
    by_id: dict[str, Response] = field(default_factory=dict)
    by_turn: dict[int, Response] = field(default_factory=dict)
    #: turns whose end the session owns (farewell), mapped to a waiter
    external: dict[int, asyncio.Event] = field(default_factory=dict)
    #: goodbye turns after which the call ends (the reason)
    hang_ups: dict[int, str] = field(default_factory=dict)
    #: a user turn was committed and the server is about to answer it
    awaiting_answer: bool = False
    last_turn: int = 0
    #: the caller's turns (speech, keys) asked to be answered so far
    user_turns: int = 0

    def remember(self, response: Response) -> None:
        self.by_id[response.response_id] = response
        while len(self.by_id) > KEEP_RESPONSES:
            del self.by_id[next(iter(self.by_id))]

    def bind(self, response: Response, turn_id: int) -> None:
        response.turn_id = turn_id
        self.last_turn = turn_id
        self.by_turn[turn_id] = response
        while len(self.by_turn) > KEEP_RESPONSES:
            del self.by_turn[next(iter(self.by_turn))]

    def take_open(self) -> list[int]:
        """The turns the caller is still waiting on, forgotten here so each fails only once.

        An answer still being generated without a turn of its own marks ``awaiting_answer``
        instead: the caller is owed a reply, but no turn was opened for it yet.
        """
        open_turns = []
        if self.pending is not None:
            open_turns.append(self.pending)
        active = self.active
        if active is not None and not active.done and not active.cancelled:
            if active.turn_id is not None:
                open_turns.append(active.turn_id)
            else:
                self.awaiting_answer = True
        self.pending, self.active = None, None
        return open_turns
