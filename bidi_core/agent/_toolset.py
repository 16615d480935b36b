"""The agent's tools: functions given up front plus tool providers (e.g. ``MCPTools``).

A *tool provider* is an object in ``BidiAgent(tools=[...])`` that brings its own
tools and lifecycle: the agent starts it with the conversation, asks it to
``ensure_running()`` before every connection restart, closes it at the end, and
rebuilds its tool table when the provider says its tools changed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from typing import Any, Protocol, runtime_checkable

from .._errors import ToolError
from .._nonblocking import ToolProgress
from ..tools import to_agent_tool
from ..types import Scheduling, ToolResult, ToolSpec, ToolUse

__all__ = ["CallableTool", "ToolProvider", "Toolset"]

logger = logging.getLogger("bidi_core.agent")


@runtime_checkable
class CallableTool(Protocol):
    """What the agent needs of a tool (``AgentTool`` and ``MCPTool`` are such)."""

    name: str
    tool_spec: ToolSpec
    blocking: bool
    scheduling: Scheduling | None

    async def invoke(
        self,
        tool_use: ToolUse,
        *,
        default_timeout: float | None = None,
        progress: ToolProgress | None = None,
    ) -> ToolResult:
        """Run the call; failures are error results."""
        ...


@runtime_checkable
class ToolProvider(Protocol):
    """A source of tools with a lifecycle (see the module docs)."""

    @property
    def tools(self) -> list[Any]:
        """The provider's current tools (``CallableTool`` objects)."""
        ...

    async def start(self) -> None:
        """Make the tools available (spawn, connect, list)."""
        ...

    async def close(self) -> None:
        """Release everything; idempotent."""
        ...

    async def ensure_running(self) -> None:
        """Start again if the tools' backend died."""
        ...

    def add_listener(self, callback: Callable[[], None]) -> None:
        """Call *callback* when :attr:`tools` changes."""
        ...

    def remove_listener(self, callback: Callable[[], None]) -> None:
        """Stop calling *callback*."""
        ...


class Toolset:
    """The name -> tool table of an agent, from functions and providers.

    Args:
        items: Functions, ``@tool`` objects, ``CallableTool`` objects and providers.
        on_change: Called after a provider's tools changed and the table was rebuilt.

    Raises:
        ToolError: Two tools share a name, or an item is not a tool.
    """

    def __init__(self, items: Iterable[Any], *, on_change: Callable[[], None]) -> None:
        self._static: list[Any] = []
        self.providers: list[ToolProvider] = []
        for item in items:
            if isinstance(item, ToolProvider):
                self.providers.append(item)
            elif isinstance(item, CallableTool):
                self._static.append(item)
            else:
                self._static.append(to_agent_tool(item))
        self._on_change = on_change
        self.tools: dict[str, Any] = {}
        self._rebuild()

    def _rebuild(self) -> None:
        table: dict[str, Any] = {}
        for tool in [*self._static, *(t for p in self.providers for t in p.tools)]:
            if tool.name in table:
                msg = f"Two tools are named {tool.name!r}; tool names must be unique."
                raise ToolError(msg)
            table[tool.name] = tool
        self.tools = table

    @property
    def specs(self) -> list[ToolSpec]:
        """The tool specs, as sent to the model."""
        return [t.tool_spec for t in self.tools.values()]

    def _changed(self) -> None:
        try:
            self._rebuild()
        except ToolError as exc:
            logger.warning("The new tool list was not taken: %s", exc)
            return
        self._on_change()

    async def start(self) -> None:
        """Start every provider (concurrently) and build the table.

        Raises:
            Exception: What a provider's ``start()`` raised (the others are closed).
        """
        if not self.providers:
            return
        outcomes = await asyncio.gather(
            *(p.start() for p in self.providers), return_exceptions=True
        )
        failures = [o for o in outcomes if isinstance(o, BaseException)]
        if failures:
            await self.close()
            raise failures[0]
        for provider in self.providers:
            provider.add_listener(self._changed)
        try:
            self._rebuild()
        except ToolError:
            await self.close()
            raise

    async def ensure_running(self) -> None:
        """Let every provider restart what died (failures are logged, not raised)."""
        for provider in self.providers:
            try:
                await provider.ensure_running()
            except Exception as exc:
                logger.warning("Restarting the tool provider %r failed: %r", provider, exc)
        self._changed_quietly()

    def _changed_quietly(self) -> None:
        try:
            self._rebuild()
        except ToolError as exc:
            logger.warning("The tool list was not rebuilt: %s", exc)

    async def close(self) -> None:
        """Close every provider; idempotent, failures are logged."""
        for provider in self.providers:
            provider.remove_listener(self._changed)
            try:
                await provider.close()
            except Exception as exc:
                logger.warning("Closing the tool provider %r failed: %r", provider, exc)
