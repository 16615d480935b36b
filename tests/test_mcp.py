"""MCPTools against real MCP servers written with the ``mcp`` package (stdio and HTTP)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

pytest.importorskip("mcp")

from bidi_core import ConfigError, ToolError
from bidi_core.mcp import MCPTools
from bidi_core.tools import ToolProgress

SERVER = ["-m", "bidi_core.testing.mcp_server"]


def stdio_tools(tmp_path: Path, **kwargs) -> MCPTools:
    return MCPTools([sys.executable, *SERVER], env={"BIDI_TEST_MCP_MARKS": str(tmp_path)}, **kwargs)


def use(name: str, tool_use_id: str = "call_1", **args) -> dict:
    return {"toolUseId": tool_use_id, "name": name, "input": args}


@contextlib.asynccontextmanager
async def http_server() -> AsyncIterator[str]:
    """The demo server's streamable-HTTP app, served by uvicorn on 127.0.0.1."""
    import uvicorn

    from bidi_core.testing.mcp_server import build

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        build().streamable_http_app(), log_level="warning", lifespan="on", access_log=False
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        server.should_exit = True
        await task
        sock.close()


async def test_stdio_tools_are_listed_with_their_schemas(tmp_path):
    """A stdio server's tools become tool specs with the server's descriptions and schemas."""
    tools = stdio_tools(tmp_path)
    await tools.start()
    try:
        specs = {t.name: t.tool_spec for t in tools.tools}
        assert specs["add"]["description"] == "Add two integers."
        schema = specs["add"]["inputSchema"]["json"]
        assert schema["type"] == "object"
        assert set(schema["required"]) == {"a", "b"}
        assert schema["properties"]["a"]["type"] == "integer"
        assert "$schema" not in schema
        # A name providers refuse ('.') is made safe; the server's name is kept for calls.
        lookup = next(t for t in tools.tools if t.server_name == "weather.lookup")
        assert lookup.name == "weather_lookup"
        result = await lookup.invoke(use("weather_lookup", city="Oslo"))
        assert result["content"] == [{"text": "sunny in Oslo"}]
    finally:
        await tools.close()


async def test_calls_results_and_server_errors(tmp_path):
    """A call returns the server's text; a tool error becomes an error result with its message."""
    tools = stdio_tools(tmp_path, prefix="t_")
    await tools.start()
    try:
        by_name = {t.name: t for t in tools.tools}
        ok = await by_name["t_add"].invoke(use("t_add", a=2, b=40))
        assert ok == {"toolUseId": "call_1", "status": "success", "content": [{"text": "42"}]}
        bad = await by_name["t_fail"].invoke(use("t_fail", "call_2", reason="no power"))
        assert bad["status"] == "error"
        assert "cannot do it: no power" in bad["content"][0]["text"]
        wrong = await by_name["t_add"].invoke(use("t_add", "call_3", a="x"))
        assert wrong["status"] == "error"
    finally:
        await tools.close()


async def test_a_call_over_its_timeout_is_cancelled_on_the_server(tmp_path):
    """The agent's timeout ends the call with an error result and the server is told to cancel."""
    tools = stdio_tools(tmp_path)
    await tools.start()
    try:
        slow = next(t for t in tools.tools if t.name == "slow")
        result = await slow.invoke(use("slow", seconds=30), default_timeout=0.3)
        assert result["status"] == "error"
        assert "did not finish within 0.3 s" in result["content"][0]["text"]
        for _ in range(200):
            if (tmp_path / "cancelled-30").exists():
                break
            await asyncio.sleep(0.02)
        assert (tmp_path / "cancelled-30").exists()
    finally:
        await tools.close()


async def test_cancelling_a_call_cancels_it_on_the_server(tmp_path):
    """Cancelling the invoking task (barge-in, tool cancel) sends the server a cancellation."""
    tools = stdio_tools(tmp_path)
    await tools.start()
    try:
        slow = next(t for t in tools.tools if t.name == "slow")
        task = asyncio.create_task(slow.invoke(use("slow", seconds=20)))
        await asyncio.sleep(0.3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        for _ in range(200):
            if (tmp_path / "cancelled-20").exists():
                break
            await asyncio.sleep(0.02)
        assert (tmp_path / "cancelled-20").exists()
        # The session is still usable.
        add = next(t for t in tools.tools if t.name == "add")
        assert (await add.invoke(use("add", a=1, b=1)))["content"] == [{"text": "2"}]
    finally:
        await tools.close()


async def test_a_server_that_crashes_mid_call_gives_an_error_and_is_restarted(tmp_path):
    """A crash during a call is an error result; the next call starts the server again."""
    tools = stdio_tools(tmp_path)
    await tools.start()
    try:
        by_name = {t.name: t for t in tools.tools}
        crashed = await by_name["crash"].invoke(use("crash"))
        assert crashed["status"] == "error"
        assert "stopped during the call" in crashed["content"][0]["text"]
        assert not tools.running
        again = await by_name["add"].invoke(use("add", "call_2", a=3, b=4))
        assert again["content"] == [{"text": "7"}]
        assert tools.running
        assert tools.starts == 2
        assert len(list(tmp_path.glob("start-*"))) == 2
    finally:
        await tools.close()


async def test_progress_notifications_reach_the_tool_progress_reporter(tmp_path):
    """MCP progress notifications of a call are passed to the agent's ToolProgress."""
    tools = stdio_tools(tmp_path)
    await tools.start()
    try:
        updates: list[object] = []
        report = next(t for t in tools.tools if t.name == "report")
        result = await report.invoke(
            use("report", steps=3), progress=ToolProgress(lambda u, _s: updates.append(u))
        )
        assert result["content"] == [{"text": "done in 3 steps"}]
        assert updates == ["step 1 of 3", "step 2 of 3", "step 3 of 3"]
    finally:
        await tools.close()


async def test_a_changed_tool_list_is_fetched_again_and_listeners_are_told(tmp_path):
    """notifications/tools/list_changed refreshes the tools and calls every listener."""
    tools = stdio_tools(tmp_path)
    await tools.start()
    told = asyncio.Event()
    tools.add_listener(told.set)
    try:
        grow = next(t for t in tools.tools if t.name == "grow")
        await grow.invoke(use("grow"))
        await asyncio.wait_for(told.wait(), 10)
        extra = next(t for t in tools.tools if t.name == "extra")
        assert (await extra.invoke(use("extra")))["content"] == [{"text": "extra here"}]
    finally:
        await tools.close()


async def test_include_and_non_blocking_shape_the_specs(tmp_path):
    """include= picks tools; non_blocking= marks them non-blocking with their scheduling."""
    tools = stdio_tools(
        tmp_path, include=["add", "slow"], non_blocking=["slow"], scheduling="silent"
    )
    await tools.start()
    try:
        specs = {t.name: t.tool_spec for t in tools.tools}
        assert set(specs) == {"add", "slow"}
        assert specs["slow"]["blocking"] is False
        assert specs["slow"]["scheduling"] == "silent"
        assert "blocking" not in specs["add"]
    finally:
        await tools.close()


async def test_close_is_idempotent_and_stops_the_server(tmp_path):
    """close() twice is fine; calls after it are error results, not hangs."""
    tools = stdio_tools(tmp_path)
    await tools.start()
    add = next(t for t in tools.tools if t.name == "add")
    await tools.close()
    await tools.close()
    result = await add.invoke(use("add", a=1, b=2))
    assert result["status"] == "error"
    assert "not running" in result["content"][0]["text"]


async def test_a_command_that_does_not_exist_is_a_clear_error():
    """Starting a server whose command is missing raises ToolError naming it."""
    tools = MCPTools("bidi-no-such-mcp-server --flag", startup_timeout=10)
    with pytest.raises(ToolError, match="bidi-no-such-mcp-server"):
        await tools.start()
    await tools.close()


def test_a_plain_http_url_to_another_host_is_refused():
    """http:// to a host that is not this machine needs allow_insecure=True."""
    with pytest.raises(ConfigError, match="allow_insecure"):
        MCPTools("http://example.com/mcp")
    MCPTools("http://example.com/mcp", allow_insecure=True)
    MCPTools("https://example.com/mcp", headers={"Authorization": "Bearer s3cret"})


def test_headers_never_show_in_repr():
    """The HTTP headers (tokens) are not part of repr()."""
    tools = MCPTools("https://example.com/mcp?x=1", headers={"Authorization": "Bearer s3cret"})
    assert "s3cret" not in repr(tools)
    assert "x=1" not in repr(tools)


async def test_streamable_http_server_tools_and_calls():
    """Over streamable HTTP on 127.0.0.1 the same tools list and answer."""
    async with http_server() as url:
        tools = MCPTools(url)
        await tools.start()
        try:
            by_name = {t.name: t for t in tools.tools}
            assert {"add", "slow", "fail"} <= set(by_name)
            result = await by_name["add"].invoke(use("add", a=20, b=22))
            assert result["content"] == [{"text": "42"}]
            timed_out = await by_name["slow"].invoke(use("slow", seconds=30), default_timeout=0.3)
            assert timed_out["status"] == "error"
            failed = await by_name["fail"].invoke(use("fail", reason="http"))
            assert "cannot do it: http" in failed["content"][0]["text"]
        finally:
            await tools.close()


async def test_an_http_server_that_is_not_there_is_a_clear_error():
    """A URL nobody listens on fails start() with ToolError within the startup timeout."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    tools = MCPTools(f"http://127.0.0.1:{port}/mcp", startup_timeout=10)
    with pytest.raises(ToolError, match=f"127.0.0.1:{port}"):
        await tools.start()
    await tools.close()


async def test_the_agent_refreshes_the_model_s_tools_when_the_server_s_list_changes(tmp_path):
    """A tool added on the server is callable by the model in the same conversation."""
    from bidi_core import BidiAgent
    from bidi_core.events import BidiTranscriptStreamEvent

    agent = BidiAgent("simulated", tools=[stdio_tools(tmp_path)])

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
        assert "extra" not in [s["name"] for s in agent.tool_specs]
        assert await answer("grow") == "grow returned grown."
        for _ in range(200):
            if "extra" in [s["name"] for s in agent.tool_specs]:
                break
            await asyncio.sleep(0.02)
        assert await answer("extra") == "extra returned extra here."


async def test_the_agent_starts_a_crashed_server_again_at_a_connection_restart(tmp_path):
    """Started with the agent, restarted with its connection after a crash, closed at stop."""
    from bidi_core import BidiAgent
    from bidi_core.events import BidiConnectionStartEvent, BidiTextInputEvent, ToolResultEvent

    tools = stdio_tools(tmp_path)
    agent = BidiAgent("simulated", tools=[tools])
    assert not tools.running
    async with agent:
        assert tools.running
        await agent.send("crash")
        async with asyncio.timeout(20):
            async for event in agent.receive():
                if isinstance(event, ToolResultEvent):
                    assert event.tool_result["status"] == "error"
                    break
        assert not tools.running
        await agent.model.send(BidiTextInputEvent(text="[fault:time_limit]"))
        async with asyncio.timeout(20):
            async for event in agent.receive():
                if isinstance(event, BidiConnectionStartEvent):
                    break
        assert tools.running
        assert tools.starts == 2
    assert not tools.running
