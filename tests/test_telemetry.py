"""OpenTelemetry spans and metrics of a conversation, read with the SDK's in-memory exporters."""

from __future__ import annotations

import asyncio
import base64

import pytest

pytest.importorskip("opentelemetry.sdk")

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from bidi_core import BidiAgent, get_model, tool
from bidi_core.events import BidiAudioInputEvent, BidiTextInputEvent
from bidi_core.telemetry import Telemetry
from bidi_core.testing import speak


@tool
def get_secret_weather(city: str) -> str:
    """Weather for a city."""
    if city == "Atlantis":
        raise ValueError("no such city")
    return f"sunny in {city}"


def providers():
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    return exporter, tracer_provider, reader, meter_provider


def metric_points(reader) -> dict[str, list]:
    out: dict[str, list] = {}
    data = reader.get_metrics_data()
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                out.setdefault(metric.name, []).extend(metric.data.data_points)
    return out


async def until(agent, predicate, limit=20.0):
    async with asyncio.timeout(limit):
        async for event in agent.receive():
            if predicate(event):
                return


async def test_spans_and_metrics_of_a_conversation():
    """Session, connection, response and tool spans with GenAI attributes; the metrics."""
    exporter, tracer_provider, reader, meter_provider = providers()
    model = get_model("simulated", provider_config={"pace": 1.0, "story_pace": 1.0})
    telemetry = Telemetry(tracer_provider=tracer_provider, meter_provider=meter_provider)
    agent = BidiAgent(model, tools=[get_secret_weather], telemetry=telemetry)
    async with agent:
        await agent.send('get_secret_weather {"city": "Paris"}')
        await until(agent, lambda e: e.type == "bidi_transcript_stream" and e.is_final)
        await until(agent, lambda e: e.type == "bidi_response_complete")
        await agent.send('get_secret_weather {"city": "Atlantis"}')
        await until(agent, lambda e: e.type == "bidi_transcript_stream" and e.is_final)
        await until(agent, lambda e: e.type == "bidi_response_complete")
        # A barge-in on a story, then a restart.
        await agent.send("Tell me a story.")
        await until(agent, lambda e: e.type == "bidi_audio_stream")
        pcm = speak("stop", 16000)
        for offset in range(0, len(pcm), 640):
            await agent.send(
                BidiAudioInputEvent(audio=pcm[offset : offset + 640], sample_rate=16000)
            )
        await until(agent, lambda e: e.type == "bidi_interruption")
        await model.send(BidiTextInputEvent(text="[fault:time_limit]"))
        await until(agent, lambda e: e.type == "bidi_connection_start")
    spans = exporter.get_finished_spans()
    by_name: dict[str, list] = {}
    for span in spans:
        by_name.setdefault(span.name, []).append(span)
    (session,) = by_name["invoke_agent bidi"]
    assert session.attributes["gen_ai.operation.name"] == "invoke_agent"
    assert session.attributes["gen_ai.system"] == "simulated"
    assert session.attributes["gen_ai.request.model"] == model.model_id
    assert session.attributes["gen_ai.usage.output_tokens"] == agent.stats.output_tokens > 0
    connections = by_name["bidi.connection"]
    assert len(connections) == 2  # the restart started a second one
    assert all(c.parent.span_id == session.context.span_id for c in connections)
    responses = by_name["bidi.response"]
    assert {c.parent.span_id for c in responses} <= {c.context.span_id for c in connections}
    reasons = [r.attributes["gen_ai.response.finish_reasons"][0] for r in responses]
    assert {"tool_use", "complete", "interrupted"} <= set(reasons)
    assert any(r.attributes["gen_ai.usage.output_tokens"] > 0 for r in responses)
    tools = by_name["execute_tool get_secret_weather"]
    assert len(tools) == 2
    assert {t.attributes["gen_ai.tool.name"] for t in tools} == {"get_secret_weather"}
    assert sorted(t.status.status_code.name for t in tools) == ["ERROR", "UNSET"]
    assert all(t.parent.span_id in {r.context.span_id for r in responses} for t in tools)
    assert any(t.status.status_code is StatusCode.ERROR for t in tools)
    # Never a payload, transcript, argument or result in an attribute.
    values = [str(v) for s in spans for v in (s.attributes or {}).values()]
    for secret in ("Paris", "sunny", "Atlantis", "story", base64.b64encode(pcm[:30]).decode()):
        assert not any(secret in v for v in values), secret
    points = metric_points(reader)
    for name in (
        "bidi.time_to_first_audio",
        "bidi.interruption_to_silence",
        "gen_ai.client.token.usage",
        "bidi.tokens",
        "bidi.restarts",
        "bidi.tool.duration",
    ):
        assert points.get(name), name
    assert sum(p.value for p in points["bidi.restarts"]) == 1
    token_types = {p.attributes["gen_ai.token.type"] for p in points["gen_ai.client.token.usage"]}
    assert token_types == {"input", "output"}
    modalities = {p.attributes["bidi.modality"] for p in points["bidi.tokens"]}
    assert "audio" in modalities


async def test_dropped_audio_is_counted():
    """Audio dropped under back-pressure shows up in bidi.audio.dropped."""
    _exporter, tracer_provider, reader, meter_provider = providers()
    model = get_model("simulated")
    telemetry = Telemetry(tracer_provider=tracer_provider, meter_provider=meter_provider)
    agent = BidiAgent(model, telemetry=telemetry, max_queued_audio_ms=100)
    async with agent:
        await agent.send("Tell me a story, a long one please.")
        await asyncio.sleep(1.0)  # nobody reads: the queue overflows
        await until(agent, lambda e: e.type == "bidi_audio_dropped")
    points = metric_points(reader)
    assert (
        sum(p.value for p in points["bidi.audio.dropped"]) == agent.stats.dropped_audio_chunks > 0
    )


def test_bidi_otel_env_turns_telemetry_on(monkeypatch):
    """BIDI_OTEL=1 gives every agent a Telemetry observer; telemetry=False overrides it."""
    monkeypatch.setenv("BIDI_OTEL", "1")
    assert any(isinstance(o, Telemetry) for o in BidiAgent("simulated")._observers.items)
    assert not BidiAgent("simulated", telemetry=False)._observers.items
    monkeypatch.delenv("BIDI_OTEL")
    assert not BidiAgent("simulated")._observers.items
