"""Non-blocking tools in the agent: native where the model has it, emulated elsewhere.

For a non-blocking tool (``@tool(blocking=False)``):

* **Native** (``capabilities.non_blocking_tools``, e.g. Gemini Live): the model was
  told in the tool spec; results and progress updates go back as tool results and
  the model schedules them itself.
* **Emulated** (OpenAI, Nova Sonic, ...): the call is answered at once with a
  "running in the background" result, so the model keeps talking; the final result
  (and every progress update) follows later as a user text
  (:func:`~bidi_core._nonblocking.late_result_text`), sent by its scheduling:
  ``interrupt`` at once, ``when_idle`` and ``silent`` once no response is active
  (``silent`` asks for no reply). A result that arrives after a connection restart
  is delivered to the new connection the same way.

Progress updates of blocking tools are only shown to the application (as
``ToolResultEvent`` with ``"progress": True``): the model is waiting for the one
result.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from .._nonblocking import ToolProgress, late_result_text, running_text
from ..events import BidiTextInputEvent, ToolResultEvent
from ..tools import success_result
from ..types import Scheduling, ToolResult, ToolResultContent, ToolUse

if TYPE_CHECKING:
    from ._agent import BidiAgent, _ToolCall

__all__ = ["Background", "late_text"]

logger = logging.getLogger("bidi_core.agent")

#: How often a delivery waiting for the model to be idle looks again.
_IDLE_POLL_S = 0.05


def late_text(tool_use: ToolUse, result: ToolResult, scheduling: Scheduling | None = None) -> str:
    """The words a result travels in when its call cannot take it as a tool result."""
    return late_result_text(str(tool_use.get("name", "")), result, scheduling=scheduling)


class Background:
    """The agent's handling of non-blocking calls and progress updates."""

    def __init__(self, agent: BidiAgent) -> None:
        self._agent = agent
        self._locks: dict[str, asyncio.Lock] = {}

    def _tool(self, tool_use: ToolUse) -> Any:
        return self._agent._tools.get(str(tool_use.get("name", "")))

    def blocking(self, tool_use: ToolUse) -> bool:
        """Whether the call's tool is blocking (unknown tools count as blocking)."""
        tool = self._tool(tool_use)
        return tool is None or bool(getattr(tool, "blocking", True))

    def _scheduling(self, tool_use: ToolUse, override: Scheduling | None) -> Scheduling:
        tool = self._tool(tool_use)
        return override or getattr(tool, "scheduling", None) or "when_idle"

    def _emulated(self, tool_use: ToolUse) -> bool:
        return not self.blocking(tool_use) and not self._agent.capabilities.non_blocking_tools

    def _lock(self, tool_use_id: str) -> asyncio.Lock:
        return self._locks.setdefault(tool_use_id, asyncio.Lock())

    # --------------------------------------------------------------- calls

    def begin(self, call: _ToolCall) -> None:
        """Answer an emulated non-blocking call at once so the model keeps talking.

        Called before the tool runs: the answer takes the call's lock first, so
        progress updates and the result always follow it.
        """
        tool_use = call.tool_use
        if not self._emulated(tool_use):
            return
        agent = self._agent
        call.answered = True
        result = success_result(tool_use["toolUseId"], running_text(str(tool_use["name"])))

        async def answer() -> None:
            async with self._lock(tool_use["toolUseId"]):
                agent._emit(ToolResultEvent(tool_result=result))
                try:
                    await agent._send_event(ToolResultEvent(tool_result=result))
                except Exception as exc:
                    logger.warning("Telling the model %s started failed: %r", tool_use["name"], exc)

        agent._spawn(answer(), name="bidi-agent-tool-started")

    async def deliver(self, call: _ToolCall, result: ToolResult) -> None:
        """Send a call's final result: as a tool result, or as text when it was answered."""
        tool_use_id = call.tool_use["toolUseId"]
        try:
            async with self._lock(tool_use_id):
                await self._send(call, result)
        finally:
            self._locks.pop(tool_use_id, None)

    async def _send(self, call: _ToolCall, result: ToolResult) -> None:
        agent = self._agent
        if not call.answered:
            await agent._send_event(ToolResultEvent(tool_result=result))
            return
        scheduling = self._scheduling(call.tool_use, result.get("scheduling"))
        if scheduling != "interrupt":
            # The agent signals no "response over" event; a short poll costs nothing here.
            while agent._current_response is not None or agent._restarting:  # noqa: ASYNC110
                await asyncio.sleep(_IDLE_POLL_S)
        text = late_text(call.tool_use, result, scheduling)
        agent._mark_turn_end()
        await agent._send_event(BidiTextInputEvent(text=text))

    # ------------------------------------------------------------ progress

    def progress(self, call: _ToolCall) -> ToolProgress:
        """A reporter for *call*'s tool: each update is shown and, if non-blocking, sent."""

        def report(update: Any, scheduling: Scheduling | None) -> None:
            self._progress(call, update, scheduling)

        return ToolProgress(report, asyncio.get_running_loop())

    def _progress(self, call: _ToolCall, update: Any, scheduling: Scheduling | None) -> None:
        agent = self._agent
        tool_use_id = call.tool_use["toolUseId"]
        if agent._calls.get(tool_use_id) is not call:
            return  # the call is over
        item: ToolResultContent = {"text": update} if isinstance(update, str) else {"json": update}
        result: ToolResult = {
            "toolUseId": tool_use_id,
            "status": "success",
            "content": [item],
            "progress": True,
        }
        if scheduling is not None:
            result["scheduling"] = scheduling
        agent._emit(ToolResultEvent(tool_result=result))
        if self.blocking(call.tool_use):
            return

        async def send() -> None:
            try:
                async with self._lock(tool_use_id):
                    if call.answered:
                        await self._send(call, result)
                    else:
                        await agent._send_event(ToolResultEvent(tool_result=result))
            except Exception as exc:
                logger.warning("Sending a progress update of %s failed: %r", tool_use_id, exc)

        agent._spawn(send(), name="bidi-agent-tool-progress")
