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
    "Scheduling",
    "ToolResult",
    "ToolResultContent",
    "ToolSpec",
    "ToolUse",
]


#: When the result of a non-blocking tool reaches the conversation: ``"interrupt"`` (at
#: once, cutting off what the model is saying), ``"when_idle"`` (once the model has
#: finished speaking) or ``"silent"`` (added to the context without prompting an answer).
Scheduling: TypeAlias = Literal["interrupt", "when_idle", "silent"]


class _InputSchema(TypedDict):
    json: dict[str, Any]


class _ToolSpecExtensions(TypedDict, total=False):
    # Optional keys live in a total=False base: with postponed annotations a
    # NotRequired[...] string would count as required in __required_keys__.
    blocking: bool
    scheduling: Scheduling


class ToolSpec(_ToolSpecExtensions):
    """A tool the model may call: ``{"name", "description", "inputSchema": {"json": ...}}``.

    Two optional keys are bidi extensions (absent for ordinary, blocking tools):
    ``blocking: False`` declares a non-blocking tool (the model keeps talking while it
    runs) and ``scheduling`` says when its result reaches the conversation.
    """

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


class _ToolResultExtensions(TypedDict, total=False):
    progress: bool
    scheduling: Scheduling


class ToolResult(_ToolResultExtensions):
    """The outcome of a tool call, sent back to the model.

    Two optional keys are bidi extensions for non-blocking tools: ``progress: True``
    marks an update from a tool that is still running (more results follow), and
    ``scheduling`` overrides the tool's scheduling for this one result.
    """

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
