"""What a call does besides talking, on a virtual clock: keypad entries as turns, a voicemail
after an answering machine's beep, a hand-over to a person."""

from __future__ import annotations

import pytest

from pipeline.agents.base import AgentOutput, CallInfo
from pipeline.audio import PCM16_16K
from pipeline.lifecycle import Phase
from pipeline.observers import ObservedCall
from pipeline.session_config import SessionConfig
from pipeline.tools.base import TransferFailed, TransferTarget
from tests.fakes.agents import ToneAgent, tone_pcm
from tests.support.core import Core, RecordingObserver, wait_until
from tests.support.virtual_time import run_virtual

INFO = CallInfo("call-1", "fake", PCM16_16K)
DESK = TransferTarget("desk", "+15551230002", "The front desk.")
MESSAGE_MS = 900


class KeypadAgent(ToneAgent):
    """Reads the keypad; leaves a voicemail (a tone) when asked."""

    uses_keypad = True

    def __init__(self, call: CallInfo, voicemail: str = "Call us back.", **kw: int) -> None:
        super().__init__(call, **kw)
        self.entries: list[tuple[int, str]] = []
        self.said: list[tuple[int, str]] = []
        self._voicemail = voicemail

    @property
    def voicemail(self) -> str:
        return self._voicemail

    async def keypad(self, turn_id: int, digits: str, out: AgentOutput) -> None:
        self.entries.append((turn_id, digits))
        await out.audio(turn_id, tone_pcm(400, 600))

    async def say(self, turn_id: int, text: str, out: AgentOutput) -> None:
        self.said.append((turn_id, text))
        await out.audio(turn_id, tone_pcm(MESSAGE_MS, 700))


class Watcher(RecordingObserver):
    def on_keypad(self, session: ObservedCall, turn_id: int, digits: str) -> None:
        self._add("keypad", turn_id, digits)

    def on_transfer(self, session: ObservedCall, destination: str) -> None:
        self._add("transfer", destination)


async def started(agent: ToneAgent, **config: float) -> Core:
    core = Core(agent, SessionConfig(**config))  # type: ignore[arg-type]
    core.observer = core.session.observer = Watcher()
    return await core.start()


# -- the keypad ----------------------------------------------------------------------------


def test_a_key_becomes_a_turn_after_the_gap_and_hash_ends_an_entry_at_once() -> None:
    async def main() -> None:
        agent = KeypadAgent(INFO)
        core = await started(agent, keypad_gap_s=1.0)
        core.session.dtmf("1")
        pressed_s = core.now_s
        await wait_until(lambda: bool(agent.entries))
        assert agent.entries == [(1, "1")]
        assert core.now_s - pressed_s == pytest.approx(1.0, abs=0.02)
        for key in "42#":
            core.session.dtmf(key)
        await wait_until(lambda: len(agent.entries) == 2)
        assert agent.entries[1][1] == "42"
        assert [h.args for h in core.observer.named("keypad")] == [(1, "1"), (2, "42")]
        assert agent.digits == list("142#")  # every key was seen as it was pressed
        await core.hang_up()

    run_virtual(main)


def test_a_key_cuts_off_a_reply_like_a_real_interruption() -> None:
    async def main() -> None:
        agent = KeypadAgent(INFO, reply_ms=4000)
        core = await started(agent, keypad_gap_s=0.5)
        await core.speak()
        await wait_until(lambda: bool(core.port.audio_of(1)))
        core.session.dtmf("9")
        await wait_until(lambda: bool(agent.entries))
        assert agent.interruptions and agent.interruptions[0][0] == 1
        assert core.observer.named("barge_in")
        assert agent.entries == [(2, "9")]
        await core.hang_up()

    run_virtual(main)


def test_a_key_after_a_reply_was_heard_whole_is_no_interruption() -> None:
    async def main() -> None:
        agent = KeypadAgent(INFO, reply_ms=600)
        core = await started(agent, keypad_gap_s=0.3)
        await core.speak()
        await wait_until(lambda: bool(core.port.audio_of(1)))
        await wait_until(lambda: not core.session.responding)
        core.session.dtmf("7")
        await wait_until(lambda: bool(agent.entries))
        assert agent.interruptions == [] and not core.observer.named("barge_in")
        assert agent.entries == [(2, "7")]
        await core.hang_up()

    run_virtual(main)


def test_an_agent_that_does_not_read_the_keypad_only_sees_the_keys() -> None:
    async def main() -> None:
        agent = ToneAgent(INFO)
        core = await started(agent, keypad_gap_s=0.2)
        core.session.dtmf("5")
        await wait_until(lambda: core.now_s > 1.0)
        assert agent.digits == ["5"] and not core.observer.named("user_turn")
        await core.hang_up()

    run_virtual(main)


# -- voicemail -----------------------------------------------------------------------------


def test_after_the_beep_the_agent_stops_leaves_its_message_and_hangs_up() -> None:
    async def main() -> None:
        agent = KeypadAgent(INFO, reply_ms=5000)
        core = await started(agent)
        await core.speak()  # the machine's greeting, answered as if a person spoke
        await wait_until(lambda: bool(core.port.audio_of(1)))
        core.session.answered_by("machine_end_beep")
        await wait_until(lambda: bool(agent.said))
        assert agent.interruptions[0][0] == 1  # the reply stopped
        assert agent.said == [(2, "Call us back.")]
        await core.speak()  # the line's sounds are the machine recording: no turn
        await core.closed.wait()
        message = core.port.audio_of(2)
        assert sum(s.duration_ms for s in message) == pytest.approx(MESSAGE_MS, abs=1)
        assert core.port.first("close").at_s >= message[-1].ends_s
        assert core.session.end_reason == "voicemail left"
        assert len(core.observer.named("user_turn")) == 1

    run_virtual(main)


def test_a_person_answering_changes_nothing_and_no_message_means_hanging_up() -> None:
    async def main() -> None:
        agent = KeypadAgent(INFO, voicemail="")
        core = await started(agent)
        core.session.answered_by("human")
        await core.speak()
        await wait_until(lambda: bool(core.port.audio_of(1)))
        assert core.session.phase is Phase.LIVE
        core.session.answered_by("machine_end_silence")
        await core.closed.wait()
        assert core.session.end_reason == "answering machine" and not agent.said

    run_virtual(main)


# -- a transfer ----------------------------------------------------------------------------


def test_a_transfer_waits_until_the_handoff_line_was_heard() -> None:
    async def main() -> None:
        agent = ToneAgent(INFO, reply_ms=1500)
        core = await started(agent)
        await core.speak()
        await wait_until(lambda: bool(core.port.audio_of(1)))
        await core.session.transfer(DESK)
        handoff = core.port.audio_of(1)
        assert core.port.first("transfer").at_s >= handoff[-1].ends_s
        assert core.port.transferred_to == "desk"
        assert core.observer.named("transfer")[0].args == ("desk +15551230002",)
        await core.closed.wait()  # the far end never ended the stream: we do
        assert core.session.end_reason == "transferred"

    run_virtual(main)


def test_a_failed_transfer_raises_and_the_call_goes_on() -> None:
    async def main() -> None:
        core = await started(ToneAgent(INFO))
        core.port.transfer_error = "Twilio said no"
        with pytest.raises(TransferFailed, match="Twilio said no"):
            await core.session.transfer(DESK)
        assert core.session.phase is Phase.LIVE and not core.observer.named("transfer")
        await core.speak()
        await wait_until(lambda: bool(core.port.audio_of(1)))
        await core.hang_up()

    run_virtual(main)
