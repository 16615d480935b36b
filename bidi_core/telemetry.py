"""OpenTelemetry traces and metrics of agents (extra ``bidi-core[otel]``).

Off unless enabled: ``BidiAgent(telemetry=True)`` (the global tracer and meter
providers), ``BidiAgent(telemetry=Telemetry(tracer_provider=..., meter_provider=...))``,
``BIDI_OTEL=1`` in the environment (every agent), or ``bidi chat/serve --otel``. When
off, this module is not even imported.

Spans (GenAI semantic conventions where they fit):

* ``invoke_agent bidi`` per conversation: ``gen_ai.operation.name=invoke_agent``,
  ``gen_ai.system`` / ``gen_ai.provider.name``, ``gen_ai.request.model``,
  ``gen_ai.conversation.id``, ``gen_ai.usage.input_tokens`` / ``output_tokens``.
* ``bidi.connection`` per model connection (a restart ends one and starts the next).
* ``bidi.response`` per model response: ``gen_ai.response.id``,
  ``gen_ai.response.finish_reasons``, its usage, ``bidi.interrupted``.
* ``execute_tool <name>`` per tool call: ``gen_ai.tool.name``, ``gen_ai.tool.call.id``,
  ``gen_ai.tool.type``; an error result sets the span status to error.

Metrics (meter ``bidi_core``): ``bidi.time_to_first_audio`` (s), ``bidi.interruption_to_silence``
(s), ``gen_ai.client.token.usage`` (by ``gen_ai.token.type``), ``bidi.tokens`` (by token
type and ``bidi.modality``), ``bidi.restarts``, ``bidi.audio.dropped`` (chunks) and
``bidi.tool.duration`` (s).

Attributes carry ids, names, counts and reasons only: never audio, transcripts, tool
arguments or results, credentials or endpoints.
"""

from __future__ import annotations

import os
from typing import Any

from ._errors import MissingDependencyError
from .agent._observer import AgentObserver, SessionInfo
from .events import (
    BidiAudioDroppedEvent,
    BidiAudioStreamEvent,
    BidiConnectionRestartEvent,
    BidiConnectionStartEvent,
    BidiEvent,
    BidiResponseCompleteEvent,
    BidiResponseStartEvent,
    BidiUsageEvent,
)
from .types import ToolResult, ToolUse

__all__ = ["ENV_VAR", "Telemetry", "enabled_by_env"]

#: ``BIDI_OTEL=1`` turns telemetry on for every agent that does not say otherwise.
ENV_VAR = "BIDI_OTEL"

#: Registry name -> ``gen_ai.system`` / ``gen_ai.provider.name`` value.
SYSTEMS = {
    "openai_realtime": "openai",
    "gemini_live": "gcp.gemini",
    "nova_sonic": "aws.bedrock",
}


def enabled_by_env() -> bool:
    """Whether ``BIDI_OTEL`` asks for telemetry (``1``, ``true``, ``yes``, ``on``)."""
    return os.environ.get(ENV_VAR, "").strip().lower() in ("1", "true", "yes", "on")


def _ns(t: float, session: SessionInfo) -> int:
    """A monotonic time as epoch nanoseconds (span timestamps)."""
    return int((session.started_at + (t - session.t0)) * 1e9)


class Telemetry(AgentObserver):
    """An observer that turns a conversation into OpenTelemetry spans and metrics.

    Args:
        tracer_provider: Where spans go (default: the global tracer provider).
        meter_provider: Where metrics go (default: the global meter provider).

    Raises:
        MissingDependencyError: ``opentelemetry-api`` is not installed.
    """

    def __init__(self, *, tracer_provider: Any = None, meter_provider: Any = None) -> None:
        try:
            from opentelemetry import metrics, trace  # noqa: PLC0415 - optional extra
        except ImportError as exc:
            msg = (
                "Telemetry needs OpenTelemetry: pip install 'bidi-core[otel]' "
                f"(could not import opentelemetry: {exc})."
            )
            raise MissingDependencyError(msg) from exc
        from ._version import __version__  # noqa: PLC0415

        self._trace = trace
        self._tracer = trace.get_tracer("bidi_core", __version__, tracer_provider=tracer_provider)
        meter = metrics.get_meter("bidi_core", __version__, meter_provider=meter_provider)
        self._ttfa = meter.create_histogram(
            "bidi.time_to_first_audio", unit="s", description="End of a user turn to first audio."
        )
        self._silence = meter.create_histogram(
            "bidi.interruption_to_silence",
            unit="s",
            description="Barge-in detected to every output cleared.",
        )
        self._usage = meter.create_histogram(
            "gen_ai.client.token.usage", unit="{token}", description="Tokens used."
        )
        self._tokens = meter.create_counter(
            "bidi.tokens", unit="{token}", description="Tokens by type and modality."
        )
        self._restarts = meter.create_counter(
            "bidi.restarts", unit="{restart}", description="Connection restarts."
        )
        self._dropped = meter.create_counter(
            "bidi.audio.dropped", unit="{chunk}", description="Output audio chunks dropped."
        )
        self._tool_duration = meter.create_histogram(
            "bidi.tool.duration", unit="s", description="Tool call duration."
        )
        self._session: SessionInfo | None = None
        self._root: Any = None
        self._connection: Any = None
        self._responses: dict[str, Any] = {}
        self._response_usage: dict[str, list[int]] = {}
        self._current: str | None = None
        self._tools: dict[str, tuple[Any, float]] = {}
        self._ttfa_seen = 0
        self._input_tokens = 0
        self._output_tokens = 0
        self._base: dict[str, Any] = {}

    def __repr__(self) -> str:
        return "<Telemetry>"

    # ------------------------------------------------------------- helpers

    def _start(self, name: str, t: float, parent: Any, **attributes: Any) -> Any:
        assert self._session is not None
        context = self._trace.set_span_in_context(parent) if parent is not None else None
        return self._tracer.start_span(
            name,
            context=context,
            start_time=_ns(t, self._session),
            attributes={**self._base, **{k: v for k, v in attributes.items() if v is not None}},
        )

    def _end(self, span: Any, t: float) -> None:
        if span is not None and self._session is not None:
            span.end(end_time=_ns(t, self._session))

    # --------------------------------------------------------------- hooks

    def on_start(self, session: SessionInfo) -> None:
        """Open the conversation span."""
        self._session = session
        self._input_tokens = self._output_tokens = 0
        self._responses.clear()
        self._response_usage.clear()
        self._tools.clear()
        self._current = None
        system = SYSTEMS.get(session.provider, session.provider)
        self._base = {"gen_ai.system": system, "gen_ai.provider.name": system}
        if session.model_id:
            self._base["gen_ai.request.model"] = session.model_id
        self._ttfa_seen = len(session.stats.time_to_first_audio_ms)
        self._root = self._start(
            "invoke_agent bidi",
            session.t0,
            None,
            **{
                "gen_ai.operation.name": "invoke_agent",
                "gen_ai.agent.name": "bidi",
                "gen_ai.conversation.id": session.session_id,
            },
        )

    def on_event(self, event: BidiEvent, t: float) -> None:
        """Spans for connections and responses; usage, restarts and dropped audio."""
        if isinstance(event, BidiConnectionStartEvent):
            self._end(self._connection, t)
            self._connection = self._start(
                "bidi.connection", t, self._root, **{"bidi.connection.id": event.connection_id}
            )
        elif isinstance(event, BidiConnectionRestartEvent):
            self._restarts.add(1, {**self._base, "bidi.restart.reason": event.reason})
            if self._connection is not None:
                self._connection.set_attribute("bidi.connection.end_reason", event.reason)
        elif isinstance(event, BidiResponseStartEvent):
            self._current = event.response_id
            self._responses[event.response_id] = self._start(
                "bidi.response",
                t,
                self._connection or self._root,
                **{"gen_ai.response.id": event.response_id},
            )
            self._response_usage[event.response_id] = [0, 0]
        elif isinstance(event, BidiAudioStreamEvent):
            self._first_audio()
        elif isinstance(event, BidiUsageEvent):
            self._on_usage(event)
        elif isinstance(event, BidiResponseCompleteEvent):
            span = self._responses.pop(event.response_id, None)
            usage = self._response_usage.pop(event.response_id, [0, 0])
            if span is not None:
                span.set_attribute("gen_ai.response.finish_reasons", [event.stop_reason])
                span.set_attribute("gen_ai.usage.input_tokens", usage[0])
                span.set_attribute("gen_ai.usage.output_tokens", usage[1])
                span.set_attribute("bidi.interrupted", event.stop_reason == "interrupted")
                self._end(span, t)
            if self._current == event.response_id:
                self._current = None
        elif isinstance(event, BidiAudioDroppedEvent):
            self._dropped.add(event.dropped_chunks, self._base)

    def _first_audio(self) -> None:
        assert self._session is not None
        values = self._session.stats.time_to_first_audio_ms
        while self._ttfa_seen < len(values):
            self._ttfa.record(values[self._ttfa_seen] / 1000.0, self._base)
            self._ttfa_seen += 1

    def _on_usage(self, event: BidiUsageEvent) -> None:
        self._input_tokens += event.input_tokens
        self._output_tokens += event.output_tokens
        if self._current in self._response_usage:
            usage = self._response_usage[self._current]
            usage[0] += event.input_tokens
            usage[1] += event.output_tokens
        for kind, count in (("input", event.input_tokens), ("output", event.output_tokens)):
            if count:
                self._usage.record(count, {**self._base, "gen_ai.token.type": kind})
        for kind, details in (("input", event.input_details), ("output", event.output_details)):
            for modality, count in details.items():
                if count:
                    self._tokens.add(
                        count,
                        {**self._base, "gen_ai.token.type": kind, "bidi.modality": modality},
                    )

    def on_tool_start(self, tool_use: ToolUse, t: float) -> None:
        """Open an ``execute_tool`` span under the response that made the call."""
        name = str(tool_use.get("name", ""))
        parent = self._responses.get(self._current or "") or self._connection or self._root
        span = self._start(
            f"execute_tool {name}",
            t,
            parent,
            **{
                "gen_ai.operation.name": "execute_tool",
                "gen_ai.tool.name": name,
                "gen_ai.tool.call.id": tool_use["toolUseId"],
                "gen_ai.tool.type": "function",
            },
        )
        self._tools[tool_use["toolUseId"]] = (span, t)

    def on_tool_end(self, tool_use: ToolUse, result: ToolResult, t: float) -> None:
        """End the tool's span and record its duration."""
        span, started = self._tools.pop(tool_use["toolUseId"], (None, t))
        status = result.get("status", "success")
        if span is not None:
            if status == "error":
                span.set_status(self._trace.Status(self._trace.StatusCode.ERROR))
                span.set_attribute("error.type", "tool_error")
            self._end(span, t)
        self._tool_duration.record(
            max(0.0, t - started),
            {**self._base, "gen_ai.tool.name": str(tool_use.get("name", "")), "status": status},
        )

    def on_interruption(self, response_id: str | None, silent_after_s: float, t: float) -> None:
        """Record interruption-to-silence."""
        self._silence.record(silent_after_s, self._base)
        span = self._responses.get(response_id or "")
        if span is not None:
            span.add_event("bidi.interruption", timestamp=_ns(t, self._session))  # type: ignore[arg-type]

    def on_stop(self, t: float) -> None:
        """End every open span (responses, tools, connection, conversation)."""
        for span, _ in self._tools.values():
            self._end(span, t)
        for span in self._responses.values():
            self._end(span, t)
        self._tools.clear()
        self._responses.clear()
        self._end(self._connection, t)
        self._connection = None
        if self._root is not None:
            self._root.set_attribute("gen_ai.usage.input_tokens", self._input_tokens)
            self._root.set_attribute("gen_ai.usage.output_tokens", self._output_tokens)
            self._end(self._root, t)
        self._root = None
