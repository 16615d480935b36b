"""Shapes shared with the wider ecosystem (strands-compatible ``TypedDict`` s).

These are plain dictionaries so that tool specs, tool uses, tool results and
conversation history can be passed to and from other libraries unchanged.
"""

from __future__ import annotations

from typing import Any, Literal, TypeAlias, TypedDict

__all__ = [
    "ContentBlock",
    "Message",
    "Messages",
    "ToolResult",
    "ToolResultContent",
    "ToolSpec",
    "ToolUse",
]


class _InputSchema(TypedDict):
    json: dict[str, Any]


class ToolSpec(TypedDict):
    """A tool the model may call: ``{"name", "description", "inputSchema": {"json": ...}}``."""

    name: str
    description: str
    inputSchema: _InputSchema


class ToolUse(TypedDict):
    """A tool call requested by the model."""

    toolUseId: str
    name: str
    input: Any


class ToolResultContent(TypedDict, total=False):
    """One content item of a tool result: ``{"text": ...}`` or ``{"json": ...}``."""

    text: str
    json: Any


class ToolResult(TypedDict):
    """The outcome of a tool call, sent back to the model."""

    toolUseId: str
    status: Literal["success", "error"]
    content: list[ToolResultContent]


class ContentBlock(TypedDict, total=False):
    """One block of a message: ``text``, ``toolUse`` or ``toolResult``."""

    text: str
    toolUse: ToolUse
    toolResult: ToolResult
    #: Set on assistant text that was cut short by barge-in (bidi extension).
    interrupted: bool


class Message(TypedDict):
    """One conversation turn."""

    role: Literal["user", "assistant"]
    content: list[ContentBlock]


Messages: TypeAlias = list[Message]
