"""Reliability mechanisms in the core: open_timeout, fault injection, a slow server."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bidi_core import BidiConnectionError, BidiModelBase, ConfigError, ModelState
from bidi_core.testing import AssistantConfig, Fault, ScriptedAssistant, TranscriptDelta, _assistant
from bidi_core.testing.faults import fault_cases


class Opening(BidiModelBase):
    """A model whose _open() the test controls."""

    provider = "opening"

    def __init__(self, behaviour: str) -> None:
        super().__init__(model_id="opening-1", config={})
        self.behaviour = behaviour
        self.closes: list[bool] = []
        self.cancelled = False

    async def _open(self, **kwargs: Any) -> None:
        if self.behaviour == "hang":
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                self.cancelled = True
                raise
        if self.behaviour == "raw_timeout":
            async with asyncio.timeout(0.01):
                await asyncio.Event().wait()

    async def _read(self) -> None:
        await asyncio.Event().wait()

    async def _send(self, event: Any) -> None:
        return None

    async def _close(self, *, graceful: bool) -> None:
        self.closes.append(graceful)


def test_open_timeout_defaults_to_30_seconds() -> None:
    """A model bounds start() by 30 s unless told otherwise."""
    assert Opening("ok").open_timeout == 30.0


async def test_open_timeout_bounds_start_and_releases() -> None:
    """A hanging _open() fails start() within open_timeout, retryable, and releases everything."""
    model = Opening("hang")
    model.open_timeout = 0.05
    with pytest.raises(BidiConnectionError, match=r"did not open within 0.05 s") as info:
        await model.start()
    assert info.value.retryable
    assert "open_timeout" in str(info.value)
    assert isinstance(info.value.__cause__, TimeoutError)
    assert model.cancelled
    assert model.closes == [False]
    assert model.state is ModelState.IDLE
    await model.stop()  # a no-op: nothing is open


async def test_open_timeout_none_waits() -> None:
    """open_timeout=None puts no bound on start() (the caller bounds it)."""
    model = Opening("hang")
    model.open_timeout = None
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.1):
            await model.start()
    assert model.state is ModelState.IDLE


async def test_a_raw_timeout_from_open_is_typed() -> None:
    """A plugin's own step timeout escaping _open() becomes a retryable BidiConnectionError."""
    model = Opening("raw_timeout")
    with pytest.raises(BidiConnectionError, match="timed out") as info:
        await model.start()
    assert info.value.retryable


async def _take(assistant: ScriptedAssistant, count: int) -> list[Any]:
    out = []
    async with asyncio.timeout(10):
        async for action in assistant.actions():
            out.append(action)
            if len(out) == count:
                return out
    return out


async def test_inject_fault_jumps_the_queue() -> None:
    """inject_fault() queues the Fault ahead of an answer that is still streaming."""
    assistant = ScriptedAssistant(AssistantConfig())
    assistant.start()
    assistant.user_text("tell me a story")
    first = await _take(assistant, 3)
    assistant.inject_fault("disconnect")
    (fault,) = await _take(assistant, 1)
    assert isinstance(fault, Fault)
    assert fault.kind == "disconnect"
    assert any(isinstance(a, TranscriptDelta) for a in first)


def test_inject_fault_rejects_unknown_kinds() -> None:
    """A typo in the fault kind is an error naming the kinds."""
    with pytest.raises(ValueError, match="disconnect"):
        ScriptedAssistant().inject_fault("explode")  # type: ignore[arg-type]


async def test_action_delay_slows_every_action(monkeypatch: pytest.MonkeyPatch) -> None:
    """AssistantConfig(action_delay_s=...) waits before every action, as a slow server would."""
    waits: list[float] = []
    real_sleep = asyncio.sleep

    async def sleep(delay: float) -> None:
        waits.append(delay)
        await real_sleep(0)

    monkeypatch.setattr(_assistant.asyncio, "sleep", sleep)
    assistant = ScriptedAssistant(AssistantConfig(action_delay_s=0.05))
    assistant.start()
    assistant.user_text("hi")
    await _take(assistant, 4)
    assert waits == [0.05] * 4


def test_action_delay_must_be_a_non_negative_number() -> None:
    """A negative delay is a ConfigError from from_options."""
    with pytest.raises(ConfigError, match="action_delay_s"):
        AssistantConfig.from_options({"action_delay_s": -1}, where="test")


def test_fault_cases_filters_by_capability_and_skip() -> None:
    """fault_cases() lists the seven faults, honours skip= and refuses unknown names."""
    names = [c.name for c in fault_cases()]
    assert names == [
        "disconnect",
        "malformed_frame",
        "provider_error",
        "time_limit",
        "slow_server",
        "slow_consumer",
        "stalled_handshake",
    ]
    assert "slow_server" not in [c.name for c in fault_cases(skip=["slow_server"])]
    with pytest.raises(ValueError, match="Unknown fault case"):
        fault_cases(skip=["slow_sever"])
