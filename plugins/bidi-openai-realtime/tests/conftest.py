"""Shared fixtures: a running fake GA Realtime server, checked for schema violations."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bidi_core.testing.fuzz import load_hypothesis_profile
from bidi_openai_realtime.testing import OpenAIRealtimeFake, serve

# The same hypothesis profiles as the core: ci (100 examples), thorough (1,000).
load_hypothesis_profile()


@pytest.fixture
async def fake() -> AsyncIterator[OpenAIRealtimeFake]:
    """A fake server; after the test, every frame both ways must have followed the GA schema."""
    async with serve() as server:
        yield server
    assert not server.invalid, f"client events broke the GA schema: {server.invalid[:3]}"
    assert not server.invalid_sent, f"the fake emitted bad events: {server.invalid_sent[:3]}"
