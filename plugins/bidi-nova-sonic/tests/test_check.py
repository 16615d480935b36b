"""``bidi check nova_sonic`` against the fake: good and bad credentials, no trust, no DNS.

Configured only through the environment: keys, ``AWS_REGION``, the endpoint variable
and ``AWS_CA_BUNDLE`` (awscrt resolves names outside Python, so the endpoint points at
127.0.0.1). Config files point nowhere and the metadata service is off.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from bidi_core.cli._check import Step, check
from bidi_core.testing import resolve_to_loopback
from bidi_nova_sonic.testing import FAKE_ACCESS_KEY, FAKE_SECRET_KEY, FakeNovaServer

_ISOLATE = (
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL",
    "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
)


@pytest.fixture(autouse=True)
def user_env(fake: FakeNovaServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """What a user sets (keys, region, endpoint, CA), and nothing inherited."""
    for name in _ISOLATE:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", FAKE_ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", FAKE_SECRET_KEY)
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", fake.endpoint_uri)
    monkeypatch.setenv("AWS_CA_BUNDLE", fake.ca_path)


async def run() -> tuple[dict[str, Step], str]:
    out = io.StringIO()
    with resolve_to_loopback({}):
        steps = await check("nova_sonic", {}, out=out)
    return {s.name: s for s in steps}, out.getvalue()


def verdicts(steps: dict[str, Step]) -> list[str]:
    return [step.verdict for step in steps.values()]


async def test_every_step_passes_with_good_credentials(fake: FakeNovaServer) -> None:
    """Config, credentials, DNS, TLS (ALPN h2) and a session: all ok; no secret shown."""
    steps, text = await run()
    assert verdicts(steps) == ["ok"] * 5
    assert "region us-east-1 (from AWS_REGION)" in steps["config"].detail
    assert steps["credentials"].detail == "from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY"
    assert "ALPN h2" in steps["tls"].detail
    assert FAKE_SECRET_KEY not in text
    assert len(fake.requests) == 1


async def test_a_wrong_secret_fails_the_session_step(
    fake: FakeNovaServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bedrock's 403 InvalidSignatureException: the session step says what to check."""
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "definitely-not-the-secret")
    steps, text = await run()
    assert verdicts(steps) == ["ok", "ok", "ok", "ok", "FAIL"]
    assert "InvalidSignatureException" in steps["session"].detail
    assert "AWS_SECRET_ACCESS_KEY" in steps["session"].detail
    assert "definitely-not-the-secret" not in text


async def test_an_untrusted_certificate_fails_the_tls_step(
    fake: FakeNovaServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without AWS_CA_BUNDLE the fake's certificate is not trusted: TLS fails naming it."""
    monkeypatch.delenv("AWS_CA_BUNDLE")
    steps, _ = await run()
    assert verdicts(steps) == ["ok", "ok", "ok", "FAIL", "skip"]
    assert "AWS_CA_BUNDLE" in steps["tls"].fix
    assert fake.requests == []


async def test_an_unresolvable_host_fails_the_dns_step(monkeypatch: pytest.MonkeyPatch) -> None:
    """An endpoint whose name does not resolve: DNS fails, and awscrt is never asked."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", "https://bedrock-runtime.invalid")
    steps, _ = await run()
    assert verdicts(steps) == ["ok", "ok", "FAIL", "skip", "skip"]
    assert "AWS_ENDPOINT_URL_BEDROCK_RUNTIME" in steps["dns"].detail


async def test_no_credentials_fail_the_credentials_step(monkeypatch: pytest.MonkeyPatch) -> None:
    """No keys anywhere: credentials FAIL with what to set; the network is still checked."""
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    steps, _ = await run()
    assert verdicts(steps) == ["ok", "FAIL", "ok", "ok", "skip"]
    assert "AWS_ACCESS_KEY_ID" in steps["credentials"].fix


async def test_no_region_fails_naming_the_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """No region anywhere: the credentials step names AWS_REGION and stops there."""
    monkeypatch.delenv("AWS_REGION")
    steps, _ = await run()
    assert verdicts(steps) == ["ok", "FAIL"]
    assert "set AWS_REGION" in steps["credentials"].detail
