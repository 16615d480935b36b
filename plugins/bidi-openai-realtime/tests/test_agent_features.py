"""Non-blocking tools (emulated), MCP tools, recording and telemetry with OpenAI Realtime's fake."""

from __future__ import annotations

import pytest

from bidi_core import BidiTextInputEvent, get_model
from bidi_core.testing.scenarios import check_mcp_recording_telemetry, check_non_blocking_tool


def model_for(fake):
    return get_model("openai_realtime", **fake.model_kwargs)


async def test_the_talk_goes_on_while_a_slow_tool_runs(fake) -> None:
    """While a non-blocking tool runs the model answers another turn, then its late result."""
    model = model_for(fake)
    assert model.capabilities.non_blocking_tools is False
    await check_non_blocking_tool(model)


async def test_a_late_result_after_a_restart_is_still_answered(fake) -> None:
    """A connection restart while the tool runs does not lose its result."""
    model = model_for(fake)
    restart = lambda: model.send(BidiTextInputEvent(text="[fault:time_limit]"))  # noqa: E731
    assert (await check_non_blocking_tool(model, restart=restart)).restarts >= 1


async def test_a_silent_result_is_taken_without_an_answer(fake) -> None:
    """scheduling='silent': the result reaches the model, which does not answer it."""
    await check_non_blocking_tool(model_for(fake), scheduling="silent")


async def test_mcp_tools_recording_and_telemetry(fake, tmp_path) -> None:
    """An MCP server's tool answers through OpenAI Realtime; the talk is recorded and traced."""
    pytest.importorskip("mcp")
    pytest.importorskip("opentelemetry.sdk")
    outcome = await check_mcp_recording_telemetry(model_for(fake), str(tmp_path))
    assert "execute_tool add" in outcome.span_names
    assert outcome.assistant_peak > 1000
    assert "tool_result" in outcome.log_types


async def test_a_changed_mcp_tool_list_reaches_the_live_session(fake) -> None:
    """An MCP server adds a tool: session.update carries it and the model can call it."""
    pytest.importorskip("mcp")
    import asyncio
    import sys

    from bidi_core import BidiAgent, BidiTranscriptStreamEvent
    from bidi_core.mcp import MCPTools

    tools = MCPTools([sys.executable, "-m", "bidi_core.testing.mcp_server"])
    agent = BidiAgent(model_for(fake), tools=[tools])

    async def answer(text: str) -> str:
        await agent.send(text)
        async with asyncio.timeout(20):
            async for event in agent.receive():
                if (
                    isinstance(event, BidiTranscriptStreamEvent)
                    and event.role == "assistant"
                    and event.is_final
                ):
                    return event.text
        raise AssertionError("no answer")

    async with agent:
        assert await answer("grow") == "grow returned grown."
        for _ in range(200):
            updates = [e for e in fake.client_events("session.update") if "tools" in e["session"]]
            if any(t["name"] == "extra" for u in updates[1:] for t in u["session"]["tools"]):
                break
            await asyncio.sleep(0.02)
        else:
            raise AssertionError("no session.update with the new tool")
        assert await answer("extra") == "extra returned extra here."
