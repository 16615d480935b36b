"""Models with the same client_config share one google-genai client (closed with the last)."""

from __future__ import annotations

from collections.abc import Callable

from bidi_gemini_live import GeminiLiveModel, _clients
from bidi_gemini_live.testing import FakeGeminiServer


async def test_models_with_one_config_share_a_client(
    fake: FakeGeminiServer, factory: Callable[..., GeminiLiveModel]
) -> None:
    """Two live sessions use one genai.Client; it is closed when the last one stops."""
    first, second = factory(), factory()
    await first.start()
    await second.start()
    client = first._client
    assert client is not None
    assert second._client is client
    assert len(fake.setups) == 2  # a WebSocket each
    await first.stop()
    assert len(_clients._shared) == 1  # still in use by the second session
    await second.stop()
    assert _clients._shared == {}


async def test_a_different_config_gets_its_own_client(
    fake: FakeGeminiServer, factory: Callable[..., GeminiLiveModel]
) -> None:
    """Another API key is another client."""
    first = factory()
    second = factory(client_config={"api_key": "another-fake-key"})
    await first.start()
    await second.start()
    assert first._client is not second._client
    await first.stop()
    await second.stop()
    assert _clients._shared == {}
