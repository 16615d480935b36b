"""The core conformance suite, run against the model wired to the fake Gemini Live service."""

from __future__ import annotations

import pytest

from bidi_core.testing import AssistantConfig, ConformanceCase, conformance_cases
from bidi_gemini_live import CAPABILITIES
from bidi_gemini_live.testing import serve

from .conftest import make_model


@pytest.mark.parametrize("case", conformance_cases(CAPABILITIES), ids=str)
async def test_conformance(case: ConformanceCase) -> None:
    """The Gemini Live model passes each applicable conformance case against the fake."""
    async with serve(assistant_config=AssistantConfig(story_seconds=8.0)) as fake:
        await case.run(lambda: make_model(fake))


TEXT_CASES = ["text_turn", "usage_incremental", "tool_round_trip", "time_limit_restart"]


@pytest.mark.parametrize(
    "case",
    [c for c in conformance_cases(CAPABILITIES) if c.name in TEXT_CASES],
    ids=str,
)
async def test_conformance_text_modality(case: ConformanceCase) -> None:
    """With response_modalities ['TEXT'] the text parts carry the same normalized turn."""
    async with serve() as fake:
        await case.run(lambda: make_model(fake, provider_config={"response_modalities": ["TEXT"]}))
