"""The core conformance suite, run against OpenAIRealtimeModel wired to the fake server."""

from __future__ import annotations

import pytest

from bidi_core.testing import ConformanceCase, conformance_cases
from bidi_openai_realtime import CAPABILITIES, OpenAIRealtimeModel
from bidi_openai_realtime.testing import OpenAIRealtimeFake


@pytest.mark.parametrize("case", conformance_cases(CAPABILITIES), ids=str)
async def test_conformance(case: ConformanceCase, fake: OpenAIRealtimeFake) -> None:
    """Each applicable conformance case passes against the fake GA server."""
    await case.run(lambda: OpenAIRealtimeModel(**fake.model_kwargs))
