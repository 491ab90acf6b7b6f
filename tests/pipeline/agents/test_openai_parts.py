"""The OpenAI agent's pure parts: sentence cutting, heard-only memory, retries, start-up checks."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator

import httpx2
import openai
import pytest

from bridge.agents import build_agent_factory
from bridge.settings import Settings, SettingsError
from pipeline.agents.cascade.memory import Conversation, cut_words
from pipeline.agents.providers.openai.clients import classify, retry_after_s
from pipeline.agents.providers.openai.sse import event_data
from pipeline.agents.providers.openai.tts import TTS_SPEC
from pipeline.agents.retry import Deadline, DeadlineExceeded, Retry, RetryPolicy, retry_within
from pipeline.agents.sentences import SentenceCutter

MS_PER_BYTE = 1 / TTS_SPEC.bytes_per_ms


def test_sentences_are_cut_as_soon_as_they_end_in_the_stream() -> None:
    cutter = SentenceCutter()
    tokens = ["It", " costs", " 3", ".", "5", " euros", ".", " Really", "?", " Yes", "!"]
    out = [(token, cutter.push(token)) for token in tokens]
    assert [cut for _, cut in out if cut] == [["It costs 3.5 euros."], ["Really?"]]
    assert out[7] == (" Really", ["It costs 3.5 euros."])  # cut on the token after the stop
    assert cutter.flush() == ["Yes!"]
    assert cutter.flush() == []


async def test_event_data_reads_server_sent_events() -> None:
    async def lines(*items: str) -> AsyncIterator[str]:
        for item in items:
            yield item

    stream = lines(
        ": a comment",
        "event: message",
        'data: {"a": 1}',
        "",
        "",  # blank lines between events are no events
        "data:two",
        "data:  lines",
        "id: 7",
        "",
        "data: [DONE]",  # no blank line before the stream ends
    )
    assert [d async for d in event_data(stream)] == ['{"a": 1}', "two\n lines", "[DONE]"]


def test_cut_words_keeps_whole_words_and_marks_the_cut() -> None:
    assert cut_words("one two three four", 0.5) == "one two…"
    assert cut_words("one two three four", 0.1) == ""
    assert cut_words("one two, three four", 0.5) == "one two…"  # no dangling comma
    assert cut_words("one two three four", 1.0) == "one two three four"


def test_history_keeps_only_the_heard_part_of_a_reply() -> None:
    memory = Conversation("sys")
    memory.add_user("hi")
    reply = memory.add_reply(7, TTS_SPEC)
    for text, ms in (("First one here.", 1000), ("Second sentence has six words.", 1200)):
        index = reply.sentence(text)
        reply.add_audio(index, index, b"\0" * TTS_SPEC.bytes_for_ms(ms))
        reply.complete_through = index
    reply.sentence("Never spoken.")
    assert memory.messages()[-1]["content"] == "First one here. Second sentence has six words."
    memory.heard(7, 1000 + 600)  # half of the second sentence
    assert memory.messages()[-1]["content"] == "First one here. Second sentence…"  # 2 of 5 words
    memory.heard(7, 500)
    assert memory.messages()[-1]["content"] == "First…"
    memory.heard(7, 0)
    assert memory.messages() == [
        {"role": "system", "content": "sys"},
        {"role": "user", "content": "hi"},
    ]


def test_a_span_of_several_sentences_is_cut_as_one() -> None:
    memory = Conversation("")
    reply = memory.add_reply(3, TTS_SPEC)
    for text in ("One two.", "Three four.", "Five six."):
        reply.sentence(text)
    reply.add_audio(0, 0, b"\0" * TTS_SPEC.bytes_for_ms(500))
    reply.add_audio(1, 2, b"\0" * TTS_SPEC.bytes_for_ms(1000))
    reply.add_audio(2, 2, b"\0" * TTS_SPEC.bytes_for_ms(200))  # overlaps: joins the span
    assert [(s.first, s.last) for s in reply.spans] == [(0, 0), (1, 2)]
    assert reply.text == "One two. Three four. Five six…"  # not known to be complete
    reply.complete_through = 2
    assert reply.text == "One two. Three four. Five six."
    memory.heard(3, 500 + 600)  # half of the joint span: two of its four words
    assert reply.text == "One two. Three four…"


def _status_error(status: int, headers: dict[str, str] | None = None) -> openai.APIStatusError:
    request = httpx2.Request("POST", "http://fake/v1/chat/completions")
    response = httpx2.Response(status, headers=headers or {}, request=request)
    return openai.APIStatusError("boom", response=response, body=None)


def test_errors_are_classified_like_the_api_documents_them() -> None:
    assert classify(_status_error(429, {"retry-after": "1.5"})) == Retry(1.5)
    assert classify(_status_error(429, {"retry-after-ms": "250"})) == Retry(0.25)
    assert classify(_status_error(503)) == Retry(None)
    assert classify(_status_error(401)) is None
    assert classify(_status_error(400)) is None
    request = httpx2.Request("POST", "http://fake/v1/audio/speech")
    assert classify(openai.APITimeoutError(request=request)) == Retry()
    assert classify(httpx2.RemoteProtocolError("peer closed")) == Retry()
    assert classify(ValueError("bug")) is None
    assert retry_after_s({"retry-after": "soon"}) is None


async def test_retries_back_off_within_the_deadline_then_give_up() -> None:
    calls: list[float] = []
    loop = asyncio.get_running_loop()

    async def always_fails() -> None:
        calls.append(loop.time())
        raise ConnectionResetError("dropped")

    policy = RetryPolicy(base_delay_s=0.05, max_delay_s=0.2, jitter=0.0)
    started = loop.time()
    with pytest.raises(DeadlineExceeded) as caught:
        await retry_within(
            always_fails, Deadline(0.5), lambda e: Retry(), what="test", policy=policy
        )
    assert isinstance(caught.value.__cause__, ConnectionResetError)
    assert loop.time() - started < 0.6
    gaps = [b - a for a, b in itertools.pairwise(calls)]
    assert gaps[:3] == pytest.approx([0.05, 0.1, 0.2], abs=0.04)


async def test_no_retry_once_results_were_used_or_when_retry_after_is_too_long() -> None:
    attempts = 0

    async def fails() -> None:
        nonlocal attempts
        attempts += 1
        raise ConnectionResetError("dropped")

    with pytest.raises(ConnectionResetError):
        await retry_within(fails, Deadline(5), lambda e: Retry(), what="t", may_retry=lambda: False)
    with pytest.raises(DeadlineExceeded):
        await retry_within(fails, Deadline(5), lambda e: Retry(after_s=60), what="t")
    assert attempts == 2


def test_a_missing_key_for_api_openai_com_is_a_start_up_error() -> None:
    settings = Settings.from_env({"BRIDGE_AGENT": "openai"}, dotenv_path=None)
    with pytest.raises(SettingsError, match="BRIDGE_OPENAI_API_KEY"):
        build_agent_factory(settings)
    only_chat_local = Settings.from_env(
        {
            "BRIDGE_AGENT": "openai",
            "BRIDGE_OPENAI_CHAT_BASE_URL": "http://127.0.0.1:11434/v1",
            "BRIDGE_OPENAI_STT_API_KEY": "sk-stt",
        },
        dotenv_path=None,
    )
    with pytest.raises(SettingsError, match="speech"):  # STT has a key, chat needs none
        build_agent_factory(only_chat_local)


async def test_a_custom_server_needs_no_key() -> None:
    settings = Settings.from_env(
        {"BRIDGE_AGENT": "openai", "BRIDGE_OPENAI_BASE_URL": "http://127.0.0.1:9/v1"},
        dotenv_path=None,
    )
    factory = build_agent_factory(settings)
    assert factory.name == "openai"
    await factory.aclose()
