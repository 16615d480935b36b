"""The default path: ``get_model("gemini_live")`` with only what a user sets in the env.

The fake serves TLS with a certificate for ``generativelanguage.googleapis.com`` from a
throwaway CA; the test maps that name to the fake on 127.0.0.1 (any other name fails
to resolve) and trusts the CA through ``SSL_CERT_FILE``. No ``http_options``: the
google-genai client builds its default URL, as it does for a user.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from bidi_core import (
    AuthenticationError,
    BidiTextInputEvent,
    BidiTranscriptStreamEvent,
    MissingCredentialsError,
    get_model,
)
from bidi_core.testing import resolve_to_loopback
from bidi_gemini_live.testing import FakeGeminiServer, serve

KEY = "AIzaSy-test-default-path-key-0001"
HOST = "generativelanguage.googleapis.com"


@pytest.fixture
async def keyed_fake() -> AsyncIterator[FakeGeminiServer]:
    """A fake accepting only KEY."""
    async with serve(api_keys=[KEY]) as fake:
        yield fake


@pytest.fixture
def user_env(keyed_fake: FakeGeminiServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """What a user sets: the API key, and trust for the (throwaway) CA."""
    monkeypatch.setenv("GOOGLE_API_KEY", KEY)
    monkeypatch.setenv("SSL_CERT_FILE", keyed_fake.ca_path)
    for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.usefixtures("user_env")
async def test_default_url_reaches_the_service(keyed_fake: FakeGeminiServer) -> None:
    """With only GOOGLE_API_KEY set, the default generativelanguage URL connects and talks."""
    model = get_model("gemini_live")
    with resolve_to_loopback({HOST: keyed_fake.port}):
        await model.start(system_prompt="Be brief.")
        try:
            await model.send(BidiTextInputEvent(text="hello"))
            async with asyncio.timeout(30):
                async for event in model.receive():
                    if (
                        isinstance(event, BidiTranscriptStreamEvent)
                        and event.is_final
                        and event.role == "assistant"
                    ):
                        answer = event.text
                        break
        finally:
            await model.stop()
    assert answer == "You said: hello."
    headers = keyed_fake.headers[0]
    assert headers["host"] == HOST
    assert headers["x-goog-api-key"] == KEY
    assert keyed_fake.setups[0]["model"] == f"models/{model.model_id}"


@pytest.mark.usefixtures("user_env")
async def test_a_bad_key_is_a_clear_authentication_error(
    keyed_fake: FakeGeminiServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A key the service rejects (close 1007 "API key not valid") is a non-retryable auth error."""
    monkeypatch.setenv("GOOGLE_API_KEY", "AIzaSy-wrong-key-123456")
    model = get_model("gemini_live")
    with resolve_to_loopback({HOST: keyed_fake.port}), pytest.raises(AuthenticationError) as info:
        await model.start()
    err = info.value
    assert err.code == 1007
    assert not err.retryable
    assert "GOOGLE_API_KEY" in str(err)
    assert "API key not valid" in str(err)
    assert "AIzaSy-wrong-key-123456" not in str(err)


async def test_no_key_fails_fast_naming_what_to_set() -> None:
    """Without a key anywhere, start() raises MissingCredentialsError at once, before any I/O."""
    model = get_model("gemini_live")
    began = time.monotonic()
    with resolve_to_loopback({}), pytest.raises(MissingCredentialsError) as info:
        await model.start()
    took = time.monotonic() - began
    assert info.value.env_vars == ("GOOGLE_API_KEY", "GEMINI_API_KEY")
    assert "GOOGLE_API_KEY" in str(info.value)
    assert "GOOGLE_CLOUD_PROJECT" in str(info.value)  # the Vertex AI way is named too
    assert took < 1.0, f"took {took:.2f} s"  # a bound that fails on a hang, not a benchmark
