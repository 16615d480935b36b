"""The ``remote`` model against a real ``bidi serve`` gateway: the conformance suite and more."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest

from bidi_core import (
    BidiConnectionError,
    BidiTextInputEvent,
    ModelCapabilities,
    default_registry,
    get_model,
    tool,
)
from bidi_core._remote_hooks import REMOTE_CAPABILITIES
from bidi_core.events import (
    BidiConnectionRestartEvent,
    BidiConnectionStartEvent,
    BidiOutputEvent,
    BidiResponseCompleteEvent,
    BidiTranscriptStreamEvent,
    ToolResultEvent,
    ToolUseStreamEvent,
)
from bidi_core.remote import RemoteModel
from bidi_core.serve.testing import Gateway, gateway
from bidi_core.simulated import SimulatedModel
from bidi_core.testing import ConformanceCase, conformance_cases

#: The gateway's agent restarts the provider connection itself (with history and the
#: unanswered turn), so its client never sees a time limit: tested below instead.
SKIPPED = ["time_limit_restart"]


@pytest.fixture
async def simulated_gateway() -> AsyncIterator[Gateway]:
    """A gateway in front of the simulated model."""
    async with gateway("simulated", model_kwargs={"provider_config": {"seed": 7}}) as gw:
        yield gw


@pytest.mark.parametrize("case", conformance_cases(REMOTE_CAPABILITIES, skip=SKIPPED), ids=str)
async def test_remote_through_the_gateway_conforms(
    case: ConformanceCase, simulated_gateway: Gateway
) -> None:
    """remote -> bidi serve -> simulated passes each applicable conformance case."""
    await case.run(simulated_gateway.remote_model)


def test_remote_is_registered_through_the_entry_point() -> None:
    """get_model('remote', ...) works from the installed entry point, as simulated does."""
    info = default_registry().model_info("remote")
    assert info.distribution == "bidi-core"
    assert info.capabilities == REMOTE_CAPABILITIES
    model = get_model("remote", client_config={"url": "ws://127.0.0.1:8765/v1/session"})
    assert isinstance(model, RemoteModel)


async def _until_complete(model: RemoteModel) -> list[BidiOutputEvent]:
    seen: list[BidiOutputEvent] = []
    async for event in model.receive():
        seen.append(event)
        if isinstance(event, BidiResponseCompleteEvent) and event.stop_reason == "complete":
            return seen
    raise AssertionError("receive() ended")


async def test_the_gateways_time_limit_restart_is_seamless(simulated_gateway: Gateway) -> None:
    """A provider time limit behind the gateway: a restart event, and the talk goes on."""
    model = simulated_gateway.remote_model()
    await model.start()
    try:
        await model.send(BidiTextInputEvent(text="remember the tulips"))
        await _until_complete(model)
        (server_model,) = simulated_gateway.models
        assert isinstance(server_model, SimulatedModel)
        assert server_model.assistant is not None
        server_model.assistant.inject_fault("time_limit")
        await model.send(BidiTextInputEvent(text="recall"))
        seen = await _until_complete(model)
    finally:
        await model.stop()
    assert any(isinstance(e, BidiConnectionRestartEvent) for e in seen)
    assert any(isinstance(e, BidiConnectionStartEvent) for e in seen)  # the new connection
    finals = [e.text for e in seen if isinstance(e, BidiTranscriptStreamEvent) and e.is_final]
    assert finals[-1] == "Earlier you said: remember the tulips."


@tool
def get_weather(city: str) -> str:
    """Get the weather.

    Args:
        city: The city.
    """
    return f"rainy in {city}"


async def test_the_gateways_tools_run_and_show_up_in_receive() -> None:
    """A server tool's call and result come through receive(); the answer uses the result."""
    async with gateway("simulated", tool_functions=[get_weather]) as gw:
        model = gw.remote_model()
        await model.start()
        try:
            await model.send(BidiTextInputEvent(text='get_weather {"city": "oslo"}'))
            seen = await _until_complete(model)
        finally:
            await model.stop()
    uses = [e for e in seen if isinstance(e, ToolUseStreamEvent)]
    results = [e for e in seen if isinstance(e, ToolResultEvent)]  # type: ignore[comparison-overlap]
    assert [u.tool_use["input"] for u in uses] == [{"city": "oslo"}]
    assert [r.tool_result["content"] for r in results] == [[{"text": "rainy in oslo"}]]
    assert model.capabilities.tools is False


async def test_settings_the_gateway_cannot_take_are_not_sent_and_said_so(
    simulated_gateway: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    """A system prompt, tools or history passed to start() are logged as not sent."""
    model = simulated_gateway.remote_model()
    with caplog.at_level(logging.WARNING, logger="bidi_core.remote"):
        await model.start(
            system_prompt="be a pirate",
            messages=[{"role": "user", "content": [{"text": "hi"}]}],
        )
        await model.stop()
    (record,) = [r for r in caplog.records if r.name == "bidi_core.remote"]
    assert "system prompt and history" in record.getMessage()
    assert "not sent" in record.getMessage()


async def test_capabilities_follow_the_gateways_model() -> None:
    """After start(), rates and modalities are the gateway model's; tools stay False."""
    async with gateway(
        "simulated",
        model_kwargs={"provider_config": {"audio": {"input_sample_rate": 24000}}},
    ) as gw:
        model = gw.remote_model()
        assert model.capabilities == REMOTE_CAPABILITIES
        await model.start()
        caps = model.capabilities
        await model.stop()
    assert isinstance(caps, ModelCapabilities)
    assert caps.input_sample_rates == (24000,)
    assert caps.output_sample_rate == 24000
    assert caps.tools is False
    assert caps.output_truncation is True


async def test_a_gateway_that_is_not_running_is_a_retryable_connection_error() -> None:
    """Nothing listening: start() raises a retryable BidiConnectionError naming the URL."""
    async with gateway("simulated") as gw:
        url = gw.ws_url
    model = RemoteModel(client_config={"url": url, "open_timeout": 5})
    with pytest.raises(BidiConnectionError, match="Could not connect") as failed:
        await model.start()
    assert failed.value.retryable
    assert url in str(failed.value)
