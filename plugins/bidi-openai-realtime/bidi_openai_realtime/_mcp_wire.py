"""OpenAI's server-side MCP tools (GA ``{"type": "mcp", ...}`` session tools) as bidi events.

A session tool ``{"type": "mcp", "server_label", "server_url", "allowed_tools",
"require_approval": "never", "headers"}`` (through ``provider_config.inference.tools``)
makes OpenAI call an MCP server itself. The GA events name only an item id
(``mcp_list_tools.completed{item_id}``, ``response.mcp_call.completed{item_id}``); the
details are in the items (``mcp_list_tools``: ``server_label``, ``tools``; ``mcp_call``:
``server_label``, ``name``, ``arguments``, ``output``, ``error``) that
``conversation.item.*`` / ``response.output_item.*`` carry. :class:`ServerMCP` keeps
those items and yields one :class:`~bidi_core.BidiServerToolEvent` per thing a user
can observe: tools listed or not, a call started, its result or its failure.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bidi_core import BidiServerToolEvent

__all__ = ["MCP_EVENTS", "ServerMCP"]

#: The GA server events about server-side MCP tools.
MCP_EVENTS = (
    "mcp_list_tools.in_progress",
    "mcp_list_tools.completed",
    "mcp_list_tools.failed",
    "response.mcp_call_arguments.delta",
    "response.mcp_call_arguments.done",
    "response.mcp_call.in_progress",
    "response.mcp_call.completed",
    "response.mcp_call.failed",
)
#: Events that carry an item (which may be an MCP item).
ITEM_EVENTS = (
    "conversation.item.added",
    "conversation.item.done",
    "response.output_item.added",
    "response.output_item.done",
)
_KINDS = ("mcp_call", "mcp_list_tools")


def _error_text(error: Any) -> str | None:
    if isinstance(error, Mapping):
        message = error.get("message") or error.get("type")
        return str(message) if message else "unknown error"
    return str(error) if error else None


class ServerMCP:
    """Turns the MCP events and items of one connection into ``BidiServerToolEvent``."""

    def __init__(self) -> None:
        self._items: dict[str, dict[str, Any]] = {}
        self._said: set[tuple[str, str]] = set()

    def feed(self, event: Mapping[str, Any]) -> list[BidiServerToolEvent]:
        """Return the observable MCP events for one server event (often none)."""
        kind = str(event.get("type", ""))
        if kind in ITEM_EVENTS:
            return self._item(event.get("item"), final=kind.endswith(".done"))
        if kind == "response.done":  # its output holds every item, settled
            response = event.get("response")
            output = response.get("output") if isinstance(response, Mapping) else None
            return [e for item in output or [] for e in self._item(item, final=True)]
        item_id = str(event.get("item_id", ""))
        item = self._items.setdefault(item_id, {}) if item_id else {}
        if kind == "response.mcp_call_arguments.done":
            item["arguments"] = event.get("arguments")
        elif kind == "response.mcp_call.in_progress" and item.get("name"):
            return self._once(item_id, "call", item)  # else when its item arrives
        elif kind == "response.mcp_call.completed":
            item["completed"] = True
            return self._settled(item_id)
        elif kind == "response.mcp_call.failed":
            item["failed"] = True  # the item's .done carries the error
            return self._settled(item_id)
        elif kind == "mcp_list_tools.completed":
            item["type"] = "mcp_list_tools"
            return self._settled(item_id)
        elif kind == "mcp_list_tools.failed":
            item.setdefault("error", {"message": "Listing the MCP server's tools failed."})
            return self._once(item_id, "list_failed", item)
        return []

    def _item(self, item: Any, *, final: bool) -> list[BidiServerToolEvent]:
        if not (isinstance(item, Mapping) and item.get("type") in _KINDS and item.get("id")):
            return []
        known = self._items.setdefault(str(item["id"]), {})
        known.update({k: v for k, v in item.items() if v not in (None, "")})
        return self._settled(str(item["id"]), final=final) if final else []

    def _settled(self, item_id: str, *, final: bool = False) -> list[BidiServerToolEvent]:
        item = self._items.get(item_id, {})
        if final and item.get("failed") and not item.get("error"):
            item["error"] = {"message": "The MCP tool call failed."}
        if item.get("type") == "mcp_list_tools":
            if item.get("error"):
                return self._once(item_id, "list_failed", item)
            if item.get("tools") or final:  # an empty list may still be filled in
                return self._once(item_id, "listed", item)
            return []
        out = self._once(item_id, "call", item) if item.get("name") else []
        if item.get("error"):
            out += self._once(item_id, "failed", item, key="end")
        elif "output" in item:
            out += self._once(item_id, "result", item, key="end")
        return out

    def _once(
        self, item_id: str, phase: str, item: Mapping[str, Any], *, key: str | None = None
    ) -> list[BidiServerToolEvent]:
        mark = (item_id, key or phase)
        if mark in self._said or not item_id:
            return []
        self._said.add(mark)
        tools = item.get("tools") or []
        return [
            BidiServerToolEvent(
                phase=phase,  # type: ignore[arg-type]
                server=str(item.get("server_label", "")),
                item_id=item_id,
                name=str(item["name"]) if item.get("name") else None,
                arguments=str(item["arguments"]) if item.get("arguments") is not None else None,
                output=str(item["output"]) if item.get("output") is not None else None,
                error=_error_text(item.get("error")),
                tools=tuple(str(t.get("name", "")) for t in tools if isinstance(t, Mapping)),
            )
        ]
