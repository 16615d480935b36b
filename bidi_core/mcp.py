"""MCP tools: an MCP server's tools as agent tools (extra ``bidi-core[mcp]``).

::

    from bidi_core import BidiAgent
    from bidi_core.mcp import MCPTools

    agent = BidiAgent("simulated", tools=[get_weather, MCPTools("python weather_server.py")])
    agent = BidiAgent("simulated", tools=[MCPTools("http://127.0.0.1:8000/mcp")])

``MCPTools`` is a *tool provider*: the agent starts it with the conversation (the
server is spawned, or the HTTP session opened, and its tools listed), closes it when
the conversation ends, and checks it before every connection restart (a server that
died is started again). Each listed tool becomes an agent tool with the server's JSON
schema; a call goes to the server with the agent's tool timeout and is cancelled (an
MCP ``notifications/cancelled``) when the agent cancels it. A failing call (an error
result, a protocol error, a timeout, a server that crashed) becomes an error tool
result and the conversation goes on. When the server announces that its tool list
changed, the list is fetched again and the agent told.

The official ``mcp`` package (2.x) is imported only when a server is started.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import ipaddress
import logging
import os
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TextIO
from urllib.parse import urlsplit

from ._errors import ConfigError, MissingDependencyError, ToolError
from ._nonblocking import SCHEDULINGS, ToolProgress
from .tools import error_result
from .types import Scheduling, ToolResult, ToolResultContent, ToolSpec, ToolUse

__all__ = ["MCPTool", "MCPTools"]

logger = logging.getLogger("bidi_core.mcp")

_INVALID_NAME_CHARS = re.compile(r"[^A-Za-z0-9_-]")
#: Seconds ``close()`` waits for the server to shut down before cancelling the transport.
CLOSE_TIMEOUT_S = 10.0


class _State(enum.Enum):
    IDLE = "idle"
    STARTING = "starting"
    RUNNING = "running"
    CLOSED = "closed"


def _import_mcp() -> Any:
    try:
        import mcp  # noqa: PLC0415 - the optional extra loads on use
    except ImportError as exc:
        msg = (
            "MCPTools needs the official MCP SDK: pip install 'bidi-core[mcp]' "
            f"(could not import mcp: {exc})."
        )
        raise MissingDependencyError(msg) from exc
    return mcp


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class MCPTool:
    """One tool of an MCP server, callable by the agent like an ``@tool`` function.

    Attributes:
        name: The name the model sees (the server's name, with the provider's
            ``prefix`` and characters models refuse replaced by ``_``).
        server_name: The name the server knows the tool by.
        tool_spec: What the model is told (the server's description and input schema).
        timeout: None: the agent's ``tool_timeout`` applies.
        blocking: False if the provider declared it non-blocking.
        scheduling: Its scheduling when non-blocking.
    """

    def __init__(
        self,
        provider: MCPTools,
        *,
        name: str,
        server_name: str,
        description: str,
        schema: dict[str, Any],
        blocking: bool,
        scheduling: Scheduling | None,
    ) -> None:
        self._provider = provider
        self.name = name
        self.server_name = server_name
        self.timeout: float | None = None
        self.blocking = blocking
        self.scheduling = scheduling
        self.tool_spec: ToolSpec = {
            "name": name,
            "description": description,
            "inputSchema": {"json": schema},
        }
        if not blocking:
            self.tool_spec["blocking"] = False
            self.tool_spec["scheduling"] = scheduling or SCHEDULINGS[0]

    def __repr__(self) -> str:
        return f"<MCPTool {self.name!r} of {self._provider.label}>"

    async def invoke(
        self,
        tool_use: ToolUse,
        *,
        default_timeout: float | None = None,
        progress: ToolProgress | None = None,
    ) -> ToolResult:
        """Call the tool on the server; every failure becomes an error result.

        Raises:
            asyncio.CancelledError: The call was cancelled (the server is told).
        """
        return await self._provider.call(self, tool_use, limit=default_timeout, progress=progress)


class MCPTools:
    """The tools of one MCP server, over stdio or streamable HTTP.

    Args:
        server: ``"http(s)://host:port/path"`` for a streamable-HTTP server, or the
            command that starts a stdio server (a string split like a shell does, or
            a list of arguments), e.g. ``"python weather_server.py"``.
        env: Extra environment variables for a stdio server.
        cwd: Working directory of a stdio server.
        headers: HTTP headers for an HTTP server (e.g. ``Authorization``); never shown
            in ``repr`` or errors.
        prefix: Put before every tool name (e.g. ``"weather_"``), to keep two
            servers' tools apart.
        include: Only these tools (server names); None for all.
        non_blocking: Tools (server names) to declare non-blocking, or True for all.
        scheduling: The scheduling of the non-blocking tools.
        startup_timeout: Seconds starting the server and listing its tools may take.
        stderr: Where a stdio server's stderr goes (default: this process's stderr).
        allow_insecure: Allow ``http://`` to a host that is not loopback.

    Raises:
        ConfigError: The server is neither a URL nor a command, or a plain-text URL
            points away from this machine without ``allow_insecure``.
    """

    def __init__(
        self,
        server: str | Sequence[str],
        *,
        env: dict[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        headers: dict[str, str] | None = None,
        prefix: str = "",
        include: Iterable[str] | None = None,
        non_blocking: Iterable[str] | bool = (),
        scheduling: Scheduling | None = None,
        startup_timeout: float = 30.0,
        stderr: TextIO | int | None = None,
        allow_insecure: bool = False,
    ) -> None:
        self._url: str | None = None
        self._command: list[str] = []
        if isinstance(server, str) and re.match(r"^https?://", server.strip(), re.I):
            self._url = server.strip()
            parts = urlsplit(self._url)
            if parts.scheme.lower() == "http" and not (
                allow_insecure or _is_loopback(parts.hostname or "")
            ):
                msg = (
                    f"MCP server URL {self._url!r} is plain http to a host that is not this "
                    "machine; use https, or pass allow_insecure=True."
                )
                raise ConfigError(msg)
        else:
            self._command = shlex.split(server) if isinstance(server, str) else list(server)
            if not self._command or not all(isinstance(a, str) for a in self._command):
                msg = (
                    "MCPTools needs a server: an http(s):// URL or the command that starts "
                    f"a stdio server, got {server!r}."
                )
                raise ConfigError(msg)
        if scheduling is not None and scheduling not in SCHEDULINGS:
            msg = f"scheduling must be one of {', '.join(SCHEDULINGS)}, got {scheduling!r}."
            raise ConfigError(msg)
        if prefix and _INVALID_NAME_CHARS.search(prefix):
            msg = f"An MCP tool prefix may hold letters, digits, '_' and '-', got {prefix!r}."
            raise ConfigError(msg)
        self._env = dict(env or {})
        self._cwd = cwd
        self._headers = dict(headers or {})
        self.prefix = prefix
        self._include = None if include is None else set(include)
        self._non_blocking = non_blocking if isinstance(non_blocking, bool) else set(non_blocking)
        self._scheduling = scheduling
        self.startup_timeout = startup_timeout
        self._stderr = stderr
        self._state = _State.IDLE
        self._tools: dict[str, MCPTool] = {}
        self._listeners: list[Callable[[], None]] = []
        self._session: Any = None
        self._runner: asyncio.Task[None] | None = None
        self._stop: asyncio.Event | None = None
        self._restart_lock = asyncio.Lock()
        self._broken = False
        self._refresh_task: asyncio.Task[None] | None = None
        #: How often the server was (re)started; a restart after a crash counts.
        self.starts = 0

    # ------------------------------------------------------------ properties

    @property
    def label(self) -> str:
        """The server as shown in messages: its URL without query, or its command."""
        if self._url is not None:
            parts = urlsplit(self._url)
            return f"MCP server {parts.scheme}://{parts.netloc}{parts.path}"
        return f"MCP server {shlex.join(self._command)!r}"

    @property
    def running(self) -> bool:
        """Whether the server is connected (started and not broken or closed)."""
        return self._state is _State.RUNNING and not self._broken

    @property
    def tools(self) -> list[MCPTool]:
        """The server's tools as listed last (empty before :meth:`start`)."""
        return list(self._tools.values())

    def add_listener(self, callback: Callable[[], None]) -> None:
        """Call *callback* (on the event loop) whenever :attr:`tools` changes."""
        self._listeners.append(callback)

    def remove_listener(self, callback: Callable[[], None]) -> None:
        """Stop calling *callback*."""
        with contextlib.suppress(ValueError):
            self._listeners.remove(callback)

    def __repr__(self) -> str:
        return f"<MCPTools {self.label} state={self._state.value} tools={list(self._tools)}>"

    # -------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        """Start (or connect to) the server and list its tools; idempotent while running.

        Raises:
            MissingDependencyError: The ``mcp`` package is not installed.
            ToolError: The server could not be started or listed within
                ``startup_timeout`` (the message says why).
        """
        if self._state is _State.RUNNING and not self._broken:
            return
        _import_mcp()
        self._state = _State.STARTING
        try:
            await self._open()
        except BaseException:
            self._state = _State.IDLE
            raise
        self._state = _State.RUNNING

    async def close(self) -> None:
        """Close the session and stop a stdio server; idempotent."""
        if self._state is _State.CLOSED:
            return
        self._state = _State.CLOSED
        await self._shutdown()

    async def ensure_running(self) -> None:
        """Start the server again if it died (the agent calls this on every restart)."""
        if self._state is _State.CLOSED:
            return
        if self._state is _State.IDLE or self._broken:
            async with self._restart_lock:
                if self._broken or self._state is _State.IDLE:
                    logger.info("%s is restarted", self.label)
                    await self._shutdown()
                    await self.start()

    async def _open(self) -> None:
        self._broken = False
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[None] = loop.create_future()
        self._stop = asyncio.Event()
        self._runner = asyncio.create_task(self._run(ready, self._stop), name="bidi-mcp")
        try:
            async with asyncio.timeout(self.startup_timeout):
                await asyncio.shield(ready)
        except BaseException as exc:
            await self._shutdown()
            if isinstance(exc, TimeoutError):
                msg = (
                    f"{self.label} did not start and list its tools within "
                    f"{self.startup_timeout:g} s."
                )
                raise ToolError(msg) from exc
            raise
        self.starts += 1

    async def _shutdown(self) -> None:
        runner, self._runner = self._runner, None
        refresh, self._refresh_task = self._refresh_task, None
        if refresh is not None:
            refresh.cancel()
            with contextlib.suppress(BaseException):
                await refresh
        if self._stop is not None:
            self._stop.set()
        if runner is not None:
            try:
                async with asyncio.timeout(CLOSE_TIMEOUT_S):
                    await asyncio.shield(runner)
            except TimeoutError:
                runner.cancel()
            with contextlib.suppress(BaseException):
                await runner
        self._session = None

    def _stderr_target(self) -> TextIO | int:
        if self._stderr is not None:
            return self._stderr
        try:
            sys.stderr.fileno()
        except (AttributeError, OSError, ValueError):
            return subprocess.DEVNULL
        return sys.stderr

    async def _run(self, ready: asyncio.Future[None], stop: asyncio.Event) -> None:
        """Hold the transport and session open (their contexts live in this one task)."""
        mcp = _import_mcp()
        try:
            async with contextlib.AsyncExitStack() as stack:
                if self._url is not None:
                    from mcp.client.streamable_http import (  # noqa: PLC0415
                        streamable_http_client,
                    )
                    from mcp.shared._httpx_utils import (  # noqa: PLC0415
                        create_mcp_http_client,
                    )

                    client = await stack.enter_async_context(
                        create_mcp_http_client(headers=self._headers or None)
                    )
                    read, write = await stack.enter_async_context(
                        streamable_http_client(self._url, http_client=client)
                    )
                else:
                    params = mcp.StdioServerParameters(
                        command=self._command[0],
                        args=self._command[1:],
                        env=self._env or None,
                        cwd=self._cwd,
                    )
                    read, write = await stack.enter_async_context(
                        mcp.stdio_client(params, errlog=self._stderr_target())
                    )
                session = await stack.enter_async_context(
                    mcp.ClientSession(read, write, message_handler=self._on_message)
                )
                await session.initialize()
                await self._list_tools(session)
                self._session = session
                if not ready.done():
                    ready.set_result(None)
                await stop.wait()
        except BaseException as exc:
            if not ready.done():
                ready.set_exception(self._start_error(exc))
                return
            if not isinstance(exc, asyncio.CancelledError):
                logger.warning("%s ended with an error: %r", self.label, exc)
            else:
                raise
        finally:
            self._session = None

    def _start_error(self, exc: BaseException) -> BaseException:
        if isinstance(exc, ToolError | asyncio.CancelledError):
            return exc
        detail = _describe(exc)
        msg = f"Cannot start {self.label}: {detail}."
        if self._command and isinstance(_root(exc), FileNotFoundError):
            msg += f" Is {self._command[0]!r} installed and on PATH?"
        error = ToolError(msg)
        error.__cause__ = exc
        return error

    # ---------------------------------------------------------------- tools

    async def _list_tools(self, session: Any) -> None:
        listed: list[Any] = []
        cursor: str | None = None
        mcp = _import_mcp()
        while True:
            params = mcp.types.PaginatedRequestParams(cursor=cursor) if cursor else None
            page = await session.list_tools(params=params)
            listed.extend(page.tools)
            cursor = page.next_cursor
            if not cursor:
                break
        tools: dict[str, MCPTool] = {}
        for item in listed:
            if self._include is not None and item.name not in self._include:
                continue
            name = _INVALID_NAME_CHARS.sub("_", f"{self.prefix}{item.name}")[:64]
            if name in tools:
                msg = (
                    f"{self.label} lists two tools that both become {name!r} "
                    f"({tools[name].server_name!r} and {item.name!r}); pass include= to pick one."
                )
                raise ToolError(msg)
            non_blocking = (
                self._non_blocking
                if isinstance(self._non_blocking, bool)
                else item.name in self._non_blocking
            )
            tools[name] = MCPTool(
                self,
                name=name,
                server_name=item.name,
                description=item.description or getattr(item, "title", None) or item.name,
                schema=_schema(item.input_schema),
                blocking=not non_blocking,
                scheduling=self._scheduling if non_blocking else None,
            )
        changed = set(tools) != set(self._tools) or any(
            tools[n].tool_spec != self._tools[n].tool_spec for n in tools
        )
        self._tools = tools
        if changed and self.starts:
            for callback in list(self._listeners):
                try:
                    callback()
                except Exception:
                    logger.exception("A tool-list listener of %s failed", self.label)

    async def _on_message(self, message: Any) -> None:
        mcp = _import_mcp()
        if isinstance(message, Exception):
            logger.warning("%s transport error: %r", self.label, message)
            return
        refreshing = self._refresh_task is not None and not self._refresh_task.done()
        if isinstance(message, mcp.types.ToolListChangedNotification) and not refreshing:
            self._refresh_task = asyncio.create_task(self._refresh(), name="bidi-mcp-list")

    async def _refresh(self) -> None:
        session = self._session
        if session is None:
            return
        try:
            await self._list_tools(session)
        except Exception as exc:
            logger.warning("Listing the tools of %s again failed: %r", self.label, exc)

    # ---------------------------------------------------------------- calls

    async def call(
        self,
        tool: MCPTool,
        tool_use: ToolUse,
        *,
        limit: float | None,
        progress: ToolProgress | None = None,
    ) -> ToolResult:
        """Call *tool* for *tool_use* within *limit* seconds; see :meth:`MCPTool.invoke`."""
        tool_use_id = tool_use["toolUseId"]
        arguments = tool_use.get("input") or {}
        if not isinstance(arguments, dict):
            return error_result(
                tool_use_id,
                f"Tool {tool.name!r} was called wrongly: the arguments must be a JSON object.",
            )
        if self._broken:
            await self.ensure_running()
        session = self._session
        if session is None or self._state is not _State.RUNNING:
            return error_result(
                tool_use_id, f"Tool {tool.name!r} is unavailable: {self.label} is not running."
            )

        async def on_progress(value: float, total: float | None, message: str | None) -> None:
            if progress is not None:
                progress(message or (f"{value:g} of {total:g}" if total else f"{value:g}"))

        started = time.monotonic()
        try:
            async with asyncio.timeout(limit):
                result = await session.call_tool(
                    tool.server_name, arguments, progress_callback=on_progress
                )
        except TimeoutError:
            return error_result(
                tool_use_id, f"Tool {tool.name!r} did not finish within {limit:g} s."
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if _connection_lost(exc):
                self._broken = True
                logger.warning(
                    "%s stopped during a call of %r (after %.1f s); it is restarted on the "
                    "next call or connection restart",
                    self.label,
                    tool.server_name,
                    time.monotonic() - started,
                )
                return error_result(
                    tool_use_id,
                    f"Tool {tool.name!r} failed: {self.label} stopped during the call.",
                )
            return error_result(tool_use_id, f"Tool {tool.name!r} failed: {_describe(exc)}")
        return _result(tool_use_id, result)


# ----------------------------------------------------------------- helpers


def _schema(value: Any) -> dict[str, Any]:
    """The server's input schema, as an object schema the providers take."""
    schema = dict(value) if isinstance(value, dict) else {}
    schema.pop("$schema", None)
    schema.setdefault("type", "object")
    if schema.get("type") == "object":
        schema.setdefault("properties", {})
    return schema


def _result(tool_use_id: str, result: Any) -> ToolResult:
    content: list[ToolResultContent] = []
    structured = getattr(result, "structured_content", None)
    for item in getattr(result, "content", None) or []:
        kind = getattr(item, "type", "")
        if kind == "text":
            content.append({"text": str(item.text)})
        elif kind in ("image", "audio"):
            size = len(str(getattr(item, "data", ""))) * 3 // 4
            content.append({"text": f"[{kind} {getattr(item, 'mime_type', '')}, {size} bytes]"})
        elif kind == "resource_link":
            content.append({"text": f"[resource {getattr(item, 'uri', '')}]"})
        elif kind == "resource":
            resource = getattr(item, "resource", None)
            text = getattr(resource, "text", None)
            content.append({"text": str(text) if text is not None else f"[resource {resource}]"})
    if structured is not None and not any("text" in c for c in content):
        content.append({"json": structured})
    status = "error" if getattr(result, "is_error", False) else "success"
    return {"toolUseId": tool_use_id, "status": status, "content": content}  # type: ignore[typeddict-item]


def _root(exc: BaseException) -> BaseException:
    """The first leaf of an exception group (anyio wraps transport failures)."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def _describe(exc: BaseException) -> str:
    root = _root(exc)
    message = getattr(root, "message", None)  # mcp's MCPError keeps its text there
    text = (message if isinstance(message, str) else str(root)).strip()
    name = type(root).__name__
    return f"{name}: {text}" if text and text != name else name


def _connection_lost(exc: BaseException) -> bool:
    root = _root(exc)
    if getattr(getattr(root, "error", None), "code", None) == -32000:  # CONNECTION_CLOSED
        return True
    return isinstance(root, ConnectionError | EOFError)
