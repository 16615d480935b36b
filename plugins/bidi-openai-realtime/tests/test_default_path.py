"""The default path: ``get_model("openai_realtime")`` with only what a user sets in the env.

The fake serves ``wss://`` with a certificate for ``api.openai.com`` from a throwaway CA;
the test maps that name to the fake on 127.0.0.1 (any other name fails to resolve) and
trusts the CA through ``SSL_CERT_FILE``. No ``base_url``, no ``ssl``: what a user gets.
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
from bidi_openai_realtime.testing import OpenAIRealtimeFake, serve

KEY = "sk-test-default-path-key-0001"


@pytest.fixture
async def tls_fake() -> AsyncIterator[OpenAIRealtimeFake]:
    """A wss:// fake answering as api.openai.com, accepting only KEY."""
    async with serve(tls=True, api_key=KEY) as fake:
        yield fake


@pytest.fixture
def user_env(tls_fake: OpenAIRealtimeFake, monkeypatch: pytest.MonkeyPatch) -> None:
    """What a user sets: the API key, and trust for the (throwaway) CA."""
    assert tls_fake.ca_path is not None
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("SSL_CERT_FILE", tls_fake.ca_path)
    for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


async def _first_answer(model: object) -> str:
    async for event in model.receive():  # type: ignore[attr-defined]
        if isinstance(event, BidiTranscriptStreamEvent) and event.is_final:
            return event.text
    return ""


@pytest.mark.usefixtures("user_env")
async def test_default_url_reaches_the_service_over_tls(tls_fake: OpenAIRealtimeFake) -> None:
    """With only OPENAI_API_KEY set, the default wss://api.openai.com URL connects and talks.

    Regression: the plugin passed ``ssl=None`` to websockets for the default ``wss://``
    URL, so the real service could not be reached at all.
    """
    model = get_model("openai_realtime")
    with resolve_to_loopback({"api.openai.com": tls_fake.port}):
        await model.start(system_prompt="Be brief.")
        try:
            await model.send(BidiTextInputEvent(text="hello"))
            async with asyncio.timeout(30):
                answer = await _first_answer(model)
        finally:
            await model.stop()
    assert answer == "You said: hello."
    record = tls_fake.connections[0]
    assert record.headers["host"] == "api.openai.com"
    assert record.path == "/v1/realtime"
    assert record.query == {"model": "gpt-realtime"}
    assert record.headers["authorization"] == f"Bearer {KEY}"


@pytest.mark.usefixtures("user_env")
async def test_a_bad_key_is_a_clear_authentication_error(
    tls_fake: OpenAIRealtimeFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A key the service rejects (HTTP 401) is a non-retryable AuthenticationError with the fix."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong-key-123456789")
    model = get_model("openai_realtime")
    with (
        resolve_to_loopback({"api.openai.com": tls_fake.port}),
        pytest.raises(AuthenticationError) as info,
    ):
        await model.start()
    err = info.value
    assert err.code == 401
    assert not err.retryable
    assert "OPENAI_API_KEY" in str(err)
    assert "Incorrect API key provided" in str(err)
    assert "sk-wrong-key-123456789" not in str(err)


async def test_no_key_fails_fast_naming_what_to_set(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a key anywhere, start() raises MissingCredentialsError at once, before any I/O."""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    model = get_model("openai_realtime")
    began = time.monotonic()
    with resolve_to_loopback({}), pytest.raises(MissingCredentialsError) as info:
        await model.start()
    took = time.monotonic() - began
    assert info.value.env_vars == ("OPENAI_API_KEY",)
    assert info.value.config_keys == ("client_config.api_key",)
    assert "OPENAI_API_KEY" in str(info.value)
    assert took < 1.0, f"took {took:.2f} s"  # a bound that fails on a hang, not a benchmark


async def test_an_untrusted_certificate_is_a_connection_error(
    tls_fake: OpenAIRealtimeFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without trust for the CA the handshake fails with a BidiConnectionError, no traceback."""
    from bidi_core import BidiConnectionError

    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    model = get_model("openai_realtime")
    with (
        resolve_to_loopback({"api.openai.com": tls_fake.port}),
        pytest.raises(BidiConnectionError, match="CERTIFICATE_VERIFY_FAILED"),
    ):
        await model.start()


def test_bidi_chat_without_a_key_is_one_line_in_the_cli_form() -> None:
    """`bidi chat` without a key: one line naming OPENAI_API_KEY and `--set`, no traceback."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    result = subprocess.run(
        [sys.executable, "-m", "bidi_core", "chat", "--model", "openai_realtime"],
        input="hello\n",
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("bidi chat: No OpenAI API key: set the OPENAI_API_KEY")
    assert "--set client_config.api_key=..." in line
    assert "client_config={" not in line
