"""OpenAI's server-side MCP tools: listed, called, answered or failed, as bidi events."""

from __future__ import annotations

import asyncio

import pytest

from bidi_core import (
    BidiAgent,
    BidiServerToolEvent,
    BidiTranscriptStreamEvent,
    ToolResultEvent,
    get_model,
)
from bidi_openai_realtime._mcp_wire import ServerMCP
from bidi_openai_realtime.testing import serve

SERVERS = {"weather": {"forecast": "rain at noon", "alerts": "!upstream timed out"}}


def mcp_tool(label: str, **extra) -> dict:
    return {
        "type": "mcp",
        "server_label": label,
        "server_url": "https://mcp.example.com/mcp",
        "require_approval": "never",
        **extra,
    }


async def talk(model, text: str) -> tuple[list[BidiServerToolEvent], list[str], list]:
    agent = BidiAgent(model)
    server_events: list[BidiServerToolEvent] = []
    answers: list[str] = []
    results: list = []
    async with agent:
        await agent.send(text)
        async with asyncio.timeout(20):
            async for event in agent.receive():
                if isinstance(event, BidiServerToolEvent):
                    server_events.append(event)
                elif isinstance(event, ToolResultEvent):
                    results.append(event)
                elif (
                    isinstance(event, BidiTranscriptStreamEvent)
                    and event.role == "assistant"
                    and event.is_final
                ):
                    answers.append(event.text)
                    if "returned" in event.text:
                        break
    return server_events, answers, results


async def test_server_side_mcp_calls_become_observable_events() -> None:
    """The session's mcp tool is listed; a call and its result are events; the model answers."""
    async with serve(mcp_servers=SERVERS) as fake:
        model = get_model(
            "openai_realtime",
            provider_config={"inference": {"tools": [mcp_tool("weather")]}},
            **fake.model_kwargs,
        )
        events, answers, results = await talk(model, 'forecast {"city": "Oslo"}')
    assert not fake.invalid
    assert not fake.invalid_sent
    listed = [e for e in events if e.phase == "listed"]
    assert [(e.server, e.tools) for e in listed] == [("weather", ("forecast", "alerts"))]
    call = next(e for e in events if e.phase == "call")
    assert (call.server, call.name, call.arguments) == ("weather", "forecast", '{"city": "Oslo"}')
    result = next(e for e in events if e.phase == "result")
    assert (result.item_id, result.output) == (call.item_id, "rain at noon")
    assert answers[-1] == "forecast returned rain at noon."
    assert results == []  # the agent ran nothing: OpenAI did
    # The client never sent a function_call_output for it.
    assert not [
        e
        for e in fake.client_events("conversation.item.create")
        if e["item"].get("type") == "function_call_output"
    ]


async def test_a_failing_server_side_call_and_an_unknown_server_are_reported() -> None:
    """A failed call is a 'failed' event with the error; an unreachable server 'list_failed'."""
    tools = [mcp_tool("weather", allowed_tools=["alerts"]), mcp_tool("nowhere")]
    async with serve(mcp_servers=SERVERS) as fake:
        model = get_model(
            "openai_realtime", provider_config={"inference": {"tools": tools}}, **fake.model_kwargs
        )
        events, answers, _ = await talk(model, "alerts please")
    phases = [(e.phase, e.server) for e in events]
    assert ("list_failed", "nowhere") in phases
    assert [e.tools for e in events if e.phase == "listed"] == [("alerts",)]
    failed = next(e for e in events if e.phase == "failed")
    assert (failed.name, failed.error) == ("alerts", "upstream timed out")
    assert answers[-1] == "alerts returned an error: upstream timed out."


@pytest.mark.parametrize("order", ["events_first", "items_first"])
def test_the_decoder_reports_each_phase_once_whatever_the_order(order: str) -> None:
    """Item and event order vary: each call is reported once, with the item's details."""
    item = {
        "id": "mcp_1",
        "type": "mcp_call",
        "server_label": "s",
        "name": "f",
        "arguments": "{}",
        "output": "ok",
    }
    events = [
        {"type": "response.mcp_call.in_progress", "item_id": "mcp_1", "output_index": 0},
        {"type": "response.mcp_call.completed", "item_id": "mcp_1", "output_index": 0},
    ]
    items = [
        {"type": "response.output_item.added", "item": {**item, "output": None}},
        {"type": "response.output_item.done", "item": item},
        {"type": "conversation.item.done", "item": item},
    ]
    frames = events + items if order == "events_first" else items[:1] + events + items[1:]
    decoder = ServerMCP()
    seen = [e for frame in frames for e in decoder.feed(frame)]
    assert [(e.phase, e.name) for e in seen] == [("call", "f"), ("result", "f")]
    assert seen[-1].output == "ok"
