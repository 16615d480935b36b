"""The agent loop: :class:`BidiAgent` runs a model with tools, history, restarts and barge-in."""

from __future__ import annotations

from ._agent import AgentEvent, AgentState, AgentStats, BidiAgent
from ._history import History
from ._observer import AgentObserver, SessionInfo
from ._queue import OutputQueue
from ._toolset import CallableTool, ToolProvider

__all__ = [
    "AgentEvent",
    "AgentObserver",
    "AgentState",
    "AgentStats",
    "BidiAgent",
    "CallableTool",
    "History",
    "OutputQueue",
    "SessionInfo",
    "ToolProvider",
]
