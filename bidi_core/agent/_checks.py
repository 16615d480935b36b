"""What ``BidiAgent`` checks before it runs, and the pacing of its restarts."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Iterable, Mapping
from typing import Any

from .._config import check_number
from .._errors import ConfigError
from .._json import MAX_JSON_DEPTH, json_problem, short_repr
from ..events import ToolResultEvent
from ..tools import error_result
from ..types import ToolResult

__all__ = ["RestartPacer", "check_agent_args", "json_safe", "result_event"]

logger = logging.getLogger("bidi_core.agent")

#: A connection that ends (at a time limit) sooner than this after it started counts
#: as a quick restart.
QUICK_RESTART_S = 1.0
#: Quick restarts in a row that go ahead at once; later ones wait (see RestartPacer).
QUICK_RESTARTS_ALLOWED = 3
#: The first wait, doubled for every further quick restart, up to MAX_RESTART_DELAY_S.
FIRST_RESTART_DELAY_S = 0.25
MAX_RESTART_DELAY_S = 5.0


def check_agent_args(
    *,
    tools: Any,
    system_prompt: Any,
    messages: Any,
    tool_timeout: Any,
    max_queued_audio_ms: Any,
    restart_attempts: Any,
    restart_timeout: Any,
    cancel_tools_on_interruption: Any,
) -> tuple[float | None, float, int, float]:
    """Refuse wrong BidiAgent arguments at construction, naming the argument.

    Returns:
        ``tool_timeout``, ``max_queued_audio_ms``, ``restart_attempts`` and
        ``restart_timeout``, checked.

    Raises:
        ConfigError: An argument has the wrong type or is out of range (NaN included).
    """
    checked = (
        check_number(
            tool_timeout, where="BidiAgent tool_timeout", above=0, optional=True, unit="seconds"
        ),
        check_number(
            max_queued_audio_ms, where="BidiAgent max_queued_audio_ms", minimum=0, unit="ms"
        ),
        check_number(restart_attempts, where="BidiAgent restart_attempts", minimum=1, integer=True),
        check_number(restart_timeout, where="BidiAgent restart_timeout", above=0, unit="seconds"),
    )
    if isinstance(tools, str | bytes | Mapping) or not isinstance(tools, Iterable):
        msg = f"BidiAgent tools must be a list of functions (got {short_repr(tools)})."
        raise ConfigError(msg)
    if system_prompt is not None and not isinstance(system_prompt, str):
        msg = f"BidiAgent system_prompt must be a str or None (got {short_repr(system_prompt)})."
        raise ConfigError(msg)
    if not isinstance(cancel_tools_on_interruption, bool):
        msg = (
            "BidiAgent cancel_tools_on_interruption must be a bool "
            f"(got {short_repr(cancel_tools_on_interruption)})."
        )
        raise ConfigError(msg)
    _check_messages(messages)
    return checked


def _check_messages(messages: Any) -> None:
    if messages is None:
        return
    if not isinstance(messages, list):
        msg = f"BidiAgent messages must be a list of messages or None (got {short_repr(messages)})."
        raise ConfigError(msg)
    for i, message in enumerate(messages):
        if (
            not isinstance(message, dict)
            or message.get("role") not in ("user", "assistant")
            or not isinstance(message.get("content"), list)
            or not all(isinstance(block, dict) for block in message["content"])
        ):
            msg = (
                f"BidiAgent messages[{i}] must be {{'role': 'user' or 'assistant', "
                f"'content': [{{'text': ...}}, ...]}} (got {short_repr(message)})."
            )
            raise ConfigError(msg)
    problem = json_problem(messages)
    if problem is not None:
        msg = f"BidiAgent messages must be JSON data, but they have {problem}."
        raise ConfigError(msg)


def result_event(tool_use_id: str, name: str, result: ToolResult) -> ToolResultEvent:
    """The event for a tool's result, or for an error result if that one cannot be sent."""
    try:
        return ToolResultEvent(tool_result=result)
    except (TypeError, ValueError) as exc:  # the event's checks refused it
        logger.warning("Tool %r gave a result that cannot be sent: %s", name, exc)
        text = f"Tool {name!r} gave a result that cannot be sent: {exc}"
        return ToolResultEvent(tool_result=error_result(tool_use_id, text))


def json_safe(value: Any, depth: int = 0) -> Any:
    """Keep what JSON can carry; describe the rest (restart events stay serializable)."""
    if depth > MAX_JSON_DEPTH // 2:
        return short_repr(value)
    if isinstance(value, dict):
        return {str(k): json_safe(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v, depth + 1) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return repr(value)


class RestartPacer:
    """Says how long to wait before a restart, so a model that keeps ending at once
    cannot make the agent reconnect in a tight loop.

    A restart after a connection that lasted at least :data:`QUICK_RESTART_S` goes
    ahead at once, and so do the first :data:`QUICK_RESTARTS_ALLOWED` quick ones in a
    row (a time limit met right after a restart still restarts promptly). Each further
    quick restart waits :data:`FIRST_RESTART_DELAY_S`, doubled every time, up to
    :data:`MAX_RESTART_DELAY_S`; a connection that lasts resets the count. (A Gemini
    session with a negative time limit reconnected 1,038 times in 5 s without it.)
    """

    def __init__(self) -> None:
        self._connected_at = time.monotonic()
        self._quick = 0

    def connected(self) -> None:
        """A connection is open (start or restart)."""
        self._connected_at = time.monotonic()

    async def wait(self) -> None:
        """Wait before a restart as :meth:`delay` says, logging why."""
        delay = self.delay()
        if delay:
            logger.warning(
                "The connection reached its time limit again right after a restart; "
                "waiting %.2f s before restarting it (check the model's connection limit).",
                delay,
            )
            await asyncio.sleep(delay)

    def delay(self) -> float:
        """Seconds to wait before the restart that is about to happen."""
        if time.monotonic() - self._connected_at >= QUICK_RESTART_S:
            self._quick = 0
            return 0.0
        self._quick += 1
        over = self._quick - QUICK_RESTARTS_ALLOWED
        if over <= 0:
            return 0.0
        return float(min(FIRST_RESTART_DELAY_S * 2 ** (over - 1), MAX_RESTART_DELAY_S))
