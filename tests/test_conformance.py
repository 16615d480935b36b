"""The simulated model passes the whole conformance suite."""

from __future__ import annotations

import pytest

from bidi_core.simulated import SimulatedModel
from bidi_core.testing import ConformanceCase, check_model, conformance_cases


def _factory() -> SimulatedModel:
    return SimulatedModel(provider_config={"seed": 7})


@pytest.mark.parametrize("case", conformance_cases(), ids=str)
async def test_simulated_model_conforms(case: ConformanceCase) -> None:
    """The simulated model follows every rule of the model contract."""
    await case.run(_factory)


async def test_check_model_reports_failures() -> None:
    """check_model() names each failed case when a model breaks the contract."""

    class Mute(SimulatedModel):
        async def _send(self, event):  # type: ignore[no-untyped-def]
            return None  # swallows input: every turn times out

    from bidi_core.testing import conformance as conformance_module

    original = conformance_module.STEP_TIMEOUT
    conformance_module.STEP_TIMEOUT = 0.3
    try:
        with pytest.raises(AssertionError, match="text_turn"):
            await check_model(Mute, skip=["lifecycle", "receive_ends_on_stop"])
    finally:
        conformance_module.STEP_TIMEOUT = original


def test_unknown_skip_name_is_rejected() -> None:
    """A typo in skip= is an error, not a silently skipped case."""
    with pytest.raises(ValueError, match="Unknown conformance case"):
        conformance_cases(skip=["text_trun"])
