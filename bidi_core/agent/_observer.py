"""The agent's observer seam: what recording and telemetry see of a conversation.

``BidiAgent`` calls every observer's hooks at a few points (start and stop of the
conversation, each input sent, each event it yields or handles, tool calls,
barge-in). Hooks are synchronous and must be quick; an exception in one is logged
once and never reaches the conversation. With no observers the agent pays one
truth test per event.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import attrs

from ..events import BidiEvent, BidiInputEvent, ToolResultEvent
from ..types import ToolResult, ToolUse

__all__ = ["AgentObserver", "Observers", "SessionInfo"]

logger = logging.getLogger("bidi_core.agent")


@attrs.frozen(kw_only=True)
class SessionInfo:
    """What an observer is told when a conversation starts.

    Attributes:
        session_id: A fresh id for this conversation (start() to stop()).
        provider: The model's registry name, e.g. ``"openai_realtime"``.
        model_id: The provider's model id, when the model has one.
        output_sample_rate: The PCM rate of the model's audio.
        started_at: Wall-clock time of the start (``time.time()``).
        t0: ``time.monotonic()`` at the start; hooks get monotonic times.
        stats: The agent's live :class:`~bidi_core.AgentStats`.
        report: Puts an event (e.g. a ``BidiErrorEvent`` saying a recording failed)
            into the agent's event stream.
    """

    session_id: str
    provider: str
    model_id: str | None
    output_sample_rate: int
    started_at: float
    t0: float
    stats: Any  # AgentStats (not imported: _agent imports this module)
    report: Callable[[Any], None]


class AgentObserver:
    """Base class of observers: every hook does nothing; override what you need.

    Times are ``time.monotonic()`` values (compare with ``SessionInfo.t0``).
    """

    def on_start(self, session: SessionInfo) -> None:
        """The conversation started (the first connection is open)."""

    def on_input(self, event: BidiInputEvent | ToolResultEvent, t: float) -> None:
        """Input was accepted for the model (user audio, text, images, tool results)."""

    def on_event(self, event: BidiEvent, t: float) -> None:
        """An event the agent yields: the model's (as it arrives) and the agent's own."""

    def on_tool_start(self, tool_use: ToolUse, t: float) -> None:
        """A tool call started running."""

    def on_tool_end(self, tool_use: ToolUse, result: ToolResult, t: float) -> None:
        """A tool call produced its (final) result."""

    def on_interruption(self, response_id: str | None, silent_after_s: float, t: float) -> None:
        """Barge-in was handled: queued audio dropped and every output cleared."""

    def on_stop(self, t: float) -> None:
        """The conversation ended; release files and end spans."""


class Observers:
    """Calls each hook on every observer; a failing observer is logged, never raised."""

    __slots__ = ("_failed", "items")

    def __init__(self, items: Sequence[AgentObserver] = ()) -> None:
        self.items = list(items)
        self._failed: set[tuple[int, str]] = set()

    def __bool__(self) -> bool:
        return bool(self.items)

    def call(self, hook: str, *args: Any) -> None:
        """Call ``observer.<hook>(*args)`` on each observer."""
        for observer in self.items:
            try:
                getattr(observer, hook)(*args)
            except Exception:
                key = (id(observer), hook)
                if key not in self._failed:
                    self._failed.add(key)
                    logger.exception("Observer %r failed in %s (logged once)", observer, hook)

    def event(self, event: BidiEvent) -> None:
        """Shorthand for ``call("on_event", event, now)``."""
        self.call("on_event", event, time.monotonic())
