"""The browser page of ``bidi serve`` in a real headless Chromium (Debian's), driven by Playwright.

A spoken question from a WAV (Chromium's fake microphone) goes through the page's
capture worklet and the gateway to the simulated model; the test reads the DOM and
the page's playback worklet counters, and the server side's truncation.

Chromium must be present in CI (``.ci/run`` installs it and sets
``BIDI_REQUIRE_BROWSER=1``; ``CI=true`` counts too); elsewhere these tests skip, saying
why, when ``/usr/bin/chromium`` (or ``BIDI_CHROMIUM``) is missing.
"""

from __future__ import annotations

import os
import shutil
import wave
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bidi_core import tool
from bidi_core.serve.testing import Gateway, gateway
from bidi_core.simulated import SimulatedModel
from bidi_core.testing.speech import speak

WAV_RATE = 48000
QUESTION = 'what is the weather in paris? get_weather {"city": "paris"}'
#: Long, so that the answer is still being spoken when the WAV says "stop".
FORECAST = (
    "sunny and twenty one degrees in {city}, with a light breeze from the west and clear "
    "skies all afternoon and evening, so it is a fine day for a long walk along the river "
    "and a picnic in the park before the sun goes down behind the hills"
)
#: What Chromium runs with: no network of its own, a fake microphone playing the WAV.
CHROMIUM_FLAGS = [
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
]


def _required() -> bool:
    return bool(os.environ.get("BIDI_REQUIRE_BROWSER") or os.environ.get("CI"))


def _chromium() -> str:
    path = os.environ.get("BIDI_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not os.path.exists(path):
        reason = (
            f"Chromium not found at {path!r}: install Debian's package (apt-get install "
            "chromium) or set BIDI_CHROMIUM"
        )
        if _required():
            pytest.fail(f"{reason}; it is required in CI (BIDI_REQUIRE_BROWSER/CI is set).")
        pytest.skip(reason)
    return path


def _playwright() -> Any:
    try:
        from playwright.async_api import async_playwright
    except ImportError as exc:  # the test dependency group installs it
        if _required():
            raise
        pytest.skip(f"playwright is not installed: {exc}")
    return async_playwright


@tool
def get_weather(city: str) -> str:
    """Get the weather forecast.

    Args:
        city: The city.
    """
    return FORECAST.format(city=city)


def write_wav(path: Path) -> Path:
    """0.8 s quiet, the question, quiet until 6 s, "stop" (a barge-in), 2 s quiet."""

    def quiet(seconds: float) -> bytes:
        return bytes(int(WAV_RATE * seconds) * 2)

    pcm = quiet(0.8) + speak(QUESTION, WAV_RATE)
    pcm += quiet(6.0 - len(pcm) / 2 / WAV_RATE)
    pcm += speak("stop", WAV_RATE) + quiet(2.0)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(WAV_RATE)
        out.writeframes(pcm)
    return path


@pytest.fixture
async def browser(tmp_path: Path) -> AsyncIterator[Any]:
    """A fresh headless Chromium (own profile dir) whose microphone plays the test WAV."""
    executable = _chromium()
    async_playwright = _playwright()
    wav = write_wav(tmp_path / "question.wav")
    async with async_playwright() as pw:
        context = await pw.chromium.launch_persistent_context(
            str(tmp_path / "profile"),
            executable_path=executable,
            headless=True,
            chromium_sandbox=False,
            args=[*CHROMIUM_FLAGS, f"--use-file-for-fake-audio-capture={wav}%noloop"],
        )
        try:
            yield context
        finally:
            await context.close()


async def _page(context: Any, url: str) -> Any:
    page = context.pages[0] if context.pages else await context.new_page()
    await page.goto(url)
    return page


async def _texts(page: Any, selector: str) -> list[str]:
    texts: list[str] = await page.eval_on_selector_all(
        selector, "nodes => nodes.map(n => n.querySelector('.text').textContent)"
    )
    return texts


async def test_a_spoken_question_is_answered_through_the_page(browser: Any, tmp_path: Path) -> None:
    """Mic -> page -> gateway -> model and back: transcripts, tool call, audio played, barge-in."""
    model_factory = lambda: SimulatedModel(provider_config={"seed": 1, "pace": 0.5})  # noqa: E731
    async with gateway(
        "simulated", model_factory=model_factory, tool_functions=[get_weather]
    ) as gw:
        # Echo cancellation stays on, as for users; noise suppression and gain control
        # reshape the synthetic speech tones, so they are off.
        page = await _page(browser, gw.url + "/#ns=0&agc=0")
        await page.click("#start")
        await page.wait_for_function(
            "() => document.querySelector('#log').innerText.includes('You said: stop.')",
            timeout=60_000,
        )
        stats = await page.evaluate("window.bidiStats")
        await page.screenshot(path=str(tmp_path / "browser.png"), full_page=True)
        users = await _texts(page, "#log li.user")
        assistant = await _texts(page, "#log li.assistant")
        tools = await _texts(page, "#log li.tool")
        results = await _texts(page, "#log li.tool-result")
        events = await _texts(page, "#log li.event")
        ttfa = await page.inner_text("#ttfa")
        await page.click("#start")  # stop
        await page.wait_for_function("() => window.bidiStats.closed !== null", timeout=10_000)
        truncations = _truncations(gw)
    assert users == [QUESTION, "stop"]
    assert tools == ['get_weather({"city":"paris"})']
    assert results == ["success: " + FORECAST.format(city="paris")]
    answer, barge_in_answer = assistant
    assert answer.startswith("get_weather returned sunny and twenty one degrees in paris")
    assert barge_in_answer == "You said: stop."
    # The answer was played by the playback worklet: over a second of it.
    rate = stats["contextRate"]
    assert stats["playedFrames"] / rate > 1.0, stats
    assert stats["playbackReports"] > 0
    # The barge-in flushed what was queued, at once, and the page said so.
    assert stats["flushes"] == 1
    assert stats["flushedFrames"] > 0.2 * rate, stats
    assert "You interrupted: playback stopped." in events
    # The gateway truncated the model's answer at what the page reported playing: some,
    # not all (the full answer is 40 ms a character; part of it was flushed unheard).
    assert len(truncations) == 1
    played_ms = truncations[0][1]
    full_ms = 40 * len("get_weather returned " + FORECAST.format(city="paris") + ".")
    assert 0 < played_ms < full_ms - stats["flushedFrames"] / rate * 1000 + 200
    assert ttfa.endswith(" ms")
    assert (tmp_path / "browser.png").stat().st_size > 10_000


def _truncations(gw: Gateway) -> list[tuple[str, int]]:
    (model,) = gw.models
    assert isinstance(model, SimulatedModel)
    return list(model.truncations)


async def test_the_page_says_when_the_microphone_is_denied(browser: Any) -> None:
    """A denied microphone gives a clear message, and no session is opened."""
    await browser.add_init_script(
        "navigator.mediaDevices.getUserMedia = () => "
        "Promise.reject(new DOMException('Permission denied', 'NotAllowedError'));"
    )
    async with gateway("simulated") as gw:
        page = await _page(browser, gw.url + "/")
        await page.click("#start")
        await page.wait_for_function(
            "() => document.querySelector('#status').classList.contains('error')",
            timeout=20_000,
        )
        status = await page.inner_text("#status")
        button = await page.inner_text("#start")
        assert not gw.models
    assert status.startswith("Microphone access was denied.")
    assert button == "Start"


async def test_the_page_says_when_the_connection_is_refused_or_closed(browser: Any) -> None:
    """A refused session (wrong token) and one the server closes are both said in words."""
    async with gateway("simulated", token="right-token") as gw:
        page = await _page(browser, gw.url + "/#token=wrong-token")
        await page.click("#start")
        await page.wait_for_function(
            "() => document.querySelector('#status').textContent.includes('Connection closed')",
            timeout=20_000,
        )
        refused = await page.inner_text("#status")
        await page.evaluate("location.hash = '#token=right-token'")
        await page.click("#start")
        await page.wait_for_function(
            "() => document.querySelector('#status').textContent.startsWith('Listening')",
            timeout=20_000,
        )
    # The server has shut down with the session open.
    await page.wait_for_function(
        "() => document.querySelector('#status').textContent.includes('Connection closed')",
        timeout=20_000,
    )
    closed = await page.inner_text("#status")
    error = await page.eval_on_selector("#status", "node => node.classList.contains('error')")
    assert refused.startswith("Connection closed (code 1006): the server refused the session")
    assert closed.startswith("Connection closed (code 1012)")
    assert error
