"""A small MCP server for tests and demos, written with the official ``mcp`` package.

Run it as ``python -m bidi_core.testing.mcp_server`` (stdio), or serve
``build().streamable_http_app()`` for streamable HTTP. Needs ``bidi-core[mcp]``.
``BIDI_TEST_MCP_MARKS`` names a directory where tools leave marks: a cancelled
``slow`` call writes ``cancelled-<seconds>``, each start writes ``start-<pid>``.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError


def _mark(name: str) -> None:
    marks = os.environ.get("BIDI_TEST_MCP_MARKS")
    if marks:
        Path(marks, name).write_text("x")


def build() -> MCPServer:
    """The test server and its tools."""
    server = MCPServer("bidi-test", log_level="WARNING")

    @server.tool()
    def add(a: int, b: int) -> str:
        """Add two integers."""
        return str(a + b)

    @server.tool(name="weather.lookup")
    def weather_lookup(city: str) -> str:
        """Look up the weather in a city."""
        return f"sunny in {city}"

    @server.tool()
    async def slow(seconds: float) -> str:
        """Wait, then answer."""
        try:
            await asyncio.sleep(seconds)
        except asyncio.CancelledError:
            _mark(f"cancelled-{seconds:g}")
            raise
        return f"waited {seconds:g} s"

    @server.tool()
    def fail(reason: str) -> str:
        """Always fails."""
        msg = f"cannot do it: {reason}"
        raise ToolError(msg)

    @server.tool()
    async def crash() -> str:
        """Kills the server in the middle of the call."""
        await asyncio.sleep(0.05)
        os._exit(3)

    @server.tool()
    async def report(steps: int, ctx: Context) -> str:
        """Reports progress, then answers."""
        for step in range(1, steps + 1):
            await ctx.report_progress(step, steps, f"step {step} of {steps}")
            await asyncio.sleep(0.01)
        return f"done in {steps} steps"

    @server.tool()
    async def grow(ctx: Context) -> str:
        """Adds a tool named 'extra' and tells the client the list changed."""

        def extra() -> str:
            """The added tool."""
            return "extra here"

        server.add_tool(extra, name="extra")
        await ctx.session.send_tool_list_changed()
        return "grown"

    return server


if __name__ == "__main__":
    _mark(f"start-{os.getpid()}")
    build().run("stdio")
    sys.exit(0)
