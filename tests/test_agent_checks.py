"""BidiAgent refuses bad arguments at once, paces restart storms and always answers a tool call."""

from __future__ import annotations

import asyncio
import json
import logging
import math
from typing import Any

import pytest

from bidi_core import BidiConnectionRestartEvent, ConfigError, ToolResultEvent
from bidi_core.agent import BidiAgent
from bidi_core.simulated import SimulatedModel
from bidi_core.tools import tool

STEP = 30.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param(
            {"restart_attempts": 2.5},
            r"BidiAgent restart_attempts must be an int >= 1 \(got 2\.5\)",
            id="attempts-float",
        ),
        pytest.param(
            {"restart_attempts": True}, r"restart_attempts must be an int", id="attempts-bool"
        ),
        pytest.param(
            {"restart_timeout": math.nan},
            r"BidiAgent restart_timeout must be a number of seconds > 0 \(got nan\)",
            id="restart-timeout-nan",
        ),
        pytest.param(
            {"tool_timeout": math.nan},
            r"BidiAgent tool_timeout must be a number of seconds > 0, or None \(got nan\)",
            id="tool-timeout-nan",
        ),
        pytest.param(
            {"tool_timeout": math.inf}, r"tool_timeout must be a number", id="tool-timeout-inf"
        ),
        pytest.param(
            {"max_queued_audio_ms": "10"},
            r"BidiAgent max_queued_audio_ms must be a number of ms >= 0 \(got '10'\)",
            id="queued-audio-str",
        ),
        pytest.param(
            {"tools": "get_weather"}, r"tools must be a list of functions", id="tools-str"
        ),
        pytest.param({"system_prompt": 3}, r"system_prompt must be a str or None", id="prompt-int"),
        pytest.param(
            {"messages": [{"role": "bot", "content": []}]},
            r"messages\[0\] must be \{'role': 'user' or 'assistant'",
            id="messages-role",
        ),
        pytest.param(
            {"messages": [{"role": "user", "content": [{"text": math.nan}]}]},
            r"messages must be JSON data, but they have nan",
            id="messages-nan",
        ),
        pytest.param(
            {"cancel_tools_on_interruption": "no"},
            r"cancel_tools_on_interruption must be a bool",
            id="cancel-str",
        ),
    ],
)
def test_bad_agent_arguments_are_refused_at_construction(
    kwargs: dict[str, Any], message: str
) -> None:
    """A wrong-typed or out-of-range argument is a ConfigError naming it, before anything runs."""
    with pytest.raises(ConfigError, match=message):
        BidiAgent(SimulatedModel(), **kwargs)


async def test_a_bad_restart_attempts_no_longer_breaks_the_first_restart() -> None:
    """restart_attempts=2.5 used to pass and kill the first restart with a TypeError."""
    with pytest.raises(ConfigError):
        BidiAgent(
            SimulatedModel(provider_config={"connection_limit_s": 0.05}), restart_attempts=2.5
        )


async def test_a_model_that_keeps_timing_out_is_not_restarted_in_a_tight_loop() -> None:
    """A limit that ends every connection at once: the first restarts are prompt, then paced."""
    model = SimulatedModel(provider_config={"connection_limit_s": 0.001})
    agent = BidiAgent(model)
    restarts = 0
    async with agent:

        async def count() -> None:
            nonlocal restarts
            async for event in agent.receive():
                if isinstance(event, BidiConnectionRestartEvent):
                    restarts += 1

        reader = asyncio.create_task(count())
        await asyncio.sleep(2.0)
        assert restarts >= 3  # restarted promptly at first
        # Unpaced, this loop reconnected hundreds of times in two seconds.
        assert agent.stats.restarts <= 12
    await asyncio.wait_for(reader, STEP)


def _nested(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = [value]
    return value


@tool
def deep_lookup() -> Any:
    """Return a value nested 1,200 levels deep."""
    return _nested(1200)


@tool
def sensor() -> dict[str, float]:
    """Return readings, some not numbers."""
    return {"temp": math.nan, "max": math.inf, "min": -math.inf, "ok": 1.5}


async def tool_results(tool_fn: Any, call: str) -> list[ToolResultEvent]:
    """Ask the simulated model to call *tool_fn*; return the results the agent sent."""
    agent = BidiAgent("simulated", tools=[tool_fn])
    results: list[ToolResultEvent] = []
    async with agent:
        await agent.send(call)
        async with asyncio.timeout(STEP):
            async for event in agent.receive():
                if isinstance(event, ToolResultEvent):
                    results.append(event)
                if type(event).__name__ == "BidiResponseCompleteEvent" and results:
                    break
    return results


async def test_a_result_nested_1200_deep_becomes_an_error_result_and_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The model gets an error result naming the problem (it got none before); it is logged."""
    with caplog.at_level(logging.WARNING):
        (result,) = await tool_results(deep_lookup, "call deep_lookup {}")
    assert result.tool_result["status"] == "error"
    text = result.tool_result["content"][0]["text"]  # type: ignore[typeddict-item]
    assert "nested deeper than 100 levels" in text
    assert any(
        "deep_lookup" in r.getMessage() and "nested deeper" in r.getMessage()
        for r in caplog.records
    )


async def test_non_finite_floats_in_a_result_are_sent_as_their_names() -> None:
    """NaN and infinities become "NaN", "Infinity", "-Infinity": to_dict() stays strict JSON."""
    (result,) = await tool_results(sensor, "call sensor {}")
    assert result.tool_result["status"] == "success"
    assert result.tool_result["content"] == [
        {"json": {"temp": "NaN", "max": "Infinity", "min": "-Infinity", "ok": 1.5}}
    ]
    json.dumps(result.to_dict(), allow_nan=False)


@pytest.mark.parametrize("settle", [math.nan, -1, "1.5"])
async def test_run_refuses_a_settle_time_that_would_never_settle(settle: Any) -> None:
    """run(settle_s=NaN) would wait forever for the talk to settle; it is a ConfigError."""
    agent = BidiAgent(SimulatedModel())
    with pytest.raises(ConfigError, match=r"BidiAgent\.run\(\) settle_s must be a number >= 0"):
        await agent.run(settle_s=settle)
    assert agent.state.value == "idle"
