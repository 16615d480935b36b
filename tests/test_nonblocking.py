"""Non-blocking tools through BidiAgent: native (simulated) and emulated, progress, restarts."""

from __future__ import annotations

import asyncio

import attrs
import pytest

from bidi_core import BidiAgent, ToolError, get_model, tool
from bidi_core._nonblocking import late_result_text, parse_late_result
from bidi_core.events import BidiTextInputEvent
from bidi_core.testing.scenarios import check_non_blocking_tool
from bidi_core.tools import ToolProgress


def simulated(*, native: bool = True, **assistant):
    model = get_model("simulated", provider_config={"assistant": assistant} if assistant else None)
    if not native:
        model.capabilities = attrs.evolve(model.capabilities, non_blocking_tools=False)
    return model


def test_tool_declares_blocking_and_scheduling_in_its_spec():
    """@tool(blocking=False) puts blocking/scheduling into the spec; progress is no argument."""

    @tool(blocking=False, scheduling="interrupt")
    async def book(city: str, progress: ToolProgress) -> str:
        """Book a table."""
        return city

    assert book.tool_spec["blocking"] is False
    assert book.tool_spec["scheduling"] == "interrupt"
    assert list(book.tool_spec["inputSchema"]["json"]["properties"]) == ["city"]

    @tool
    def plain(x: int) -> int:
        """Plain."""
        return x

    assert "blocking" not in plain.tool_spec
    assert plain.scheduling is None


def test_bad_scheduling_is_refused():
    """An unknown scheduling, or a scheduling on a blocking tool, is a ToolError."""
    with pytest.raises(ToolError, match="scheduling must be one of"):
        tool(name="t", blocking=False, scheduling="later")(lambda: None)  # type: ignore[arg-type]
    with pytest.raises(ToolError, match="blocking=False"):
        tool(name="t", scheduling="silent")(lambda: None)


def test_late_result_text_round_trips():
    """The words a late result travels in are read back exactly (progress and silent too)."""
    result = {"toolUseId": "call_1", "status": "error", "content": [{"text": "no (seats)"}]}
    late = parse_late_result(late_result_text("book", result, scheduling="silent"))
    assert late is not None
    assert (late.name, late.tool_use_id, late.status, late.text) == (
        "book",
        "call_1",
        "error",
        "no (seats)",
    )
    assert late.silent
    progress = {**result, "status": "success", "progress": True}
    again = parse_late_result(late_result_text("book", progress, scheduling=None))
    assert again is not None
    assert again.progress
    assert not again.silent
    assert parse_late_result("book a table for (two)") is None


async def test_a_progress_reporter_works_from_a_sync_tool_thread():
    """ToolProgress called from a worker thread reaches the loop."""
    got: list[object] = []
    done = asyncio.Event()

    def report(update, scheduling):
        got.append((update, scheduling))
        done.set()

    @tool
    def sync_tool(progress: ToolProgress) -> str:
        """Sync."""
        progress("from a thread", scheduling="silent")
        return "ok"

    reporter = ToolProgress(report, asyncio.get_running_loop())
    result = await sync_tool.invoke(
        {"toolUseId": "c", "name": "sync_tool", "input": {}}, progress=reporter
    )
    await asyncio.wait_for(done.wait(), 5)
    assert result["content"] == [{"text": "ok"}]
    assert got == [("from a thread", "silent")]


@pytest.mark.parametrize("native", [True, False], ids=["native", "emulated"])
async def test_the_talk_goes_on_while_a_slow_tool_runs(native):
    """The model answers other turns while the tool runs, then answers its late result."""
    outcome = await check_non_blocking_tool(simulated(native=native))
    answers = outcome.answers
    meanwhile = next(i for i, a in enumerate(answers) if "You said: Meanwhile" in a)
    late = next(i for i, a in enumerate(answers) if "42 tickets" in a)
    assert meanwhile < late
    assert answers[late] == "slow_lookup returned 42 tickets."
    if native:
        assert "I started slow_lookup; I will tell you when it is done." in answers
    else:
        first = outcome.results[0]
        assert "running in the background" in first["content"][0]["text"]


@pytest.mark.parametrize("native", [True, False], ids=["native", "emulated"])
async def test_a_late_result_after_a_restart_is_still_delivered(native):
    """A result that arrives after a connection restart reaches the new connection."""
    model = simulated(native=native)
    outcome = await check_non_blocking_tool(
        model, restart=lambda: model.send(BidiTextInputEvent(text="[fault:time_limit]"))
    )
    assert outcome.restarts >= 1
    assert any("slow_lookup returned 42 tickets" in a for a in outcome.answers)


@pytest.mark.parametrize("native", [True, False], ids=["native", "emulated"])
async def test_a_silent_result_is_not_answered(native):
    """scheduling='silent' adds the result to the context without an answer."""
    outcome = await check_non_blocking_tool(simulated(native=native), scheduling="silent")
    assert not any("42 tickets" in a for a in outcome.answers)


async def test_barge_in_does_not_cancel_a_background_call():
    """Barge-in cancels blocking calls only: a non-blocking call keeps running."""
    release = asyncio.Event()
    cancelled: list[str] = []

    @tool(blocking=False)
    async def background() -> str:
        """Background."""
        try:
            await release.wait()
        except asyncio.CancelledError:
            cancelled.append("background")
            raise
        return "done"

    agent = BidiAgent(simulated(), tools=[background])
    async with agent:
        await agent.send("background")
        await asyncio.sleep(0.3)
        agent._on_interruption(  # what a barge-in event does
            __import__("bidi_core").BidiInterruptionEvent(response_id=None)
        )
        await asyncio.sleep(0.1)
        assert agent._calls
        assert not cancelled
        release.set()
