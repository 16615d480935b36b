"""Non-blocking tools (native), MCP tools, recording and telemetry with Gemini Live's fake."""

from __future__ import annotations

import pytest

from bidi_core import BidiTextInputEvent, get_model
from bidi_core.testing.scenarios import check_mcp_recording_telemetry, check_non_blocking_tool


def model_for(fake):
    return get_model("gemini_live", **fake.model_kwargs)


async def test_the_talk_goes_on_while_a_slow_tool_runs(fake) -> None:
    """While a non-blocking tool runs the model answers another turn, then its late result."""
    model = model_for(fake)
    assert model.capabilities.non_blocking_tools is True
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
    """An MCP server's tool answers through Gemini Live; the talk is recorded and traced."""
    pytest.importorskip("mcp")
    pytest.importorskip("opentelemetry.sdk")
    outcome = await check_mcp_recording_telemetry(model_for(fake), str(tmp_path))
    assert "execute_tool add" in outcome.span_names
    assert outcome.assistant_peak > 1000
    assert "tool_result" in outcome.log_types


async def test_non_blocking_is_gemini_s_own_mechanism_on_the_wire(fake) -> None:
    """behavior NON_BLOCKING in the setup; progress with will_continue, both scheduled."""
    await check_non_blocking_tool(model_for(fake), scheduling="interrupt")
    setups = [m for m in fake.received if "setup" in m]
    declarations = [
        d for t in setups[0]["setup"]["tools"] for d in t.get("functionDeclarations", [])
    ]
    assert [d.get("behavior") for d in declarations] == ["NON_BLOCKING"]
    responses = [
        r
        for m in fake.received
        for key in ("toolResponse", "tool_response")
        if key in m
        for r in m[key].get("functionResponses", m[key].get("function_responses", []))
    ]
    progress = [r for r in responses if r.get("willContinue") or r.get("will_continue")]
    final = [r for r in responses if not (r.get("willContinue") or r.get("will_continue"))]
    assert progress[0]["scheduling"] == "WHEN_IDLE"  # the update's own scheduling
    assert final[-1]["scheduling"] == "INTERRUPT"  # the tool's
    assert final[-1]["response"] == {"output": "42 tickets"}
    # No "running" text: Gemini keeps talking by itself.
    texts = [m for m in fake.received if "realtimeInput" in m or "realtime_input" in m]
    assert not any("running in the background" in str(m) for m in texts)
