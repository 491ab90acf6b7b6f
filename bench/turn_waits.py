"""The bridge's own share of each answered turn: the call records' latency less provider waits.

The call records hold, per turn, when the bridge committed the caller's turn (``at_s``, wall
clock) and how long after that it sent the first reply audio (``latency_ms``). Within that
span the bridge waited on providers; what is left is its *overhead*:

* requests to the fake OpenAI (``bench/fakes.py``): the fake reports each request's start
  and the moment the bridge had what it needed (transcription: the whole body; chat and
  speech: the first byte). The union of the call's requests' waits, cut to the span, is
  provider time. A request that began before the commit (an early transcription, in the
  caller's pause; a chat started on Flux's ``EagerEndOfTurn``) counts only from the commit;
* a streaming speech stage (Aura, ElevenLabs): its fake runs as a command-line server that
  reports nothing, so its wait is the delay injected before each first audio. Speech starts
  after the commit and after the chat's first sentence, so it never overlaps a chat wait.
  The fake's own handling (a ``Speak``, a ``Flush``, making the tone) counts as the bridge's:
  a conservative split.

*Less injected* subtracts only the injected delays that fall within the span (each OpenAI
request's delay from its start, cut to the span, and the speech stage's), so it also holds
the fakes' own request handling.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.fakes import ProviderRequest, Stack
from bridge.call_records.store import open_store
from bridge.call_records.url import parse_records_url

#: an eager chat run this long before the commit is not this turn's
EAGER_WINDOW_S = 2.0


@dataclass(frozen=True, slots=True)
class ServerTurn:
    call_id: str
    turn_id: int
    #: wall-clock time the caller's turn was committed
    at_s: float
    #: from committing the caller's turn to sending the first reply audio
    latency_ms: float

    @property
    def end_s(self) -> float:
        return self.at_s + self.latency_ms / 1000


def server_turns(records_url: str) -> list[ServerTurn]:
    """Every answered user turn's server-side latency, from the call records."""
    target = parse_records_url(records_url)
    assert target is not None
    store = open_store(target, create=False)
    try:
        found: list[ServerTurn] = []
        for summary in store.recent_calls(100_000):
            call = store.call(summary.call.call_id)
            for t in call.turns if call else []:
                if t.user_speech_ms is not None and t.latency_ms is not None:
                    found.append(ServerTurn(t.call_id, t.turn_id, t.at_s, t.latency_ms))
        return found
    finally:
        store.close()


class Waits:
    """The fake OpenAI's requests by call, and what a stack's speech stage adds."""

    def __init__(self, served: list[ProviderRequest], stack: Stack, injected_ms: float) -> None:
        self.stack = stack
        self.injected_s = injected_ms / 1000
        self._by_call: dict[str, list[ProviderRequest]] = {}
        for r in served:
            call_id = r.client_request_id.rsplit("-", 2)[0]
            self._by_call.setdefault(call_id, []).append(r)

    def _requests(self, turn: ServerTurn) -> list[ProviderRequest]:
        return self._by_call.get(turn.call_id, [])

    def known(self, turn: ServerTurn) -> bool:
        """Whether the fake served this turn's chat (and, for OpenAI speech, its speech)."""
        prefix = f"{turn.call_id}-{turn.turn_id}-"
        ids = set()
        for r in self._requests(turn):
            ids.add(r.client_request_id)
            eager = "-eager" in r.client_request_id and r.endpoint == "chat"
            if eager and turn.at_s - EAGER_WINDOW_S <= r.started_s <= turn.end_s:
                ids.add(f"{prefix}chat")
        wanted = {f"{prefix}chat"} | ({f"{prefix}tts0"} if self.stack.tts == "openai" else set())
        return wanted <= ids

    def provider_wait_ms(self, turn: ServerTurn) -> float | None:
        """How long, between the commit and the first reply audio, the bridge was waiting on
        providers (None: this turn's requests are unknown)."""
        if not self.known(turn):
            return None
        spans = [(r.started_s, r.ready_s) for r in self._requests(turn)]
        return self._union_ms(turn, spans) + self._speech_ms()

    def less_injected_ms(self, turn: ServerTurn) -> float:
        """The latency less the injected delays that fall within it."""
        delay_s = self.injected_s
        spans = [(r.started_s, r.started_s + delay_s) for r in self._requests(turn)]
        return turn.latency_ms - self._union_ms(turn, spans) - self._speech_ms()

    def overhead_ms(self, turn: ServerTurn) -> float | None:
        waited = self.provider_wait_ms(turn)
        return None if waited is None else turn.latency_ms - waited

    def transcribed_early(self, turn: ServerTurn) -> bool:
        """Whether ``turn``'s transcript was ready before the turn was committed."""
        stt = f"{turn.call_id}-{turn.turn_id}-stt"
        return any(
            r.client_request_id == stt and r.ready_s <= turn.at_s for r in self._requests(turn)
        )

    def _speech_ms(self) -> float:
        return self.injected_s * 1000 if self.stack.streams_speech else 0.0

    @staticmethod
    def _union_ms(turn: ServerTurn, spans: list[tuple[float, float]]) -> float:
        """The length of the union of ``spans``, cut to the turn's span."""
        start_s, end_s = turn.at_s, turn.end_s
        waited_s = 0.0
        reach_s = start_s
        for begin_s, until_s in sorted((max(b, start_s), min(u, end_s)) for b, u in spans):
            begin_s = max(begin_s, reach_s)
            if until_s > begin_s:
                waited_s += until_s - begin_s
                reach_s = until_s
        return waited_s * 1000
