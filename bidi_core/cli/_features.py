"""``--mcp``, ``--record`` and ``--otel``: agent features of ``bidi chat`` and ``bidi serve``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any, TextIO

__all__ = ["add_feature_options", "agent_features", "setup_otel"]


def add_feature_options(parser: argparse.ArgumentParser, *, serve: bool = False) -> None:
    """Add ``--mcp``, ``--record`` and ``--otel`` to *parser*."""
    per = "every session's agent" if serve else "the model"
    parser.add_argument(
        "--mcp",
        dest="mcp",
        action="append",
        default=[],
        metavar="SERVER",
        help=f"an MCP server whose tools {per} may call: a URL "
        "(http://127.0.0.1:8000/mcp, streamable HTTP) or a command in quotes "
        "('python my_server.py', stdio"
        + ("; one process per session" if serve else "")
        + "); repeatable; needs bidi-core[mcp]",
    )
    parser.add_argument(
        "--record",
        metavar="DIR",
        help="record "
        + ("each session" if serve else "the conversation")
        + " into DIR: a stereo WAV (user left, assistant right) and a JSONL event log",
    )
    parser.add_argument(
        "--otel",
        action="store_true",
        help="OpenTelemetry spans and metrics (also BIDI_OTEL=1); exported by the providers "
        "configured in this process, else OTLP/HTTP (OTEL_EXPORTER_OTLP_* variables) when "
        "its exporter is installed, else to stderr; needs bidi-core[otel]",
    )


def agent_features(
    mcp: Sequence[str], record: str | None, otel: bool
) -> tuple[list[Any], dict[str, Any]]:
    """Return the extra tools (``MCPTools``) and ``BidiAgent`` keywords for the options."""
    tools: list[Any] = []
    if mcp:
        from ..mcp import MCPTools  # noqa: PLC0415 - loaded only when asked for

        tools = [MCPTools(server) for server in mcp]
    kwargs: dict[str, Any] = {}
    if record:
        kwargs["record_to"] = record
    if otel:
        kwargs["telemetry"] = True
    return tools, kwargs


def setup_otel(err: TextIO | None = None) -> str:
    """Give the process tracer and meter providers if none is configured; say which.

    Keeps providers an application or ``opentelemetry-instrument`` set up. Otherwise it
    installs the SDK's, exporting over OTLP/HTTP when
    ``opentelemetry-exporter-otlp-proto-http`` is installed (configured by the standard
    ``OTEL_EXPORTER_OTLP_*`` variables), else to *err* (stderr) as JSON.

    Raises:
        MissingDependencyError: ``opentelemetry-sdk`` is not installed.
    """
    from .._errors import MissingDependencyError  # noqa: PLC0415

    try:
        from opentelemetry import metrics, trace  # noqa: PLC0415
        from opentelemetry.sdk.metrics import MeterProvider  # noqa: PLC0415
        from opentelemetry.sdk.metrics.export import (  # noqa: PLC0415
            ConsoleMetricExporter,
            PeriodicExportingMetricReader,
        )
        from opentelemetry.sdk.trace import TracerProvider  # noqa: PLC0415
        from opentelemetry.sdk.trace.export import (  # noqa: PLC0415
            BatchSpanProcessor,
            ConsoleSpanExporter,
        )
    except ImportError as exc:
        msg = f"--otel needs OpenTelemetry: pip install 'bidi-core[otel]' ({exc})."
        raise MissingDependencyError(msg) from exc
    if not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        return "OpenTelemetry: using the tracer and meter providers already configured."
    out = err or sys.stderr
    span_exporter: Any
    metric_exporter: Any
    try:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import (  # noqa: PLC0415
            OTLPMetricExporter,
        )
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # noqa: PLC0415
            OTLPSpanExporter,
        )
    except ImportError:
        span_exporter = ConsoleSpanExporter(out=out)
        metric_exporter = ConsoleMetricExporter(out=out)
        where = "stderr (install opentelemetry-exporter-otlp-proto-http for OTLP)"
    else:
        span_exporter = OTLPSpanExporter()
        metric_exporter = OTLPMetricExporter()
        where = "OTLP/HTTP (OTEL_EXPORTER_OTLP_* settings)"
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(BatchSpanProcessor(span_exporter))
    trace.set_tracer_provider(tracer_provider)
    metrics.set_meter_provider(
        MeterProvider(metric_readers=[PeriodicExportingMetricReader(metric_exporter)])
    )
    return f"OpenTelemetry: spans and metrics go to {where}."


def shutdown_otel() -> None:
    """Flush and shut down the SDK providers :func:`setup_otel` installed."""
    try:
        from opentelemetry import metrics, trace  # noqa: PLC0415
    except ImportError:
        return
    for provider in (trace.get_tracer_provider(), metrics.get_meter_provider()):
        shutdown = getattr(provider, "shutdown", None)
        if callable(shutdown):
            shutdown()
