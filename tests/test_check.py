"""``bidi check``: the steps, the verdicts, the exit status, the bound and no secrets shown.

The providers' own checks (DNS, TLS, a bad key, against each fake) are in each
plugin's ``tests/test_check.py``; these cover the core's orchestration with the
simulated model and small in-process plugins.
"""

from __future__ import annotations

import io
import subprocess
import sys
import threading
import time
from typing import Any

import pytest

import bidi_core
from bidi_core import ConfigError, ModelCapabilities, Registry
from bidi_core.cli._check import Step, check
from bidi_core.diagnostics import CheckInfo, Credentials, Endpoint
from bidi_core.simulated import SimulatedModel
from bidi_core.testing import resolve_to_loopback


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bidi_core", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _registry(factory: Any = SimulatedModel, **extra: Any) -> Registry:
    class Plugin:
        @bidi_core.hookimpl
        def bidi_register_models(self, register: Any) -> None:
            register("acme", factory, capabilities=ModelCapabilities(), **extra)

    registry = Registry(autoload=False)
    registry.register_plugin(Plugin(), name="acme-plugin")
    return registry


async def _check(registry: Registry, settings: dict[str, Any] | None = None, **kw: Any) -> Any:
    out = io.StringIO()
    steps = await check("acme", settings or {}, registry=registry, out=out, **kw)
    return {s.name: s for s in steps}, out.getvalue()


def test_simulated_is_ready_and_exits_0() -> None:
    """`bidi check simulated`: five lines (DNS and TLS skipped: no network), ready, exit 0."""
    result = _run("check", "simulated")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [line.split()[:2] for line in lines[:5]] == [
        ["ok", "config"],
        ["ok", "credentials"],
        ["skip", "dns"],
        ["skip", "tls"],
        ["ok", "session"],
    ]
    assert lines[5].startswith("simulated: ready (")


def test_an_unknown_model_fails_the_config_step_and_exits_1() -> None:
    """A model that is not installed: config FAIL with the suggestion, exit status 1."""
    result = _run("check", "nova")
    assert result.returncode == 1
    first = result.stdout.splitlines()[0]
    assert first.startswith("FAIL  config")
    assert "Did you mean 'nova_sonic'?" in first
    assert "./dev install bidi-nova-sonic" in first
    assert result.stdout.splitlines()[-1].startswith("nova: not ready (config failed;")


def test_a_bad_setting_fails_the_config_step() -> None:
    """A --set key the model does not take: config FAIL naming the accepted keys."""
    result = _run("check", "simulated", "--set", "provider_config.sed=1")
    assert result.returncode == 1
    assert "Unknown key 'sed'" in result.stdout
    assert "Did you mean 'seed'?" in result.stdout


async def test_a_plugin_without_a_check_hook_gets_config_credentials_and_session() -> None:
    """Without check=, DNS and TLS are skipped (no endpoint known); credentials from the plugin."""
    steps, _ = await _check(_registry(credentials=lambda: False))
    assert [s.verdict for s in steps.values()] == ["ok", "FAIL", "skip", "skip", "skip"]
    assert "no check= hook" in steps["dns"].detail
    assert steps["session"].detail == "no credentials to open a session with."


async def test_a_hook_that_raises_config_error_fails_the_config_step() -> None:
    """A ConfigError from the plugin's hook is the config step's failure, said in one line."""

    def hook(model: object) -> CheckInfo:
        msg = "client_config={'region': 'x'} is not a region."
        raise ConfigError(msg)

    steps, text = await _check(_registry(check=hook))
    assert list(steps) == ["config"]
    assert steps["config"].verdict == "FAIL"
    assert "--set client_config.region=x is not a region." in text


async def test_secrets_never_appear_even_if_a_hook_leaks_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Values of secret env vars and of secret --set keys are masked in every line."""
    monkeypatch.setenv("ACME_API_KEY", "env-secret-123456")

    def leaky(model: object) -> CheckInfo:
        return CheckInfo(
            endpoint=None,
            credentials=Credentials(found=True, source="env-secret-123456 and cli-secret-7890"),
        )

    def factory(**config: Any) -> SimulatedModel:
        del config  # takes (and ignores) a client_config, as a provider would
        return SimulatedModel()

    registry = _registry(factory, check=leaky, env_vars=("ACME_API_KEY",))
    settings = {"client_config": {"api_key": "cli-secret-7890"}}
    steps, text = await _check(registry, settings)
    assert steps["credentials"].verdict == "ok"
    assert "env-secret-123456" not in text
    assert "cli-secret-7890" not in text
    assert "from *** and ***" in text


async def test_an_unreachable_endpoint_skips_the_session() -> None:
    """A hook naming a host that does not resolve: DNS FAIL with the source, session skipped."""

    def hook(model: object) -> CheckInfo:
        return CheckInfo(
            endpoint=Endpoint(host="api.acme.invalid", port=443, source="ACME_URL"),
            credentials=Credentials(found=True, source="ACME_API_KEY"),
        )

    with resolve_to_loopback({}):
        steps, _ = await _check(_registry(check=hook))
    assert [s.verdict for s in steps.values()] == ["ok", "ok", "FAIL", "skip", "skip"]
    assert "cannot resolve 'api.acme.invalid' (from ACME_URL)" in steps["dns"].detail


async def test_a_hook_that_hangs_is_bounded_by_the_limit() -> None:
    """A credential probe that never returns fails the credentials step at the limit."""

    release = threading.Event()

    def hangs(model: object) -> CheckInfo:
        release.wait(30)  # in a daemon thread: it never holds up the check (or the exit)
        raise RuntimeError("too late")  # its outcome, after the check gave up, is dropped

    began = time.monotonic()
    try:
        steps, _ = await _check(_registry(check=hangs), limit_s=0.5)
    finally:
        release.set()
    took = time.monotonic() - began
    assert steps["credentials"].verdict == "FAIL"
    assert "took longer than 0.5 s" in steps["credentials"].detail
    assert took < 5.0, f"took {took:.1f} s"  # bounded, not a benchmark


def test_step_lines_are_single_lines() -> None:
    """A detail or fix with newlines still prints as one line."""
    step = Step(name="tls", verdict="FAIL", detail="a\nb", fix="c\n d")
    assert step.line() == "FAIL  tls          a b Fix: c d"
