"""The core's fault matrix against the real client stack and the fake GA server."""

from __future__ import annotations

import pytest

from bidi_core.testing.faults import FaultCase, fault_cases
from bidi_openai_realtime import CAPABILITIES, OpenAIRealtimeModel
from bidi_openai_realtime.testing import OpenAIRealtimeFake, serve


@pytest.mark.parametrize("case", fault_cases(CAPABILITIES), ids=str)
async def test_fault(case: FaultCase) -> None:
    """Each fault gives an event or a typed error, never a hang or a leaked task or socket."""
    fakes: list[OpenAIRealtimeFake] = []

    def make_model(fake: OpenAIRealtimeFake) -> OpenAIRealtimeModel:
        fakes.append(fake)
        return OpenAIRealtimeModel(**fake.model_kwargs)

    await case.run(serve, make_model)
    for fake in fakes:
        assert not fake.invalid, f"client events broke the GA schema: {fake.invalid[:3]}"
        assert not fake.invalid_sent, f"the fake emitted bad events: {fake.invalid_sent[:3]}"
