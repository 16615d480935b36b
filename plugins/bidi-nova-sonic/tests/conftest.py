"""Shared fixtures: a fake Bedrock endpoint and models wired to it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from bidi_core._config import deep_merge
from bidi_core.testing.fuzz import load_hypothesis_profile
from bidi_nova_sonic import NovaSonicModel
from bidi_nova_sonic.testing import FakeNovaServer, serve

# The same hypothesis profiles as the core: ci (100 examples), thorough (1,000).
load_hypothesis_profile()


@pytest.fixture
async def fake() -> AsyncIterator[FakeNovaServer]:
    """A running fake Nova Sonic endpoint with default behaviour."""
    async with serve() as server:
        yield server


@pytest.fixture
def make_model(fake: FakeNovaServer) -> Callable[..., NovaSonicModel]:
    """Build models wired to the fake (extra kwargs are deep-merged)."""

    def factory(**kwargs: Any) -> NovaSonicModel:
        return NovaSonicModel(**deep_merge(fake.model_kwargs, kwargs))

    return factory
