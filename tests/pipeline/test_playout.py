"""The playout on a virtual clock: the pacing lead, batching, and every bound on memory."""

from __future__ import annotations

import asyncio

import pytest

from pipeline.audio import PCM16_16K, PCM16_24K, ULAW_8K
from pipeline.playout import Playout, PlayoutConfig
from tests.fakes.agents import tone_pcm
from tests.fakes.port import RecordingPort
from tests.support.virtual_time import run_virtual


async def started(port: RecordingPort, config: PlayoutConfig | None = None) -> Playout:
    playout = Playout(port, PCM16_16K, config, clock=asyncio.get_running_loop().time)
    asyncio.get_running_loop().create_task(playout.run(), name="pacer")
    return playout


#: agents write what their source gives them: a TTS stream's chunks
STEP_MS = 100


async def write_in_steps(playout: Playout, turn_id: int, total_ms: int) -> None:
    pcm = tone_pcm(total_ms)
    step = PCM16_16K.bytes_for_ms(STEP_MS)
    for offset in range(0, len(pcm), step):
        await playout.audio(turn_id, pcm[offset : offset + step])


async def stop(playout_task_name: str = "pacer") -> None:
    for task in asyncio.all_tasks():
        if task.get_name() == playout_task_name:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


def test_audio_is_sent_a_bounded_lead_ahead_in_a_few_wake_ups() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        port = RecordingPort(loop.time, wire_out=ULAW_8K, chunk_ms=40, lead_ms=400)
        playout = await started(port)
        playout.open_turn(1)
        await playout.audio(1, tone_pcm(1000))
        playout.end_turn(1)
        await playout.audio(1, tone_pcm(500))  # after its end: dropped
        await playout.wait_idle()
        chunks = port.audio_of(1)
        assert sum(s.duration_ms for s in chunks) == pytest.approx(1000, abs=1)
        assert [len(s.chunk) for s in chunks] == [320] * 25  # 40 ms of μ-law 8 kHz each
        assert chunks[0].sent_at_s == 0  # the first chunk goes at once
        for s in chunks:
            backlog_ms = (s.starts_s - s.sent_at_s) * 1000
            assert backlog_ms <= port.lead_ms  # never more than the lead ahead
        assert chunks[-1].ends_s == pytest.approx(1.0)  # played back to back, no gap
        wake_ups = len({s.sent_at_s for s in chunks})
        assert wake_ups <= 6  # batches: tops the lead up, sleeps until half has played
        assert port.names()[-1] == "end" and port.calls[-1].detail == (True, True)
        await stop()

    run_virtual(main)


def test_agent_writes_wait_while_the_queue_is_full() -> None:
    """Back-pressure: an agent that has 10 s of audio at once holds at most
    ``max_queue_ms`` of it in the playout; its writes return as the audio plays."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        port = RecordingPort(loop.time, wire_out=PCM16_24K, chunk_ms=120, lead_ms=500)
        playout = await started(port, PlayoutConfig(max_queue_ms=2000))
        playout.open_turn(1)
        returned_at: list[float] = []
        step = PCM16_16K.bytes_for_ms(100)
        pcm = tone_pcm(10_000)
        for offset in range(0, len(pcm), step):
            await playout.audio(1, pcm[offset : offset + step])
            returned_at.append(loop.time())
            queued_ms = playout.queued_ms
            assert queued_ms <= 2000 + 100
        playout.end_turn(1)
        await playout.wait_idle()
        # the last write could only return once all but (queue + lead) of it had been sent
        assert returned_at[-1] >= (10_000 - 2000 - 500 - 2 * 120) / 1000
        assert sum(s.duration_ms for s in port.audio_of(1)) == pytest.approx(10_000, abs=1)
        await stop()

    run_virtual(main)


def test_a_far_end_that_never_confirms_gets_at_most_the_unacked_cap() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        port = RecordingPort(loop.time, confirm_playback=False, chunk_ms=40, lead_ms=400)
        playout = await started(port, PlayoutConfig(max_unacked_ms=2000))
        playout.open_turn(1)
        writer = loop.create_task(write_in_steps(playout, 1, 10_000), name="writer")
        await asyncio.sleep(60)
        sent_ms = sum(s.duration_ms for s in port.sent)
        assert 2000 <= sent_ms <= 2000 + 40  # it stops at the cap, a minute later too
        assert not writer.done()  # the rest waits, the queue full but bounded...
        queued_ms = playout.queued_ms
        assert queued_ms <= PlayoutConfig().max_queue_ms + STEP_MS
        playout.cancel(1)  # ...until a barge-in drops it all
        assert not playout.has_pending()
        await asyncio.sleep(0)
        assert writer.done()
        await stop()

    run_virtual(main)


def test_a_reader_that_stops_reading_costs_bounded_memory() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        port = RecordingPort(loop.time, chunk_ms=40, lead_ms=400)
        playout = await started(port, PlayoutConfig(max_queue_ms=2000))
        port.stall_sends()
        playout.open_turn(1)
        writer = loop.create_task(write_in_steps(playout, 1, 60_000), name="writer")
        await asyncio.sleep(300)
        assert not writer.done()  # the agent waits; nothing piles up
        queued_ms = playout.queued_ms
        assert queued_ms <= 2000 + STEP_MS  # a minute of audio, held to the bound
        dropped = playout.cancel(1)  # barge-in still works while the reader is stuck
        assert dropped > 0 and not playout.has_pending()
        await asyncio.sleep(0)
        assert writer.done()
        port.resume_sends()
        await stop()

    run_virtual(main)


def test_a_cancelled_turn_drops_late_audio_and_the_next_turn_starts_clean() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        port = RecordingPort(loop.time)
        playout = await started(port)
        playout.open_turn(1)
        await playout.audio(1, tone_pcm(3000))
        await asyncio.sleep(0.5)
        playout.cancel(1)
        await playout.audio(1, tone_pcm(1000))  # late audio of the cancelled turn
        sent_1 = len(port.audio_of(1))
        playout.open_turn(2)
        await playout.audio(2, tone_pcm(200))
        playout.end_turn(2)
        await playout.wait_idle()
        assert len(port.audio_of(1)) == sent_1
        assert sum(s.duration_ms for s in port.audio_of(2)) == pytest.approx(200, abs=1)
        assert playout.chunks_dropped > 0
        await stop()

    run_virtual(main)
