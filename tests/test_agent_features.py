"""MCP tools, recording and telemetry together with the simulated model."""

from __future__ import annotations

import pytest

pytest.importorskip("mcp")
pytest.importorskip("opentelemetry.sdk")

from bidi_core import get_model
from bidi_core.testing.scenarios import check_mcp_recording_telemetry


async def test_mcp_tool_recording_and_telemetry_with_the_simulated_model(tmp_path):
    """An MCP tool answers; the talk is recorded and traced."""
    outcome = await check_mcp_recording_telemetry(get_model("simulated"), str(tmp_path))
    assert "execute_tool add" in outcome.span_names
    assert "invoke_agent bidi" in outcome.span_names
    assert outcome.assistant_peak > 1000
    assert "tool_use_stream" in outcome.log_types
    assert "tool_result" in outcome.log_types
