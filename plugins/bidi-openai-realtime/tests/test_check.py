"""``bidi check openai_realtime`` against the fake: a good key, a bad key, no trust, no DNS.

The fake answers as ``api.openai.com`` over TLS; the check runs with only what a user
sets (``OPENAI_API_KEY``, ``SSL_CERT_FILE``) and the test's resolver.
"""

from __future__ import annotations

import io
import time
from collections.abc import AsyncIterator

import pytest

from bidi_core.cli._check import Step, check
from bidi_core.testing import resolve_to_loopback
from bidi_openai_realtime.testing import OpenAIRealtimeFake, serve

KEY = "sk-test-check-key-000000001"
HOST = "api.openai.com"


@pytest.fixture
async def tls_fake() -> AsyncIterator[OpenAIRealtimeFake]:
    """A wss:// fake answering as api.openai.com, accepting only KEY."""
    async with serve(tls=True, api_key=KEY) as fake:
        yield fake


@pytest.fixture(autouse=True)
def user_env(tls_fake: OpenAIRealtimeFake, monkeypatch: pytest.MonkeyPatch) -> None:
    """The key and trust for the throwaway CA, no proxy."""
    assert tls_fake.ca_path is not None
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("SSL_CERT_FILE", tls_fake.ca_path)
    for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


async def run(port: int | None, **kwargs: object) -> tuple[dict[str, Step], str]:
    out = io.StringIO()
    with resolve_to_loopback({HOST: port} if port else {}):
        steps = await check("openai_realtime", {}, out=out, **kwargs)  # type: ignore[arg-type]
    return {s.name: s for s in steps}, out.getvalue()


def verdicts(steps: dict[str, Step]) -> dict[str, str]:
    return {name: step.verdict for name, step in steps.items()}


async def test_every_step_passes_with_a_good_key(tls_fake: OpenAIRealtimeFake) -> None:
    """Config, credentials, DNS, TLS and a session: all ok, one line each, key never shown."""
    steps, text = await run(tls_fake.port)
    assert verdicts(steps) == dict.fromkeys(
        ["config", "credentials", "dns", "tls", "session"], "ok"
    )
    assert steps["credentials"].detail == "from OPENAI_API_KEY"
    assert "api.openai.com -> 127.0.0.1" in steps["dns"].detail
    assert "certificate verified" in steps["tls"].detail
    assert len(text.splitlines()) == 5
    assert KEY not in text
    assert len(tls_fake.connections) == 1  # the session step opened exactly one


async def test_a_bad_key_fails_the_session_step(
    tls_fake: OpenAIRealtimeFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The service's 401: the session step fails, says the key was rejected and how to fix it."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-not-the-right-key-99999")
    steps, text = await run(tls_fake.port)
    assert verdicts(steps)["session"] == "FAIL"
    assert "rejected the API key" in steps["session"].detail
    assert "OPENAI_API_KEY" in steps["session"].fix
    assert "sk-not-the-right-key-99999" not in text


async def test_an_untrusted_certificate_fails_the_tls_step(
    tls_fake: OpenAIRealtimeFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without trust for the CA: the TLS step fails naming SSL_CERT_FILE; no session is tried."""
    monkeypatch.delenv("SSL_CERT_FILE")
    steps, _ = await run(tls_fake.port)
    assert verdicts(steps) == {
        "config": "ok",
        "credentials": "ok",
        "dns": "ok",
        "tls": "FAIL",
        "session": "skip",
    }
    assert "not trusted" in steps["tls"].detail
    assert "SSL_CERT_FILE" in steps["tls"].fix
    assert tls_fake.connections == []


async def test_an_unresolvable_host_fails_the_dns_step() -> None:
    """A host name that does not resolve: the DNS step fails; TLS and session are skipped."""
    steps, _ = await run(None)
    assert verdicts(steps) == {
        "config": "ok",
        "credentials": "ok",
        "dns": "FAIL",
        "tls": "skip",
        "session": "skip",
    }
    assert "cannot resolve 'api.openai.com'" in steps["dns"].detail


async def test_no_key_fails_the_credentials_step_and_still_checks_the_network(
    tls_fake: OpenAIRealtimeFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without a key: credentials FAIL with what to set; DNS and TLS are still checked."""
    monkeypatch.delenv("OPENAI_API_KEY")
    steps, _ = await run(tls_fake.port)
    assert verdicts(steps) == {
        "config": "ok",
        "credentials": "FAIL",
        "dns": "ok",
        "tls": "ok",
        "session": "skip",
    }
    assert steps["credentials"].fix == "set OPENAI_API_KEY, or pass --set client_config.api_key=..."


async def test_a_service_that_never_answers_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """A handshake that never completes fails the session step within the check's bound."""
    async with serve(tls=True, api_key=KEY, stall_handshake=True) as stalled:
        assert stalled.ca_path is not None
        monkeypatch.setenv("SSL_CERT_FILE", stalled.ca_path)
        began = time.monotonic()
        steps, _ = await run(stalled.port, limit_s=2.0)
        took = time.monotonic() - began
    assert verdicts(steps)["session"] == "FAIL"
    assert "no session within the check's 2 s" in steps["session"].detail
    assert took < 10.0, f"took {took:.1f} s"  # bounded, not a benchmark
