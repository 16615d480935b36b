"""The example model passes the bidi conformance suite against its fake service."""

from __future__ import annotations

import pytest

from bidi_core.testing import AssistantConfig, ConformanceCase, conformance_cases
from bidi_example import CAPABILITIES, ExampleModel
from bidi_example.testing import serve

# Shorter stories keep barge-in and stop-mid-stream cases quick.
CONFIG = AssistantConfig(story_seconds=8.0)


@pytest.mark.parametrize("case", conformance_cases(CAPABILITIES), ids=str)
async def test_conformance(case: ConformanceCase) -> None:
    """The model follows every rule of the bidi model contract (plain TCP)."""
    async with serve(assistant_config=CONFIG) as fake:
        await case.run(lambda: ExampleModel(**fake.model_kwargs))


@pytest.mark.parametrize(
    "case", conformance_cases(CAPABILITIES, skip=["lifecycle", "receive_ends_on_stop"]), ids=str
)
async def test_conformance_over_tls(case: ConformanceCase) -> None:
    """The same rules hold over TLS with a throwaway CA."""
    async with serve(assistant_config=CONFIG, tls=True) as fake:
        await case.run(lambda: ExampleModel(**fake.model_kwargs))
