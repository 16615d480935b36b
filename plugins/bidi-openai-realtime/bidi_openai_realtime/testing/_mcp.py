"""The fake's server-side MCP tools: ``{"type": "mcp"}`` session tools as the GA API runs them.

``serve(mcp_servers={"label": {"tool_name": "output", ...}})`` gives the fake MCP
servers it can "reach" (an output starting with ``"!"`` makes that tool fail with the
rest as the error). A session tool ``{"type": "mcp", "server_label": label,
"server_url": ..., "require_approval": "never"}``:

* is listed when the session is updated: ``conversation.item.added`` (an
  ``mcp_list_tools`` item), ``mcp_list_tools.in_progress``, then
  ``mcp_list_tools.completed`` and ``conversation.item.done`` with the tools (only
  ``allowed_tools`` if given), or ``mcp_list_tools.failed`` for a label the fake does not
  know;
* lets the scripted assistant call its tools like functions; such a call is run by the
  "server": ``response.output_item.added`` (an ``mcp_call`` item),
  ``response.mcp_call_arguments.delta/.done``, ``response.mcp_call.in_progress``, then
  ``response.mcp_call.completed`` or ``.failed`` and ``response.output_item.done`` with
  the ``output`` or ``error``; the assistant gets the result at once and answers with it
  (no ``function_call_output`` from the client).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from bidi_core.types import ToolResult, ToolSpec

__all__ = ["FakeMCP"]

Emit = Callable[[dict[str, Any]], Awaitable[None]]


class FakeMCP:
    """The MCP servers one fake connection can reach, and the tools its session lists."""

    def __init__(self, servers: Mapping[str, Mapping[str, str]]) -> None:
        self._servers = {label: dict(tools) for label, tools in servers.items()}
        #: Tool name -> server label, for the session's listed MCP tools.
        self.tools: dict[str, str] = {}

    def specs(self) -> list[ToolSpec]:
        """The listed MCP tools as specs for the scripted assistant."""
        return [
            {"name": name, "description": f"{name} on {label}", "inputSchema": {"json": {}}}
            for name, label in self.tools.items()
        ]

    async def list_tools(
        self, session_tools: list[Any], emit: Emit, new_id: Callable[[str], str]
    ) -> None:
        """List the tools of every ``mcp`` session tool, with the GA events."""
        self.tools = {}
        for tool in session_tools:
            if not isinstance(tool, Mapping) or tool.get("type") != "mcp":
                continue
            label = str(tool.get("server_label", ""))
            item_id = new_id("mcpl")
            item: dict[str, Any] = {
                "id": item_id,
                "type": "mcp_list_tools",
                "server_label": label,
                "tools": [],
            }
            await emit({"type": "conversation.item.added", "previous_item_id": None, "item": item})
            await emit({"type": "mcp_list_tools.in_progress", "item_id": item_id})
            known = self._servers.get(label)
            if known is None:
                await emit({"type": "mcp_list_tools.failed", "item_id": item_id})
                continue
            allowed = tool.get("allowed_tools")
            names = [n for n in known if not isinstance(allowed, list) or n in allowed]
            item["tools"] = [
                {"name": n, "input_schema": {"type": "object"}, "description": f"{n} tool"}
                for n in names
            ]
            self.tools.update(dict.fromkeys(names, label))
            await emit({"type": "mcp_list_tools.completed", "item_id": item_id})
            await emit({"type": "conversation.item.done", "previous_item_id": None, "item": item})

    async def call(
        self,
        *,
        response_id: str,
        output_index: int,
        name: str,
        arguments: dict[str, Any],
        emit: Emit,
        new_id: Callable[[str], str],
    ) -> tuple[dict[str, Any], ToolResult]:
        """Run one MCP call "on the server"; return the ``mcp_call`` item and the result."""
        label = self.tools[name]
        item_id = new_id("mcp")
        args = json.dumps(arguments)
        item: dict[str, Any] = {
            "id": item_id,
            "type": "mcp_call",
            "server_label": label,
            "name": name,
            "arguments": "",
        }
        where = {"response_id": response_id, "output_index": output_index}
        await emit({"type": "response.output_item.added", **where, "item": dict(item)})
        base = {"item_id": item_id, "output_index": output_index}
        await emit({"type": "response.mcp_call_arguments.delta", **base, **where, "delta": args})
        await emit({"type": "response.mcp_call_arguments.done", **base, **where, "arguments": args})
        item["arguments"] = args
        await emit({"type": "response.mcp_call.in_progress", **base})
        output = self._servers[label][name]
        result: ToolResult
        if output.startswith("!"):
            error = {"type": "tool_execution_error", "message": output[1:]}
            item["error"] = error
            await emit({"type": "response.mcp_call.failed", **base})
            result = {"toolUseId": item_id, "status": "error", "content": [{"text": output[1:]}]}
        else:
            item["output"] = output
            await emit({"type": "response.mcp_call.completed", **base})
            result = {"toolUseId": item_id, "status": "success", "content": [{"text": output}]}
        await emit({"type": "response.output_item.done", **where, "item": item})
        return item, result
