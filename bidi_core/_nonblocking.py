"""Non-blocking tools: progress reports and the words results travel in.

A non-blocking tool (``@tool(blocking=False)``) lets the model keep talking while it
runs. Models with their own mechanism (Gemini Live: ``behavior: NON_BLOCKING`` and
``FunctionResponse.scheduling``) get the result as a tool response; for the others
the agent answers the call at once with :func:`running_text` and delivers the result
later as user text built by :func:`late_result_text`. The scripted assistant of the
testing kit reads those texts back with :func:`parse_late_result`.
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Callable
from typing import Any, Final

import attrs

from .types import Scheduling, ToolResult

__all__ = [
    "SCHEDULINGS",
    "LateResult",
    "ToolProgress",
    "late_result_text",
    "parse_late_result",
    "running_text",
]

#: The scheduling values a non-blocking tool may use; the first is the default.
SCHEDULINGS: Final[tuple[Scheduling, ...]] = ("when_idle", "interrupt", "silent")

_NO_REPLY = " No reply is needed."
_LATE_RE = re.compile(
    r"^\(The earlier call of (?P<name>[A-Za-z_][\w-]*) \[(?P<id>[^\]]+)\] "
    r"(?:finished with (?P<status>success|error)|is still running): (?P<text>.*)\)$",
    re.DOTALL,
)


class ToolProgress:
    """Reports progress from inside a running tool; the agent injects it.

    Give a tool a parameter annotated ``ToolProgress`` and call it with a short text
    (or any JSON value) whenever there is news; it returns at once and works from
    async tools and from sync tools running in a worker thread alike::

        @tool(blocking=False)
        async def book_table(restaurant: str, progress: ToolProgress) -> str:
            progress("Calling the restaurant.")
            ...
            return "Booked for 8 pm."

    The parameter is not part of the tool's schema. Updates from a non-blocking tool
    reach the model (Gemini: a ``FunctionResponse`` with ``will_continue``; others: a
    user text); updates from a blocking tool are only shown to the application. When
    the tool is called directly (not by an agent) the reporter does nothing.

    Args:
        report: Called on the event loop with each update and its scheduling.
        loop: The loop *report* runs on (the running loop by default).
    """

    def __init__(
        self,
        report: Callable[[Any, Scheduling | None], None] | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self._report = report
        self._loop = loop
        self._thread = threading.get_ident()

    def __call__(self, update: Any, *, scheduling: Scheduling | None = None) -> None:
        """Report *update*; *scheduling* overrides the tool's for this update."""
        if scheduling is not None and scheduling not in SCHEDULINGS:
            msg = f"scheduling must be one of {', '.join(SCHEDULINGS)}, got {scheduling!r}."
            raise ValueError(msg)
        report = self._report
        if report is None:
            return
        if self._loop is None or threading.get_ident() == self._thread:
            report(update, scheduling)
        elif not self._loop.is_closed():
            self._loop.call_soon_threadsafe(report, update, scheduling)

    def __repr__(self) -> str:
        return "<ToolProgress>"


def running_text(name: str) -> str:
    """The immediate result of a non-blocking call on a model without native support."""
    return (
        f"{name} is running in the background. Carry on with the conversation; its result "
        f"will arrive later in a message starting with '(The earlier call of {name}'."
    )


def late_result_text(name: str, result: ToolResult, *, scheduling: Scheduling | None) -> str:
    """Render a result (or a progress update) delivered after its call was answered.

    Used for non-blocking tools on models without native support, and for any result
    whose call was made on an earlier connection.
    """
    from .tools import tool_result_text  # noqa: PLC0415 - tools imports this module

    state = "is still running" if result.get("progress") else f"finished with {result['status']}"
    text = f"(The earlier call of {name} [{result['toolUseId']}] {state}: "
    text += tool_result_text(result)
    if scheduling == "silent":
        text += _NO_REPLY
    return text + ")"


@attrs.frozen(kw_only=True)
class LateResult:
    """A result read back from :func:`late_result_text`'s words."""

    name: str
    tool_use_id: str
    status: str
    text: str
    progress: bool
    silent: bool


def parse_late_result(text: str) -> LateResult | None:
    """Read a text made by :func:`late_result_text`; None for any other text."""
    match = _LATE_RE.match(text.strip())
    if match is None:
        return None
    body = match.group("text")
    silent = body.endswith(_NO_REPLY)
    if silent:
        body = body[: -len(_NO_REPLY)]
    return LateResult(
        name=match.group("name"),
        tool_use_id=match.group("id"),
        status=match.group("status") or "success",
        text=body,
        progress=match.group("status") is None,
        silent=silent,
    )
