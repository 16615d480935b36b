"""The core's fault matrix against the real Bedrock SDK stack and the fake endpoint."""

from __future__ import annotations

import pytest

from bidi_core.testing.faults import FaultCase, fault_cases
from bidi_nova_sonic import CAPABILITIES, NOVA_2_MODEL_ID, NovaSonicModel
from bidi_nova_sonic.testing import FakeNovaServer, serve


@pytest.mark.parametrize("case", fault_cases(CAPABILITIES), ids=str)
async def test_fault(case: FaultCase) -> None:
    """Each fault gives an event or a typed error, never a hang or a leaked task or socket."""

    def make_model(fake: FakeNovaServer) -> NovaSonicModel:
        return NovaSonicModel(model_id=NOVA_2_MODEL_ID, **fake.model_kwargs)

    await case.run(serve, make_model)
