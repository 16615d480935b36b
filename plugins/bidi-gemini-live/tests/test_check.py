"""``bidi check gemini_live`` against the fake: a good key, a bad key, no trust, no DNS.

The fake answers as ``generativelanguage.googleapis.com``; the check runs with only
what a user sets (``GOOGLE_API_KEY``, ``SSL_CERT_FILE``) and the test's resolver.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator

import pytest

from bidi_core.cli._check import Step, check
from bidi_core.testing import resolve_to_loopback
from bidi_gemini_live.testing import FakeGeminiServer, serve

KEY = "AIzaSy-test-check-key-0001"
HOST = "generativelanguage.googleapis.com"


@pytest.fixture
async def keyed_fake() -> AsyncIterator[FakeGeminiServer]:
    """A fake accepting only KEY."""
    async with serve(api_keys=[KEY]) as fake:
        yield fake


@pytest.fixture(autouse=True)
def user_env(keyed_fake: FakeGeminiServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """The key and trust for the throwaway CA, no proxy."""
    monkeypatch.setenv("GOOGLE_API_KEY", KEY)
    monkeypatch.setenv("SSL_CERT_FILE", keyed_fake.ca_path)
    for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


async def run(port: int | None) -> tuple[dict[str, Step], str]:
    out = io.StringIO()
    with resolve_to_loopback({HOST: port} if port else {}):
        steps = await check("gemini_live", {}, out=out)
    return {s.name: s for s in steps}, out.getvalue()


def verdicts(steps: dict[str, Step]) -> list[str]:
    return [step.verdict for step in steps.values()]


async def test_every_step_passes_with_a_good_key(keyed_fake: FakeGeminiServer) -> None:
    """Config, credentials, DNS, TLS and a session: all ok, and the key is never shown."""
    steps, text = await run(keyed_fake.port)
    assert verdicts(steps) == ["ok"] * 5
    assert steps["credentials"].detail == "from GOOGLE_API_KEY"
    assert f"{HOST} -> 127.0.0.1" in steps["dns"].detail
    assert KEY not in text
    assert len(keyed_fake.setups) == 1


async def test_a_bad_key_fails_the_session_step(
    keyed_fake: FakeGeminiServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The service's close 1007 "API key not valid": the session step says so, with the fix."""
    monkeypatch.setenv("GOOGLE_API_KEY", "AIzaSy-not-the-right-key")
    steps, text = await run(keyed_fake.port)
    assert verdicts(steps) == ["ok", "ok", "ok", "ok", "FAIL"]
    assert "rejected the API key" in steps["session"].detail
    assert "GOOGLE_API_KEY" in steps["session"].fix
    assert "AIzaSy-not-the-right-key" not in text


async def test_an_untrusted_certificate_fails_the_tls_step(
    keyed_fake: FakeGeminiServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without trust for the CA (certifi's bundle): TLS fails naming SSL_CERT_FILE."""
    monkeypatch.delenv("SSL_CERT_FILE")
    steps, _ = await run(keyed_fake.port)
    assert verdicts(steps) == ["ok", "ok", "ok", "FAIL", "skip"]
    assert "SSL_CERT_FILE" in steps["tls"].fix
    assert keyed_fake.setups == []


async def test_an_unresolvable_host_fails_the_dns_step() -> None:
    """A host name that does not resolve: DNS fails; TLS and session are skipped."""
    steps, _ = await run(None)
    assert verdicts(steps) == ["ok", "ok", "FAIL", "skip", "skip"]


async def test_no_key_fails_the_credentials_step(
    keyed_fake: FakeGeminiServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without a key: credentials FAIL naming GOOGLE_API_KEY; no session is tried."""
    monkeypatch.delenv("GOOGLE_API_KEY")
    steps, _ = await run(keyed_fake.port)
    assert verdicts(steps) == ["ok", "FAIL", "ok", "ok", "skip"]
    assert "GOOGLE_API_KEY" in steps["credentials"].fix
