"""Which of the caller's audio items the model answers, when sounds over a reply are judged.

The model's server VAD hears every sound, a cough or an "uh-huh" over its reply included, and
commits each as a user item. The bridge judges those sounds (``pipeline/barge_in.py``), so
the server is told not to answer by itself (``create_response: false``) and the agent asks
for each answer (``response.create``) once it knows the item is a turn:

* an item whose speech started while no sound was judged is a turn: answered when committed;
* an item of a sound under judgement waits for the verdict: a real interruption answers it
  (after the reply was cancelled and truncated), a false one deletes it from the
  conversation, so the model's memory holds neither the sound nor an answer to it.

Plain state, no I/O: the server-event handlers and the agent's verdict hooks update it and
send what it says.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


class Commit(Enum):
    ANSWER = "answer"
    HOLD = "hold"
    DELETE = "delete"


@dataclass(slots=True)
class JudgedItems:
    #: items of the sound being judged (their speech started meanwhile)
    judged: set[str] = field(default_factory=set)
    #: items of sounds judged harmless that are not committed yet
    dismissed: set[str] = field(default_factory=set)
    #: committed items waiting for the verdict
    held: list[str] = field(default_factory=list)

    def speech_started(self, item_id: str, judged: bool) -> None:
        """The server heard speech start (``judged``: the bridge is judging it)."""
        if judged and item_id:
            self.judged.add(item_id)

    def committed(self, item_id: str) -> Commit:
        if item_id in self.dismissed:
            self.dismissed.discard(item_id)
            return Commit.DELETE
        if item_id in self.judged:
            self.held.append(item_id)
            return Commit.HOLD
        return Commit.ANSWER

    def real(self) -> list[str]:
        """A real interruption: its committed items are answered now, the rest when
        committed (every judged sound so far was the caller taking the turn)."""
        held, self.held = self.held, []
        self.judged.clear()
        self.dismissed.clear()
        return held

    def harmless(self) -> list[str]:
        """A false interruption: its committed items are deleted now, the rest when
        committed."""
        held, self.held = self.held, []
        self.dismissed |= self.judged - set(held)
        self.judged.clear()
        return held
