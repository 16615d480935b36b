"""The core's fault matrix against the real google-genai stack and the fake Live service."""

from __future__ import annotations

import pytest

from bidi_core.testing.faults import FaultCase, fault_cases
from bidi_gemini_live import CAPABILITIES
from bidi_gemini_live.testing import serve

from .conftest import make_model


@pytest.mark.parametrize("case", fault_cases(CAPABILITIES), ids=str)
async def test_fault(case: FaultCase) -> None:
    """Each fault gives an event or a typed error, never a hang or a leaked task or socket."""
    await case.run(serve, make_model)
