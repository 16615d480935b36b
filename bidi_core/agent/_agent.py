"""``BidiAgent``: the loop that turns a model connection into a voice agent."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import enum
import logging
import time
import typing
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from typing import Any, Self

import attrs

from .._base import cancel_and_wait
from .._config import check_number, copy_config
from .._errors import (
    BidiConnectionError,
    BidiModelStateError,
    BidiModelTimeoutError,
    ConfigError,
    ToolError,
)
from .._input import check_input
from .._protocol import BidiModel, ModelCapabilities, SupportsTruncation
from ..events import (
    BidiAudioInputEvent,
    BidiAudioStreamEvent,
    BidiConnectionCloseEvent,
    BidiConnectionRestartEvent,
    BidiConnectionStartEvent,
    BidiErrorEvent,
    BidiImageInputEvent,
    BidiInputEvent,
    BidiInterruptionEvent,
    BidiOutputEvent,
    BidiResponseCompleteEvent,
    BidiResponseStartEvent,
    BidiTextInputEvent,
    BidiToolCancelEvent,
    BidiTranscriptStreamEvent,
    BidiUsageEvent,
    ToolResultEvent,
    ToolUseStreamEvent,
)
from ..io._protocol import BidiInput, BidiOutput
from ..tools import AgentTool, error_result, to_agent_tool, tool_result_text
from ..types import Messages, ToolResult, ToolSpec, ToolUse
from ._checks import RestartPacer, check_agent_args, json_safe, result_event
from ._history import History
from ._queue import OutputQueue

__all__ = ["AgentEvent", "AgentState", "AgentStats", "BidiAgent"]

logger = logging.getLogger("bidi_core.agent")

#: Seconds before a restart in which an unanswered text turn is sent again after it.
RESEND_WINDOW_S = 5.0

#: What ``BidiAgent.receive()`` yields: the model's events, plus the agent's own
#: restart/close/dropped-audio events, plus a ``ToolResultEvent`` per tool result sent.
AgentEvent = BidiOutputEvent | ToolResultEvent


class AgentState(enum.Enum):
    """Lifecycle states of an agent."""

    IDLE = "idle"
    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"


@attrs.define(kw_only=True)
class AgentStats:
    """What happened in a conversation (``agent.stats``), for summaries and metrics.

    Attributes:
        turns: Model responses that completed (any stop reason).
        tool_calls: Tool calls the model made.
        interruptions: Barge-ins.
        restarts: Connection restarts (time limits).
        input_tokens: Sum of usage increments.
        output_tokens: Sum of usage increments.
        total_tokens: Sum of usage increments.
        time_to_first_audio_ms: Per response with audio: milliseconds from the end of
            the user's turn (the last text, tool result or final user transcript before
            the response) to its first audio chunk.
        dropped_audio_chunks: Output audio dropped under back-pressure.
        lost_inputs: Inputs that could not be delivered (always 0 unless a restart failed).
        resent_inputs: Text turns sent again after a restart because the old connection
            ended before the model began to answer them.
    """

    turns: int = 0
    tool_calls: int = 0
    interruptions: int = 0
    restarts: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    time_to_first_audio_ms: list[float] = attrs.field(factory=list)
    dropped_audio_chunks: int = 0
    lost_inputs: int = 0
    resent_inputs: int = 0


class _Wake:
    """Queued by run()'s watcher to let the consumer re-check whether it is done."""


@attrs.define
class _ToolCall:
    tool_use: ToolUse
    generation: int
    task: asyncio.Task[None] | None = None
    invoke: asyncio.Task[ToolResult] | None = None
    cancel_reason: str | None = None


class BidiAgent:
    """Runs a bidirectional model as a voice agent: tools, history, restarts, barge-in.

    Example::

        agent = BidiAgent("simulated", tools=[get_weather], system_prompt="Be brief.")
        async with agent:
            await agent.send("What is the weather in Paris? get_weather")
            async for event in agent.receive():
                ...

    or drive channels until the conversation ends::

        await BidiAgent("simulated").run(inputs=[TextInput()], outputs=[TextOutput()])

    Behaviour:

    * **Reading never waits for you.** A reader task per connection moves every
      model event into an output queue at once. Control events are never dropped.
      Audio is bounded to ``max_queued_audio_ms``: beyond it the *oldest* queued
      chunks are dropped, counted and reported by ``BidiAudioDroppedEvent``.
    * **Tools** run concurrently as tasks (sync tools in worker threads). Errors,
      bad arguments and timeouts become error results; ``BidiToolCancelEvent`` (and
      barge-in, unless ``cancel_tools_on_interruption=False``) cancels running calls,
      and a "cancelled" error result is still sent so the model never waits. A result
      for a call made on an earlier connection is sent to the new one as user text.
    * **History** (``agent.messages``) is kept in the ``Messages`` shape and passed to
      ``model.start()`` on every restart.
    * **Restarts**: on ``BidiModelTimeoutError`` the agent yields
      ``BidiConnectionRestartEvent``, stops the model and starts it again with the
      history and the error's ``restart_config`` (retrying without it if that fails).
      Input sent meanwhile is buffered and flushed in order. If every attempt fails,
      ``receive()`` raises ``BidiConnectionError``. A connection that keeps ending
      within a second of starting is restarted at once three times in a row, then
      after 0.25 s, 0.5 s, 1 s ... (at most 5 s), so a misconfigured limit cannot
      make the agent reconnect in a tight loop.
    * **Barge-in**: on ``BidiInterruptionEvent`` queued audio is dropped at once, every
      output channel's ``clear_audio()`` is called, and a model that supports output
      truncation is told how much of the response was played (the output channels'
      ``played_ms``, else the audio ``receive()`` had yielded).

    Args:
        model: A :class:`~bidi_core.BidiModel`, or a registry name for
            :func:`~bidi_core.get_model` (then ``**model_config`` goes to it).
        tools: Functions (``@tool``-decorated or plain, typed) the model may call.
        system_prompt: Instructions for the model.
        messages: History to start from.
        tool_timeout: Default seconds a tool call may take (None: no limit).
        max_queued_audio_ms: Audio held for a slow consumer before dropping.
        restart_attempts: Connection attempts per restart.
        restart_timeout: Seconds each restart attempt may take.
        cancel_tools_on_interruption: Cancel running tool calls on barge-in.
        **model_config: ``model_id``, ``provider_config``, ``client_config``... when
            ``model`` is a name.

    Raises:
        ConfigError: ``model_config`` given with a model object, or bad arguments.
        ToolError: Two tools share a name, or a tool cannot be described.
    """

    def __init__(
        self,
        model: BidiModel | str = "simulated",
        *,
        tools: Iterable[Callable[..., Any]] = (),
        system_prompt: str | None = None,
        messages: Messages | None = None,
        tool_timeout: float | None = 60.0,
        max_queued_audio_ms: float = 10_000.0,
        restart_attempts: int = 3,
        restart_timeout: float = 30.0,
        cancel_tools_on_interruption: bool = True,
        **model_config: Any,
    ) -> None:
        if isinstance(model, str):
            from .._registry import get_model  # noqa: PLC0415 - keeps import order simple

            model = get_model(model, **model_config)
        elif model_config:
            msg = (
                f"BidiAgent got model settings {sorted(model_config)!r} together with a model "
                "object; pass them to the model instead, or pass a registry name as model."
            )
            raise ConfigError(msg)
        if not isinstance(typing.cast(object, model), BidiModel):
            msg = f"BidiAgent needs a BidiModel or a registry name, got {model!r}."
            raise ConfigError(msg)
        tool_timeout, max_queued_audio_ms, restart_attempts, restart_timeout = check_agent_args(
            tools=tools,
            system_prompt=system_prompt,
            messages=messages,
            tool_timeout=tool_timeout,
            max_queued_audio_ms=max_queued_audio_ms,
            restart_attempts=restart_attempts,
            restart_timeout=restart_timeout,
            cancel_tools_on_interruption=cancel_tools_on_interruption,
        )
        self.model = model
        self.system_prompt = system_prompt
        self.tool_timeout = tool_timeout
        self.max_queued_audio_ms = max_queued_audio_ms
        self.restart_attempts = restart_attempts
        self.restart_timeout = restart_timeout
        self.cancel_tools_on_interruption = cancel_tools_on_interruption
        self._tools: dict[str, AgentTool[..., Any]] = {}
        for obj in tools:
            agent_tool = to_agent_tool(obj)
            if agent_tool.name in self._tools:
                msg = f"Two tools are named {agent_tool.name!r}; tool names must be unique."
                raise ToolError(msg)
            self._tools[agent_tool.name] = agent_tool
        self._history = History(copy_config(messages or []))
        self.stats = AgentStats()
        self._state = AgentState.IDLE
        self._queue = OutputQueue(max_queued_audio_ms)
        self._pump_task: asyncio.Task[None] | None = None
        self._send_lock = asyncio.Lock()
        self._pending: collections.deque[BidiInputEvent | ToolResultEvent] = collections.deque()
        self._restarting = False
        self._generation = 0
        self._calls: dict[str, _ToolCall] = {}
        self._background: set[asyncio.Task[Any]] = set()
        self._outputs: list[BidiOutput] = []
        self._receiver: asyncio.Task[Any] | None = None
        self._connection_id = ""
        self._current_response: str | None = None
        self._interrupted: set[str] = set()
        self._partial: dict[str, str] = {}
        self._finals_in_response = False
        self._delivered_ms: dict[str, float] = {}
        self._turn_end: float | None = None
        self._first_audio_pending: str | None = None
        self._last_activity = 0.0
        #: Text turns sent on this connection that no response has begun for yet (one
        #: response start answers the oldest), when, and whether each is a resend.
        self._unanswered: list[tuple[str, float, bool]] = []
        self._resends: set[int] = set()
        self._pacer = RestartPacer()

    # -------------------------------------------------------------- properties

    @property
    def state(self) -> AgentState:
        """The agent's lifecycle state."""
        return self._state

    @property
    def messages(self) -> Messages:
        """The conversation so far, in the ``Messages`` shape (a copy)."""
        return self._history.messages

    @property
    def tool_specs(self) -> list[ToolSpec]:
        """The specs of the agent's tools, as sent to the model."""
        return [t.tool_spec for t in self._tools.values()]

    @property
    def capabilities(self) -> ModelCapabilities:
        """The model's capabilities."""
        caps = getattr(self.model, "capabilities", None)
        return caps if isinstance(caps, ModelCapabilities) else ModelCapabilities()

    # --------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        """Start the model with the system prompt, tools and history.

        Raises:
            BidiModelStateError: The agent is already starting or running.
        """
        if self._state is not AgentState.IDLE:
            msg = (
                f"Cannot start the agent: it is {self._state.value}. An agent runs one "
                "conversation at a time; call stop() first, or create another BidiAgent."
            )
            raise BidiModelStateError(msg)
        self._state = AgentState.STARTING
        self._queue = OutputQueue(self.max_queued_audio_ms)
        self._pending.clear()
        self._restarting = False
        self._unanswered.clear()
        self._resends.clear()
        try:
            await self.model.start(
                system_prompt=self.system_prompt, tools=self.tool_specs, messages=self.messages
            )
        except BaseException:
            self._state = AgentState.IDLE
            raise
        self._generation += 1
        self._last_activity = time.monotonic()
        self._pacer.connected()
        self._state = AgentState.RUNNING
        self._pump_task = asyncio.create_task(self._pump(), name="bidi-agent-reader")

    async def stop(self) -> None:
        """Stop tools, the reader and the model; idempotent. ``receive()`` then ends."""
        if self._state in (AgentState.IDLE, AgentState.STOPPING):
            return
        self._state = AgentState.STOPPING
        try:
            for call in list(self._calls.values()):
                await cancel_and_wait(call.task)
                await cancel_and_wait(call.invoke)
            self._calls.clear()
            for task in list(self._background):
                await cancel_and_wait(task)
            self._background.clear()
            await cancel_and_wait(self._pump_task)
            self._pump_task = None
        finally:
            try:
                await self.model.stop()
            finally:
                self.stats.lost_inputs += len(self._pending)
                self._pending.clear()
                self._queue.put(
                    BidiConnectionCloseEvent(connection_id=self._connection_id, reason="stopped")
                )
                self._queue.end()
                self._state = AgentState.IDLE

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # -------------------------------------------------------------------- send

    async def send(self, content: str | BidiInputEvent | ToolResultEvent) -> None:
        """Send user input (a ``str`` is a user text turn) to the model.

        During a restart the input is buffered and sent, in order, once the new
        connection is ready.

        Raises:
            BidiModelStateError: The agent is not running.
            UnsupportedInputError: The model cannot take this input (nothing is lost).
        """
        if self._state is not AgentState.RUNNING:
            msg = (
                f"Cannot send to the agent while it is {self._state.value}; "
                "call start() (or use 'async with agent') first."
            )
            raise BidiModelStateError(msg)
        event = BidiTextInputEvent(text=content) if isinstance(content, str) else content
        name = getattr(self.model, "provider", type(self.model).__name__)
        checked = check_input(event, self.capabilities, model=str(name))
        if isinstance(checked, BidiTextInputEvent | ToolResultEvent):
            self._mark_turn_end()
        await self._send_event(checked)

    async def _send_event(self, event: BidiInputEvent | ToolResultEvent) -> None:
        async with self._send_lock:
            if self._restarting or self._pending:
                self._pending.append(event)
                return
            try:
                await self._send_now(event)
            except BidiModelTimeoutError:
                # The connection hit its limit; the reader restarts it and flushes this.
                self._pending.append(event)

    async def _send_now(self, event: BidiInputEvent | ToolResultEvent) -> None:
        wire: BidiInputEvent | ToolResultEvent = event
        if isinstance(event, ToolResultEvent):
            result = event.tool_result
            call = self._calls.get(result["toolUseId"])
            if call is not None and call.generation != self._generation:
                # The connection that issued the call is gone: tell the new one in words.
                wire = BidiTextInputEvent(
                    text=(
                        f"(The earlier call of {call.tool_use['name']} [{result['toolUseId']}] "
                        f"finished with {result['status']}: {tool_result_text(result)})"
                    )
                )
        if isinstance(wire, BidiAudioInputEvent | BidiImageInputEvent):
            await self.model.send(wire)
            return
        # Recorded as it is sent (the answer may arrive before send() returns), and
        # taken back if it could not be sent: buffered input is then flushed after the
        # history is replayed, and must not be in that history twice.
        checkpoint = self._history.checkpoint()
        unanswered = len(self._unanswered)
        if isinstance(event, ToolResultEvent):
            self._history.tool_result(event.tool_result)
        elif isinstance(event, BidiTextInputEvent):
            self._history.user_text_sent(event.text)
            resend = id(event) in self._resends
            self._resends.discard(id(event))
            self._unanswered.append((event.text, time.monotonic(), resend))
        try:
            await self.model.send(wire)
        except BaseException:
            self._history.restore(checkpoint)
            del self._unanswered[unanswered:]
            raise

    def _mark_turn_end(self) -> None:
        self._turn_end = time.monotonic()
        self._last_activity = self._turn_end

    # ----------------------------------------------------------------- receive

    async def receive(self) -> AsyncIterator[AgentEvent]:
        """Yield every event: the model's, plus restarts, tool results and close.

        Ends after ``stop()`` (with ``BidiConnectionCloseEvent``).

        Raises:
            BidiModelStateError: Another task is already receiving.
            ProviderError: The connection failed and could not be restarted.
        """
        async for event in self._events(None):
            yield event

    async def _events(self, done: Callable[[], bool] | None) -> AsyncIterator[AgentEvent]:
        me = asyncio.current_task()
        other = self._receiver
        if other is not None and other is not me and not other.done():
            msg = "Cannot receive: another task is already receiving from this agent."
            raise BidiModelStateError(msg)
        if self._state is AgentState.IDLE and not len(self._queue):
            msg = "Cannot receive from the agent before start() has been called."
            raise BidiModelStateError(msg)
        self._receiver = me
        queue = self._queue
        try:
            while True:
                try:
                    event = await queue.get()
                except StopAsyncIteration:
                    return
                if isinstance(event, _Wake):
                    if done is not None and done():
                        return
                    continue
                if isinstance(event, BidiAudioStreamEvent) and event.response_id:
                    rid = event.response_id
                    self._delivered_ms[rid] = self._delivered_ms.get(rid, 0.0) + (
                        len(event.audio) / 2 / event.channels / event.sample_rate * 1000.0
                    )
                yield event
        finally:
            if self._receiver is me:
                self._receiver = None

    # ------------------------------------------------------------- the reader

    async def _pump(self) -> None:
        try:
            while True:
                try:
                    async for event in self.model.receive():
                        self._on_event(event)
                except BidiModelTimeoutError as err:
                    if self._state is not AgentState.RUNNING:
                        return
                    await self._restart(err)
                    continue
                break
            if self._state is AgentState.RUNNING:
                self._queue.end()  # the model ended the conversation
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            self._queue.fail(exc)

    def _on_event(self, event: BidiOutputEvent) -> None:
        self._last_activity = time.monotonic()
        if isinstance(event, BidiConnectionStartEvent):
            self._connection_id = event.connection_id
        elif isinstance(event, BidiResponseStartEvent):
            if self._unanswered:
                del self._unanswered[0]
            self._current_response = event.response_id
            self._first_audio_pending = event.response_id
            self._finals_in_response = False
        elif isinstance(event, BidiAudioStreamEvent):
            rid = event.response_id or self._current_response
            if rid is not None and rid == self._first_audio_pending:
                self._first_audio_pending = None
                if self._turn_end is not None:
                    self.stats.time_to_first_audio_ms.append(
                        (self._last_activity - self._turn_end) * 1000.0
                    )
        elif isinstance(event, BidiTranscriptStreamEvent):
            self._on_transcript(event)
        elif isinstance(event, ToolUseStreamEvent):
            self._on_tool_use(event.tool_use)
        elif isinstance(event, BidiToolCancelEvent):
            for tool_use_id in event.tool_use_ids:
                self._cancel_call(tool_use_id, "the model withdrew the call")
        elif isinstance(event, BidiInterruptionEvent):
            self._on_interruption(event)
        elif isinstance(event, BidiResponseCompleteEvent):
            self._on_response_complete(event)
        elif isinstance(event, BidiUsageEvent):
            self.stats.input_tokens += event.input_tokens
            self.stats.output_tokens += event.output_tokens
            self.stats.total_tokens += event.total_tokens
        self._queue.put(event)
        if self._queue.total_dropped_chunks != self.stats.dropped_audio_chunks:
            self.stats.dropped_audio_chunks = self._queue.total_dropped_chunks

    def _on_transcript(self, event: BidiTranscriptStreamEvent) -> None:
        key = f"{event.role}:{event.item_id}"
        if not event.is_final:
            if event.role == "assistant":
                self._partial[key] = (
                    event.current_transcript
                    if event.current_transcript is not None
                    else self._partial.get(key, "") + event.text
                )
            return
        self._partial.pop(key, None)
        if event.role == "assistant":
            self._finals_in_response = True
        interrupted = event.role == "assistant" and self._current_response in self._interrupted
        if (
            self._history.final_transcript(
                event.role, event.text, event.item_id, interrupted=interrupted
            )
            and event.role == "user"
        ):
            self._mark_turn_end()

    def _flush_partial_assistant(self, *, interrupted: bool) -> None:
        """Record assistant text that never got a final transcript."""
        for key in [k for k in self._partial if k.startswith("assistant:")]:
            text = self._partial.pop(key)
            item_id = key.partition(":")[2]
            self._history.final_transcript(
                "assistant", text, None if item_id == "None" else item_id, interrupted=interrupted
            )

    def _on_interruption(self, event: BidiInterruptionEvent) -> None:
        self.stats.interruptions += 1
        rid = event.response_id or self._current_response
        if rid is not None:
            self._interrupted.add(rid)
        self._queue.clear_audio()
        played: float | None = None
        for output in self._outputs:
            with contextlib.suppress(Exception):
                output.clear_audio()
            if rid is not None:
                try:
                    value = output.played_ms(rid)
                except Exception:  # a broken channel must not break the reader
                    value = None
                if value is not None:
                    played = value if played is None else max(played, value)
        if rid is not None:
            if played is None:
                played = self._delivered_ms.get(rid, 0.0)
            self._truncate(rid, played)
        if self.cancel_tools_on_interruption:
            for tool_use_id in list(self._calls):
                self._cancel_call(tool_use_id, "the user interrupted")

    def _truncate(self, response_id: str, played_ms: float) -> None:
        model = self.model
        if not (self.capabilities.output_truncation and isinstance(model, SupportsTruncation)):
            return

        async def truncate() -> None:
            try:
                await model.truncate(response_id, int(played_ms))
            except Exception as exc:
                logger.warning("Truncating response %s failed: %r", response_id, exc)
                self._queue.put(
                    BidiErrorEvent(
                        message=f"Could not truncate the interrupted response: {exc}",
                        code="truncate_failed",
                        recoverable=True,
                    )
                )

        self._spawn(truncate(), name="bidi-agent-truncate")

    def _on_response_complete(self, event: BidiResponseCompleteEvent) -> None:
        self.stats.turns += 1
        self._flush_partial_assistant(
            interrupted=event.stop_reason == "interrupted" or event.response_id in self._interrupted
        )
        if self._current_response == event.response_id:
            self._current_response = None
        self._first_audio_pending = None
        self._delivered_ms.pop(event.response_id, None)

    # ------------------------------------------------------------------- tools

    def _spawn(self, coro: Any, *, name: str) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro, name=name)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    def _on_tool_use(self, tool_use: ToolUse) -> None:
        self.stats.tool_calls += 1
        self._history.tool_use(tool_use)
        call = _ToolCall(tool_use=dict(tool_use), generation=self._generation)  # type: ignore[arg-type]
        self._calls[tool_use["toolUseId"]] = call
        name = tool_use.get("name", "?")
        # The call runs in its own task so that cancelling it (tool cancel, barge-in)
        # is told apart from cancelling its runner (agent stop).
        call.invoke = asyncio.create_task(self._invoke_tool(tool_use), name=f"bidi-tool-{name}")
        call.task = asyncio.create_task(self._run_tool(call), name=f"bidi-tool-runner-{name}")

    def _cancel_call(self, tool_use_id: str, reason: str) -> None:
        call = self._calls.get(tool_use_id)
        if call is None or call.invoke is None or call.invoke.done() or call.cancel_reason:
            return
        call.cancel_reason = reason
        call.invoke.cancel()

    async def _invoke_tool(self, tool_use: ToolUse) -> ToolResult:
        name = str(tool_use.get("name", ""))
        agent_tool = self._tools.get(name)
        if agent_tool is None:
            known = ", ".join(sorted(self._tools)) or "none"
            return error_result(
                tool_use["toolUseId"], f"Unknown tool {name!r}; the available tools are: {known}."
            )
        return await agent_tool.invoke(tool_use, default_timeout=self.tool_timeout)

    async def _run_tool(self, call: _ToolCall) -> None:
        tool_use = call.tool_use
        tool_use_id = tool_use["toolUseId"]
        name = str(tool_use.get("name", ""))
        assert call.invoke is not None
        try:
            result = await call.invoke
        except asyncio.CancelledError:
            me = asyncio.current_task()
            if (me is not None and me.cancelling()) or call.cancel_reason is None:
                raise
            result = error_result(
                tool_use_id, f"Tool {name!r} was cancelled: {call.cancel_reason}."
            )
        except Exception as exc:  # invoke() turns tool failures into results; never leave none
            logger.warning("Tool %r failed outside its own error handling: %r", name, exc)
            result = error_result(tool_use_id, f"Tool {name!r} failed: {type(exc).__name__}.")
        event = result_event(tool_use_id, name, result)
        try:
            self._mark_turn_end()
            self._queue.put(event)
            await self._send_event(event)
        except Exception as exc:
            logger.warning("Sending the result of tool %r failed: %r", name, exc)
        finally:
            if self._calls.get(tool_use_id) is call:
                del self._calls[tool_use_id]

    # ----------------------------------------------------------------- restart

    async def _restart(self, err: BidiModelTimeoutError) -> None:
        self.stats.restarts += 1
        async with self._send_lock:
            self._restarting = True
            self._resend_unanswered()
        self._flush_partial_assistant(interrupted=self._current_response is not None)
        self._current_response = None
        restart_config = dict(err.restart_config)
        self._queue.put(
            BidiConnectionRestartEvent(
                reason="timeout", message=str(err), restart_config=json_safe(restart_config)
            )
        )
        await self.model.stop()
        await self._pacer.wait()
        last_error: BaseException | None = None
        for attempt in range(self.restart_attempts):
            # A stale resumption handle must not end the talk: later attempts replay history.
            config = restart_config if attempt == 0 else {}
            try:
                async with asyncio.timeout(self.restart_timeout):
                    await self.model.start(
                        system_prompt=self.system_prompt,
                        tools=self.tool_specs,
                        messages=self.messages,
                        **config,
                    )
            except Exception as exc:
                last_error = exc
                logger.warning("Restart attempt %d failed: %r", attempt + 1, exc)
                with contextlib.suppress(Exception):
                    await self.model.stop()
                await asyncio.sleep(min(0.05 * 2**attempt, 1.0))
                continue
            break
        else:
            self.stats.lost_inputs += len(self._pending)
            msg = (
                f"The connection reached its time limit and restarting it failed "
                f"{self.restart_attempts} time(s): {last_error!r}. Buffered input was not sent."
            )
            raise BidiConnectionError(msg, retryable=True) from last_error
        self._pacer.connected()
        self._generation += 1
        async with self._send_lock:
            while self._pending:
                event = self._pending[0]
                try:
                    await self._send_now(event)
                except BidiModelTimeoutError:
                    break  # the new connection is already over its limit: next restart flushes
                self._pending.popleft()
            self._restarting = False

    def _resend_unanswered(self) -> None:
        """Queue text turns the old connection ended before answering, ahead of the rest.

        The connection may have ended before the text even arrived (a provider drops
        what is in flight when it ends a session), and the new connection only gets it
        as history, which no model answers. A turn counts as answered once a response
        began after it (responses answer turns in order); only turns sent in the last
        :data:`RESEND_WINDOW_S` are sent again (older ones were answered together with
        a later turn), and each at most once: a turn the new connection also ends
        without answering stays in the history.
        """
        recent = time.monotonic() - RESEND_WINDOW_S
        again = [text for text, sent, resent in self._unanswered if sent >= recent and not resent]
        self._unanswered.clear()
        events = [BidiTextInputEvent(text=text) for text in again]
        for text in reversed(again):
            self._history.withdraw_user_text(text)
        self._resends.update(id(e) for e in events)
        self._pending.extendleft(reversed(events))
        self.stats.resent_inputs += len(events)

    # --------------------------------------------------------------------- run

    def _idle(self, settle_s: float) -> bool:
        now = time.monotonic()
        return (
            self._current_response is None
            and not self._calls
            and not self._pending
            and not self._restarting
            and now - self._last_activity >= settle_s
        )

    async def run(
        self,
        *,
        inputs: Sequence[BidiInput] = (),
        outputs: Sequence[BidiOutput] = (),
        settle_s: float = 1.5,
    ) -> AgentStats:
        """Drive input and output channels until the conversation ends.

        Starts the agent if needed (and then stops it at the end). Every input
        channel's events are sent concurrently; every event goes to every output's
        ``handle()`` in order. With inputs, the conversation ends once they are all
        exhausted and the agent has been idle (no response active, no tool running,
        nothing buffered) for ``settle_s``; without inputs, when ``stop()`` is called
        or the model ends. An input channel that fails ends the conversation and its
        error is raised.

        Returns:
            ``agent.stats``.

        Raises:
            ConfigError: ``settle_s`` is not a finite number >= 0 (NaN would never settle).
            ProviderError: The connection failed.
            Exception: Whatever an input channel raised (e.g. a missing optional extra).
        """
        settle_s = check_number(settle_s, where="BidiAgent.run() settle_s", minimum=0)
        started_here = self._state is AgentState.IDLE
        if started_here:
            await self.start()
        self._outputs = list(outputs)
        feeders = [
            asyncio.create_task(self._feed(channel), name="bidi-agent-input") for channel in inputs
        ]
        inputs_done = asyncio.Event()
        input_errors: list[BaseException] = []

        async def watch() -> None:
            outcomes = await asyncio.gather(*feeders, return_exceptions=True)
            input_errors.extend(
                outcome
                for outcome in outcomes
                if isinstance(outcome, BaseException)
                and not isinstance(outcome, asyncio.CancelledError)
            )
            inputs_done.set()
            while True:
                self._queue.put(_Wake())
                await asyncio.sleep(min(0.05, settle_s / 4 or 0.01))

        def done() -> bool:
            return bool(input_errors) or (inputs_done.is_set() and self._idle(settle_s))

        watcher = asyncio.create_task(watch(), name="bidi-agent-watch") if feeders else None
        try:
            async for event in self._events(done):
                for output in self._outputs:
                    await output.handle(event)
        finally:
            await cancel_and_wait(watcher)
            for task in feeders:
                await cancel_and_wait(task)
            for channel in inputs:
                with contextlib.suppress(Exception):
                    await channel.aclose()
            try:
                if started_here:
                    await self.stop()
            finally:
                for output in self._outputs:
                    with contextlib.suppress(Exception):
                        await output.aclose()
                self._outputs = []
        if input_errors:
            # An input that failed (a missing extra, an unreadable file) ends the talk.
            raise input_errors[0]
        return self.stats

    async def _feed(self, channel: BidiInput) -> None:
        async for item in channel.events(self.capabilities):
            if self._state is not AgentState.RUNNING:
                return
            await self.send(item)

    def __repr__(self) -> str:
        return (
            f"<BidiAgent model={self.model!r} state={self._state.value} tools={list(self._tools)}>"
        )
