"""Shared fixtures: a running fake Gemini Live service and models wired to it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from bidi_core._config import deep_merge
from bidi_core.testing.fuzz import load_hypothesis_profile
from bidi_gemini_live import GeminiLiveModel
from bidi_gemini_live.testing import FakeGeminiServer, serve

# The same hypothesis profiles as the core: ci (100 examples), thorough (1,000).
load_hypothesis_profile()


@pytest.fixture(autouse=True)
def _no_real_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test may rely on (or leak) real credentials from the environment."""
    for name in (
        "GOOGLE_API_KEY",
        "GEMINI_API_KEY",
        "GOOGLE_GENAI_USE_VERTEXAI",
        "GOOGLE_GENAI_USE_ENTERPRISE",
        "GOOGLE_CLOUD_PROJECT",
        "GOOGLE_CLOUD_LOCATION",
        "SSL_CERT_FILE",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
async def fake() -> AsyncIterator[FakeGeminiServer]:
    """A fake Gemini Live service with default options."""
    async with serve() as server:
        yield server


def make_model(server: FakeGeminiServer, **overrides: Any) -> GeminiLiveModel:
    """Return a model connected to *server*, with *overrides* merged into its kwargs."""
    return GeminiLiveModel(**deep_merge(server.model_kwargs, overrides))


@pytest.fixture
def factory(fake: FakeGeminiServer) -> Callable[..., GeminiLiveModel]:
    """Build models connected to the default fake."""
    return lambda **overrides: make_model(fake, **overrides)
