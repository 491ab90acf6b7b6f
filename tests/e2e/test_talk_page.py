"""The talk page in a real browser: Debian's Chromium, headless, with a fake microphone fed
from a WAV file, on a real bridge. The page's user speaks, the agent answers, what the page
played is read back from its player; a barge-in on the page stops playback."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
from playwright.async_api import Browser, Page, Playwright, async_playwright

from pipeline.agents.echo import EchoAgentFactory
from pipeline.wav import write_wav
from tests.fakes.agents import Factory
from tests.support.realtime import wait_for
from tests.support.records import TranscriptAgent
from tests.support.serverthread import MakeServer
from tests.support.toys import hello_16k

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
HAVE_CHROMIUM = Path(CHROMIUM).exists()
#: what keeps headless Chromium quiet on a machine with no internet (and no sandbox as root)
QUIET_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def silence_16k(ms: int) -> bytes:
    return bytes(ms * 32)


@pytest.fixture
async def chromium() -> AsyncIterator[Playwright]:
    if not HAVE_CHROMIUM:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is missing: scripts/setup.sh installs it")
        pytest.skip("no chromium here (scripts/setup.sh installs Debian's)")
    async with async_playwright() as playwright:
        yield playwright


async def open_page(playwright: Playwright, url: str, microphone: Path) -> tuple[Browser, Page]:
    browser = await playwright.chromium.launch(
        executable_path=CHROMIUM,
        args=[
            *QUIET_FLAGS,
            "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-audio-capture={microphone}%noloop",
            "--autoplay-policy=no-user-gesture-required",
        ],
    )
    page = await browser.new_page()
    await page.goto(url)
    return browser, page


def microphone(tmp_path: Path, *parts: bytes) -> Path:
    path = tmp_path / "microphone.wav"
    write_wav(path, b"".join(parts), 16000)
    return path


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    n = min(len(a), len(b))
    x, y = a[:n].astype(np.float64), b[:n].astype(np.float64)
    return float(np.dot(x, y) / (np.linalg.norm(x) * np.linalg.norm(y) + 1e-9))


def envelope(pcm: np.ndarray, window: int = 320) -> np.ndarray:
    """Loudness per 20 ms: what survives the browser's own voice processing."""
    n = len(pcm) // window
    frames = pcm[: n * window].astype(np.float64).reshape(n, window)
    loudness: np.ndarray = np.sqrt((frames**2).mean(axis=1))
    return loudness


async def test_the_page_speaks_and_hears_the_agent(
    make_server: MakeServer, tmp_path: Path, chromium: Playwright
) -> None:
    playwright = chromium
    server = make_server(EchoAgentFactory())
    speech = hello_16k()
    mic = microphone(tmp_path, silence_16k(500), speech, silence_16k(4000))
    browser, page = await open_page(playwright, f"{server.http}/talk?autostart=1&debug=1", mic)
    try:
        await page.wait_for_function(
            f"() => window.talk.playedSamples().length >= {int(len(speech) / 2 * 0.8)}",
            timeout=20_000,
        )
        played = np.array(await page.evaluate("() => window.talk.playedSamples()"), np.int16)
        status = await page.text_content("#status")
    finally:
        await browser.close()
    assert status is not None and status.startswith("Connected")
    said = np.frombuffer(speech, np.int16)
    # the echo is the page's own words, through the browser's capture and our resampling
    best = max(
        similarity(envelope(played[shift:]), envelope(said)) for shift in range(0, 8000, 160)
    )
    assert best > 0.8, best


async def test_the_page_shows_words_and_latency_and_a_barge_in_stops_playback(
    make_server: MakeServer, tmp_path: Path, chromium: Playwright
) -> None:
    playwright = chromium
    factory = Factory(lambda call: TranscriptAgent(call, reply_ms=6000))
    server = make_server(factory)
    speech = hello_16k()
    mic = microphone(
        tmp_path, silence_16k(500), speech, silence_16k(2500), speech, speech, silence_16k(3000)
    )
    browser, page = await open_page(playwright, f"{server.http}/talk?autostart=1&debug=1", mic)
    try:
        await page.wait_for_function("() => window.talk.clears >= 1", timeout=20_000)
        await page.wait_for_selector("li[data-turn='1'] .latency:not(:empty)")
        first = await page.text_content("li[data-turn='1']")
        agent = factory.agents[0]
        assert isinstance(agent, TranscriptAgent)
        await wait_for(lambda: bool(agent.interruptions), what="the barge-in")
        played_ms = await page.evaluate("() => window.talk.playedSamples().length / 16")
    finally:
        await browser.close()
    assert first is not None
    assert "You: question 1" in first and "Agent: answer 1" in first and "reply after" in first
    [(turn, heard_ms)] = agent.interruptions[:1]
    assert turn == 1 and heard_ms < 6000
    assert played_ms < 6000 + 100  # the rest of the 6 s reply never played
