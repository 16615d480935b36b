"""The core conformance suite through a gateway: remote -> bidi serve -> Gemini Live -> its fake.

The gateway (``bidi serve``, run in the test's event loop by
``bidi_core.serve.testing.gateway``) holds a ``BidiAgent`` over this plugin's model,
connected to the plugin's fake; the test talks to it as the ``remote`` model.
"""

from __future__ import annotations

import pytest

from bidi_core import default_registry
from bidi_core.serve.testing import gateway
from bidi_core.testing import AssistantConfig, ConformanceCase, conformance_cases
from bidi_gemini_live.testing import serve

REMOTE = default_registry().model_info("remote").capabilities
# The gateway's agent restarts the provider connection at a time limit itself (history
# and the unanswered turn replayed), so a gateway client never sees one; the core's
# tests/test_remote.py checks that restart through the gateway instead.
SKIP = ["time_limit_restart"]


@pytest.mark.parametrize("case", conformance_cases(REMOTE, skip=SKIP), ids=str)
async def test_conformance_through_the_gateway(case: ConformanceCase) -> None:
    """remote -> bidi serve -> gemini_live -> the fake passes each applicable case."""
    async with (
        serve(assistant_config=AssistantConfig(story_seconds=8.0)) as fake,
        gateway("gemini_live", model_kwargs=fake.model_kwargs) as gw,
    ):
        await case.run(gw.remote_model)
