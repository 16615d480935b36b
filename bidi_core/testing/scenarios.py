"""Agent-level scenarios any model (and its fake) can be run through.

:func:`check_non_blocking_tool` drives a :class:`~bidi_core.BidiAgent` with a slow
non-blocking tool: the conversation must go on while the tool runs, a progress update
and the late result must be answered, also across a connection restart. Importing
this module does not import pytest.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import attrs

from .._protocol import BidiModel
from ..events import BidiConnectionRestartEvent, BidiTranscriptStreamEvent, ToolResultEvent
from ..tools import ToolProgress, tool
from ..types import Scheduling

__all__ = [
    "FeaturesOutcome",
    "NonBlockingOutcome",
    "check_mcp_recording_telemetry",
    "check_non_blocking_tool",
]


@attrs.frozen(kw_only=True)
class NonBlockingOutcome:
    """What happened in :func:`check_non_blocking_tool`.

    Attributes:
        answers: The assistant's final transcripts, in order.
        results: Every tool result the agent sent (``ToolResultEvent.tool_result``).
        restarts: Connection restarts seen.
    """

    answers: tuple[str, ...]
    results: tuple[dict[str, Any], ...]
    restarts: int


async def check_non_blocking_tool(
    model: BidiModel,
    *,
    scheduling: Scheduling = "when_idle",
    restart: Callable[[], Any] | None = None,
    step_timeout: float = 30.0,
) -> NonBlockingOutcome:
    """Talk through a slow non-blocking tool with *model*; raise AssertionError on a defect.

    The script: the user asks for ``slow_lookup``; the tool reports progress
    ("half way") and then waits; meanwhile the user says something else and must get
    an answer; then the tool returns ``"42 tickets"`` and the assistant must answer
    with it. With *restart* (a callable ending the model's connection, e.g. a fake
    server's ``close_connections``), the connection is restarted while the tool runs,
    and the result must still be delivered and answered.

    Args:
        model: An unstarted model (e.g. pointed at its fake server).
        scheduling: The tool's scheduling (``"silent"`` expects no spoken answer).
        restart: Called (and awaited if it returns an awaitable) while the tool runs.
        step_timeout: Seconds each step may take.

    Returns:
        The transcripts and results, for further checks.
    """
    from ..agent import BidiAgent  # noqa: PLC0415 - the agent loads on use

    release = asyncio.Event()

    @tool(blocking=False, scheduling=scheduling)
    async def slow_lookup(progress: ToolProgress) -> str:
        """Look up something slowly."""
        progress("half way", scheduling="when_idle")
        await release.wait()
        return "42 tickets"

    agent = BidiAgent(model, tools=[slow_lookup])
    answers: list[str] = []
    results: list[dict[str, Any]] = []
    restarts = 0
    changed = asyncio.Event()

    async def read() -> None:
        nonlocal restarts
        async for event in agent.receive():
            if isinstance(event, BidiTranscriptStreamEvent):
                if event.role == "assistant" and event.is_final:
                    answers.append(event.text)
                    changed.set()
            elif isinstance(event, ToolResultEvent):
                results.append(dict(event.tool_result))
                changed.set()
            elif isinstance(event, BidiConnectionRestartEvent):
                restarts += 1
                changed.set()

    async def until(what: str, check: Callable[[], bool]) -> None:
        try:
            async with asyncio.timeout(step_timeout):
                while not check():
                    changed.clear()
                    await changed.wait()
        except TimeoutError:
            msg = f"Timed out waiting for {what}; answers so far: {answers!r}."
            raise AssertionError(msg) from None

    def said(text: str) -> bool:
        return any(text in answer for answer in answers)

    await agent.start()
    reader = asyncio.create_task(read(), name="bidi-scenario-reader")
    try:
        await agent.send("Please run slow_lookup for me.")
        await until("the progress update", lambda: said("slow_lookup reports half way"))
        await agent.send("Meanwhile, hello there.")
        await until("an answer while the tool runs", lambda: said("You said: Meanwhile"))
        if release.is_set():
            msg = "The tool finished early; the scenario needs it to be running."
            raise AssertionError(msg)
        if restart is not None:
            before = restarts
            outcome = restart()
            if asyncio.iscoroutine(outcome) or isinstance(outcome, asyncio.Future):
                await outcome
            await until("a connection restart", lambda: restarts > before)
        release.set()
        if scheduling == "silent":
            await until(
                "the silent result to be sent",
                lambda: any("42 tickets" in str(r.get("content")) for r in results),
            )
            await asyncio.sleep(0.3)
            if said("42 tickets"):
                msg = f"A silent result was answered: {answers!r}."
                raise AssertionError(msg)
        else:
            await until("the late result to be answered", lambda: said("42 tickets"))
            _check_order(answers)
        return NonBlockingOutcome(answers=tuple(answers), results=tuple(results), restarts=restarts)
    finally:
        release.set()
        await agent.stop()
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)


def _check_order(answers: list[str]) -> None:
    """The progress and the other turn were answered before the late result, which was exact."""
    if "slow_lookup returned 42 tickets." not in answers:
        msg = (
            f"The late result was not answered as 'slow_lookup returned 42 tickets.': {answers!r}."
        )
        raise AssertionError(msg)
    late = answers.index("slow_lookup returned 42 tickets.")
    before = answers[:late]
    if not any("You said: Meanwhile" in a for a in before) or (
        "slow_lookup reports half way." not in before
    ):
        msg = f"The talk did not go on while the tool ran: {answers!r}."
        raise AssertionError(msg)


@attrs.frozen(kw_only=True)
class FeaturesOutcome:
    """What happened in :func:`check_mcp_recording_telemetry`.

    Attributes:
        answers: The assistant's final transcripts, in order.
        span_names: Names of the finished spans.
        wav_frames: Frames in the recording's WAV.
        assistant_peak: Loudest sample of the WAV's right (assistant) channel.
        log_types: The ``type`` of every JSONL line.
    """

    answers: tuple[str, ...]
    span_names: tuple[str, ...]
    wav_frames: int
    assistant_peak: int
    log_types: tuple[str, ...]


async def check_mcp_recording_telemetry(
    model: BidiModel, directory: str, *, step_timeout: float = 30.0
) -> FeaturesOutcome:
    """One conversation with an MCP tool, recording and telemetry on; raise AssertionError.

    Starts :mod:`bidi_core.testing.mcp_server` over stdio as ``MCPTools``, records to
    *directory* and traces into in-memory OpenTelemetry exporters; the user asks for
    ``add {"a": 2, "b": 3}`` and the assistant must answer ``add returned 5.``. Needs
    ``bidi-core[mcp,otel]``.
    """
    import sys  # noqa: PLC0415
    from pathlib import Path  # noqa: PLC0415

    from opentelemetry.sdk.trace import TracerProvider  # noqa: PLC0415
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: PLC0415
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import (  # noqa: PLC0415
        InMemorySpanExporter,
    )

    from ..agent import BidiAgent  # noqa: PLC0415
    from ..mcp import MCPTools  # noqa: PLC0415
    from ..telemetry import Telemetry  # noqa: PLC0415

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tools = MCPTools([sys.executable, "-m", "bidi_core.testing.mcp_server"], include=["add"])
    agent = BidiAgent(
        model,
        tools=[tools],
        record_to=directory,
        telemetry=Telemetry(tracer_provider=provider),
    )
    answers: list[str] = []
    async with agent:
        await agent.send('Please add {"a": 2, "b": 3}')
        try:
            async with asyncio.timeout(step_timeout):
                async for event in agent.receive():
                    if (
                        isinstance(event, BidiTranscriptStreamEvent)
                        and event.role == "assistant"
                        and event.is_final
                    ):
                        answers.append(event.text)
                        if "returned" in event.text:
                            break
        except TimeoutError:
            msg = f"No answer with the MCP tool's result; answers: {answers!r}."
            raise AssertionError(msg) from None
    if "add returned 5." not in answers:
        msg = f"The MCP tool's result was not answered: {answers!r}."
        raise AssertionError(msg)
    count, right, log = _read_recording(Path(directory))
    return FeaturesOutcome(
        answers=tuple(answers),
        span_names=tuple(span.name for span in exporter.get_finished_spans()),
        wav_frames=count,
        assistant_peak=max((abs(sample) for sample in right), default=0),
        log_types=tuple(str(entry.get("type")) for entry in log),
    )


def _read_recording(directory: Any) -> tuple[int, Any, list[dict[str, Any]]]:
    """The WAV's frame count, its right channel and the JSONL lines of the one recording."""
    import array  # noqa: PLC0415
    import json  # noqa: PLC0415
    import wave  # noqa: PLC0415

    (wav_path,) = directory.glob("*.wav")
    (log_path,) = directory.glob("*.jsonl")
    with wave.open(str(wav_path), "rb") as wav:
        frames = array.array("h")
        frames.frombytes(wav.readframes(wav.getnframes()))
        count = wav.getnframes()
    log = [json.loads(line) for line in log_path.read_text().splitlines()]
    return count, frames[1::2], log
