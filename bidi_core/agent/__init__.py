"""The agent loop: :class:`BidiAgent` runs a model with tools, history, restarts and barge-in."""

from __future__ import annotations

from ._agent import AgentEvent, AgentState, AgentStats, BidiAgent
from ._history import History
from ._queue import OutputQueue

__all__ = ["AgentEvent", "AgentState", "AgentStats", "BidiAgent", "History", "OutputQueue"]
