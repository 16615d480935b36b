"""The default path: ``get_model("nova_sonic")`` configured only by environment variables.

awscrt resolves host names in C, outside Python, so the fake is reached through the
standard AWS endpoint variable (``AWS_ENDPOINT_URL_BEDROCK_RUNTIME``) and trusted
through ``AWS_CA_BUNDLE``; credentials and region come from ``AWS_ACCESS_KEY_ID`` /
``AWS_SECRET_ACCESS_KEY`` / ``AWS_REGION``. No ``client_config`` at all. Every test
points boto3 at missing config files and turns the metadata service off, so nothing
outside the test's environment (and nothing but 127.0.0.1) is ever consulted.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from pathlib import Path

import pytest

from bidi_core import (
    AuthenticationError,
    BidiTextInputEvent,
    BidiTranscriptStreamEvent,
    ConfigError,
    MissingCredentialsError,
    get_model,
)
from bidi_nova_sonic._settings import parse_settings, resolve_target
from bidi_nova_sonic.testing import FAKE_ACCESS_KEY, FAKE_SECRET_KEY, FakeNovaServer

_AWS_VARS = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_BEDROCK_RUNTIME",
    "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
    "AWS_CA_BUNDLE",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
)
#: A generous bound that fails on the old 30 s hang (open_timeout), not a benchmark.
FAST_S = 5.0


@pytest.fixture(autouse=True)
def clean_aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Only what each test sets: no real files, no metadata service, no inherited AWS_*."""
    for name in _AWS_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture
def user_env(fake: FakeNovaServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """What a user sets: keys, AWS_REGION, and (for the fake) the endpoint and its CA."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", FAKE_ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", FAKE_SECRET_KEY)
    monkeypatch.setenv("AWS_REGION", "eu-north-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", fake.endpoint_uri)
    monkeypatch.setenv("AWS_CA_BUNDLE", fake.ca_path)


async def _answer(model: object, text: str) -> str:
    await model.send(BidiTextInputEvent(text=text))  # type: ignore[attr-defined]
    async with asyncio.timeout(30):
        async for event in model.receive():  # type: ignore[attr-defined]
            if (
                isinstance(event, BidiTranscriptStreamEvent)
                and event.is_final
                and event.role == "assistant"
            ):
                return event.text
    return ""


@pytest.mark.usefixtures("user_env")
async def test_environment_alone_configures_a_working_model(fake: FakeNovaServer) -> None:
    """Keys, AWS_REGION, the endpoint and CA variables: get_model() with no config talks.

    Regression: AWS_REGION was ignored (boto3 reads only AWS_DEFAULT_REGION) and the
    error still said "set AWS_REGION".
    """
    model = get_model("nova_sonic")
    await model.start(system_prompt="Be brief.")
    try:
        answer = await _answer(model, "hello")
    finally:
        await model.stop()
    assert answer == "You said: hello."
    request = fake.requests[0]
    assert request.region == "eu-north-1"  # the SigV4 scope: AWS_REGION was used
    assert request.access_key == FAKE_ACCESS_KEY
    assert request.signature_valid


@pytest.mark.usefixtures("user_env")
async def test_the_generic_endpoint_variable_works_too(
    fake: FakeNovaServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """AWS_ENDPOINT_URL (for every service) is honoured when the Bedrock one is unset."""
    monkeypatch.delenv("AWS_ENDPOINT_URL_BEDROCK_RUNTIME")
    monkeypatch.setenv("AWS_ENDPOINT_URL", fake.endpoint_uri)
    model = get_model("nova_sonic")
    await model.start()
    await model.stop()
    assert len(fake.requests) == 1


async def test_no_credentials_fail_fast_naming_the_chain(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Without credentials, start() raises MissingCredentialsError at once, cause not lost.

    Regression: the SDK resolved credentials in a task of its own whose failure was
    never retrieved; start() waited 30 s and blamed the network.
    """
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")  # the variable boto3 always read
    monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", "https://127.0.0.1:9")
    caplog.set_level(logging.ERROR, logger="asyncio")
    model = get_model("nova_sonic")
    began = time.monotonic()
    with pytest.raises(MissingCredentialsError) as info:
        await model.start()
    took = time.monotonic() - began
    gc.collect()  # a failed task nobody awaited reports itself when collected
    message = str(info.value)
    assert "No AWS credentials were found" in message
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "AWS_REGION"):
        assert name in message
    assert "AWS_ACCESS_KEY_ID" in info.value.env_vars
    assert took < FAST_S, f"took {took:.2f} s"
    assert "never retrieved" not in caplog.text


async def test_no_region_names_the_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a region anywhere the error names AWS_REGION and AWS_DEFAULT_REGION."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", FAKE_ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", FAKE_SECRET_KEY)
    model = get_model("nova_sonic")
    with pytest.raises(MissingCredentialsError, match="set AWS_REGION \\(or AWS_DEFAULT_REGION"):
        await model.start()


@pytest.mark.usefixtures("user_env")
@pytest.mark.parametrize(
    ("access_key", "secret", "kind", "names"),
    [
        (
            FAKE_ACCESS_KEY,
            "not-the-secret-key",
            "InvalidSignatureException",
            "AWS_SECRET_ACCESS_KEY",
        ),
        (
            "AKIDUNKNOWN000000001",
            FAKE_SECRET_KEY,
            "UnrecognizedClientException",
            "AWS_ACCESS_KEY_ID",
        ),
    ],
    ids=["wrong_secret", "unknown_access_key"],
)
async def test_rejected_credentials_are_a_clear_authentication_error(  # noqa: PLR0917
    fake: FakeNovaServer,
    monkeypatch: pytest.MonkeyPatch,
    access_key: str,
    secret: str,
    kind: str,
    names: str,
) -> None:
    """Bedrock's 403 for a bad signature or an unknown key: AuthenticationError, not retryable."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    model = get_model("nova_sonic")
    with pytest.raises(AuthenticationError) as info:
        await model.start()
    err = info.value
    assert err.code == kind
    assert not err.retryable
    assert names in str(err)
    assert secret not in str(err)
    assert any(kind in problem for problem in fake.protocol_errors)


def test_target_resolution_order() -> None:
    """Config beats env; AWS_REGION beats AWS_DEFAULT_REGION beats the profile's region."""
    plain = parse_settings("amazon.nova-sonic-v1:0", {}, {})
    env = {"AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "us-west-2"}
    target = resolve_target(plain, "ap-south-1", env)
    assert (target.region, target.region_source) == ("eu-west-1", "AWS_REGION")
    assert target.endpoint == "https://bedrock-runtime.eu-west-1.amazonaws.com"
    assert (target.ca_bundle, target.ca_source) == (None, "the system trust store")
    target = resolve_target(plain, "ap-south-1", {"AWS_DEFAULT_REGION": "us-west-2"})
    assert target.region == "us-west-2"
    assert resolve_target(plain, "ap-south-1", {}).region == "ap-south-1"
    configured = parse_settings(
        "amazon.nova-sonic-v1:0",
        {},
        {"region": "us-east-1", "endpoint_uri": "https://127.0.0.1:1", "ca_bundle": "/ca.pem"},
    )
    env = {
        "AWS_REGION": "eu-west-1",
        "AWS_ENDPOINT_URL_BEDROCK_RUNTIME": "https://proxy.example",
        "AWS_CA_BUNDLE": "/other.pem",
    }
    target = resolve_target(configured, None, env)
    assert (target.region, target.endpoint, target.ca_bundle) == (
        "us-east-1",
        "https://127.0.0.1:1",
        "/ca.pem",
    )
    ignored = {
        **env,
        "AWS_ENDPOINT_URL": "https://x",
        "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "true",
    }
    assert resolve_target(plain, None, ignored).endpoint.endswith(".eu-west-1.amazonaws.com")
    with pytest.raises(ConfigError, match="AWS_ENDPOINT_URL must be an https:// URL"):
        resolve_target(plain, None, {"AWS_REGION": "x", "AWS_ENDPOINT_URL": "http://127.0.0.1:1"})
