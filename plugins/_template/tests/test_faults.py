"""The example model reaches the defined outcome of every fault in the core's fault matrix."""

from __future__ import annotations

import pytest

from bidi_core.testing.faults import FaultCase, fault_cases
from bidi_example import CAPABILITIES, ExampleModel
from bidi_example.testing import ExampleFake, serve


@pytest.mark.parametrize("case", fault_cases(CAPABILITIES), ids=str)
async def test_fault(case: FaultCase) -> None:
    """Each fault gives an event or a typed error, never a hang or a leaked task or socket."""

    def make_model(fake: ExampleFake) -> ExampleModel:
        return ExampleModel(**fake.model_kwargs)

    await case.run(serve, make_model)
