"""The bidi conformance suite, run against the real client stack and the fake endpoint."""

from __future__ import annotations

import pytest

from bidi_core.testing import ConformanceCase, conformance_cases
from bidi_nova_sonic import CAPABILITIES, NOVA_2_MODEL_ID
from bidi_nova_sonic.testing import serve

CASES = conformance_cases(CAPABILITIES)


@pytest.mark.parametrize("model_id", ["amazon.nova-sonic-v1:0", NOVA_2_MODEL_ID])
@pytest.mark.parametrize("case", CASES, ids=str)
async def test_conformance(case: ConformanceCase, model_id: str) -> None:
    """Each conformance case passes for Nova Sonic v1 and Nova 2 Sonic against the fake."""
    from bidi_nova_sonic import NovaSonicModel

    async with serve() as fake:
        await case.run(lambda: NovaSonicModel(model_id=model_id, **fake.model_kwargs))
        assert fake.protocol_errors == []
