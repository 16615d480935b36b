"""ExampleModel specifics: config rules, security, registration, outbound frames, resumption."""

from __future__ import annotations

import asyncio
import ssl
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bidi_core import (
    BidiAudioInputEvent,
    BidiConnectionError,
    BidiModelTimeoutError,
    BidiResponseCompleteEvent,
    BidiTextInputEvent,
    BidiTranscriptStreamEvent,
    ConfigError,
    MissingCredentialsError,
    Registry,
)
from bidi_core.testing import free_port, speak
from bidi_example import CAPABILITIES, ExampleModel, _hooks
from bidi_example.testing import serve

PLUGIN_ROOT = Path(__file__).resolve().parents[1]


async def answer(model: ExampleModel, text: str) -> str:
    """Send a text turn and return the final assistant transcript."""
    await model.send(BidiTextInputEvent(text=text))
    final = ""
    async with asyncio.timeout(10):
        async for event in model.receive():
            if isinstance(event, BidiTranscriptStreamEvent) and event.is_final:
                final = event.text
            if isinstance(event, BidiResponseCompleteEvent) and event.stop_reason == "complete":
                return final
    msg = "receive() ended before the answer"
    raise AssertionError(msg)


async def drain(model: ExampleModel) -> None:
    """Read events until receive() ends or raises."""
    async with asyncio.timeout(10):
        async for _event in model.receive():
            pass


# --------------------------------------------------------------- registration


def test_hooks_register_the_model_with_capabilities_and_fake() -> None:
    """The hook registers 'example' with its capabilities, credentials check and fake."""
    registry = Registry(autoload=False)
    registry.register_plugin(_hooks, name="example")
    info = registry.model_info("example")
    assert info.capabilities == CAPABILITIES
    assert info.extra["fake"] == "bidi_example.testing:serve"
    assert isinstance(registry.get_model("example"), ExampleModel)


def test_credentials_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """credentials() says whether EXAMPLE_API_KEY is set, without any I/O."""
    monkeypatch.delenv("EXAMPLE_API_KEY", raising=False)
    assert _hooks.credentials_configured() is False
    monkeypatch.setenv("EXAMPLE_API_KEY", "k")
    assert _hooks.credentials_configured() is True


def test_hooks_module_does_not_import_the_model() -> None:
    """Importing the package and its hooks leaves the model module (and SDK) unloaded."""
    code = "import sys, bidi_example._hooks; print('bidi_example._model' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(PLUGIN_ROOT)},
    )
    assert result.stdout.strip() == "False"


# --------------------------------------------------------------------- config


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"provider_config": {"voic": "a"}},
            r"'voic' in example provider_config\. Did you mean 'voice'",
        ),
        (
            {"client_config": {"apikey": "k"}},
            r"Did you mean 'api_key'\? Accepted keys: allow_insecure",
        ),
        ({"model": "x"}, r"Did you mean 'model_id'"),
        ({"client_config": {"ssl": "yes"}}, r"'ssl' must be True, False or an ssl.SSLContext"),
        ({"client_config": {"port": "443"}}, r"'port'\] must be an int .*\(got '443'\)"),
        ({"provider_config": {"connection_limit_s": 0}}, r"'connection_limit_s'\] must be"),
    ],
)
def test_config_errors_name_the_problem(kwargs: dict[str, Any], message: str) -> None:
    """Unknown keys and bad values are ConfigErrors naming the accepted keys or the rule."""
    with pytest.raises(ConfigError, match=message):
        ExampleModel(**kwargs)


def test_plain_text_to_a_remote_host_is_refused_unless_opted_in() -> None:
    """Plain TCP is for loopback only, unless allow_insecure=True."""
    with pytest.raises(ConfigError, match=r"Refusing plain-text TCP to 'api\.example\.net'"):
        ExampleModel(client_config={"host": "api.example.net", "ssl": False})
    ExampleModel(client_config={"host": "api.example.net", "ssl": False, "allow_insecure": True})
    ExampleModel(client_config={"host": "::1", "ssl": False})


def test_config_is_copied_but_live_objects_are_shared() -> None:
    """Plain data is copied; an SSLContext is kept by reference."""
    context = ssl.create_default_context()
    client_config: dict[str, Any] = {"ssl": context, "host": "h"}
    model = ExampleModel(client_config=client_config, provider_config={"voice": "a"})
    client_config["host"] = "changed"
    assert model.config["client_config"]["host"] == "h"
    assert model.config["client_config"]["ssl"] is context


async def test_missing_api_key_names_both_sources(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a key, start() says to pass api_key or set EXAMPLE_API_KEY."""
    monkeypatch.delenv("EXAMPLE_API_KEY", raising=False)
    model = ExampleModel(client_config={"host": "127.0.0.1", "ssl": False})
    with pytest.raises(
        MissingCredentialsError, match=r"set EXAMPLE_API_KEY, or pass client_config=\{'api_key'"
    ):
        await model.start()


async def test_wrong_api_key_is_refused_without_echoing_it() -> None:
    """A refused key is a BidiConnectionError with the service's code; the key is not shown."""
    async with serve() as fake:
        kwargs = fake.model_kwargs
        kwargs["client_config"]["api_key"] = "sk-wrong-secret"
        model = ExampleModel(**kwargs)
        with pytest.raises(BidiConnectionError) as info:
            await model.start()
    assert info.value.code == "unauthorized"
    assert "sk-wrong-secret" not in str(info.value)
    assert "sk-wrong-secret" not in repr(model)


async def test_unreachable_service_is_a_connection_error() -> None:
    """Nothing listening is a retryable BidiConnectionError naming host and port."""
    port = free_port()
    model = ExampleModel(
        client_config={"host": "127.0.0.1", "port": port, "ssl": False, "api_key": "k"}
    )
    with pytest.raises(BidiConnectionError, match=f"127.0.0.1:{port}") as info:
        await model.start()
    assert info.value.retryable


# ------------------------------------------------------------------ the wire


async def test_start_and_inputs_reach_the_service_as_frames() -> None:
    """start() sends instructions, tools, history and voice; 48 kHz audio arrives at 16 kHz."""
    tool = {"name": "f", "description": "d", "inputSchema": {"json": {"type": "object"}}}
    history = [{"role": "user", "content": [{"text": "earlier"}]}]
    async with serve() as fake:
        model = ExampleModel(provider_config={"voice": "ash"}, **fake.model_kwargs)
        await model.start(system_prompt="be brief", tools=[tool], messages=history)  # type: ignore[list-item]
        try:
            await model.send(BidiAudioInputEvent(audio=speak("a", 48000), sample_rate=48000))
            assert await answer(model, "recall") == "Earlier you said: earlier."
        finally:
            await model.stop()
    start, audio = fake.received[0], fake.received[1]
    assert (start["instructions"], start["tools"], start["history"], start["voice"]) == (
        "be brief",
        [tool],
        history,
        "ash",
    )
    assert audio["type"] == "input.audio"
    assert audio["sample_rate"] == 16000
    assert fake.received[-1] == {"type": "session.end"}  # graceful goodbye on stop()


async def test_proactive_limit_restarts_with_the_resume_handle() -> None:
    """connection_limit_s raises BidiModelTimeoutError whose restart_config resumes memory."""
    async with serve() as fake:
        model = ExampleModel(provider_config={"connection_limit_s": 0.5}, **fake.model_kwargs)
        await model.start()
        await answer(model, "the password is swordfish")
        with pytest.raises(BidiModelTimeoutError) as info:
            await drain(model)
        await model.stop()
        assert set(info.value.restart_config) == {"resume_handle"}
        await model.start(**info.value.restart_config)
        try:
            assert await answer(model, "recall") == "Earlier you said: the password is swordfish."
        finally:
            await model.stop()
        starts = [frame for frame in fake.received if frame["type"] == "session.start"]
        assert starts[-1]["resume_handle"] == info.value.restart_config["resume_handle"]
