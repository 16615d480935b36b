"""Registry, import-lightness, BidiAgent and the ``bidi chat --fake`` CLI with gemini_live."""

from __future__ import annotations

import asyncio
import io
import json
import subprocess
import sys

import pytest

from bidi_core import BidiResponseCompleteEvent, BidiTextInputEvent, ConfigError, Registry
from bidi_core.testing import FakeServer, load_fake
from bidi_gemini_live import CAPABILITIES, DEFAULT_MODEL_ID, GeminiLiveModel, __version__
from bidi_gemini_live._hooks import credentials_configured
from bidi_gemini_live.testing import FakeGeminiServer, serve

from .conftest import make_model


def test_import_and_list_models_do_not_import_the_sdk() -> None:
    """`import bidi_gemini_live` and `bidi_core.list_models()` import no google-genai."""
    code = (
        "import sys, json, bidi_core, bidi_gemini_live\n"
        "infos = {i.name: i for i in bidi_core.list_models()}\n"
        "info = infos['gemini_live']\n"
        "print(json.dumps({'sdk': sorted(m for m in sys.modules if m.startswith('google')),"
        " 'caps': info.capabilities.to_dict(), 'fake': info.extra.get('fake'),"
        " 'dist': info.distribution}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    data = json.loads(out.stdout)
    assert data["sdk"] == []
    assert data["caps"] == CAPABILITIES.to_dict()
    assert data["fake"] == "bidi_gemini_live.testing:serve"
    assert data["dist"] == "bidi-gemini-live"


def test_registry_builds_the_model() -> None:
    """get_model('gemini_live') builds a GeminiLiveModel with the default model id, no I/O."""
    model = Registry().get_model("gemini_live", client_config={"api_key": "k"})
    assert isinstance(model, GeminiLiveModel)
    assert model.model_id == DEFAULT_MODEL_ID
    assert __version__ == "0.1.0"
    with pytest.raises(ConfigError):
        Registry().get_model("gemini_live", modle_id="x")


def test_credentials_probe_reads_only_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The credentials probe is true with GOOGLE_API_KEY/GEMINI_API_KEY or Vertex env vars."""
    assert credentials_configured() is False
    monkeypatch.setenv("GEMINI_API_KEY", "x")
    assert credentials_configured() is True
    monkeypatch.delenv("GEMINI_API_KEY")
    monkeypatch.setenv("GOOGLE_GENAI_USE_VERTEXAI", "true")
    assert credentials_configured() is False
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "p")
    assert credentials_configured() is True


async def test_fake_satisfies_the_fake_server_contract() -> None:
    """serve() loads through load_fake and yields a FakeServer with one assistant per connection."""
    factory = load_fake("bidi_gemini_live.testing:serve")
    async with factory() as fake:
        assert isinstance(fake, FakeServer)
        model = make_model(fake)  # type: ignore[arg-type]
        await model.start()
        await model.send(BidiTextInputEvent(text="contract"))
        async with asyncio.timeout(15):
            async for event in model.receive():
                if isinstance(event, BidiResponseCompleteEvent):
                    break
        await model.stop()
        assert len(fake.assistants) == 1
        assert ("text", "contract") in fake.assistants[0].inputs
        assert fake.received[0].keys() == {"setup"}
    with pytest.raises(TypeError, match="accepted"):
        async with serve(bogus=True):
            pass


async def test_agent_runs_a_tool_against_the_fake(fake: FakeGeminiServer) -> None:
    """A BidiAgent with one @tool answers a text turn that calls the tool, over the real wire."""
    from bidi_core import BidiAgent, tool

    @tool
    def get_weather(city: str) -> str:
        """Return the weather for a city.

        Args:
            city: The city name.
        """
        return f"sunny in {city}"

    agent = BidiAgent(make_model(fake), tools=[get_weather], system_prompt="Be brief.")
    async with agent:
        await agent.send('What is the weather? get_weather {"city": "Paris"}')
        async with asyncio.timeout(20):
            async for event in agent.receive():
                if isinstance(event, BidiResponseCompleteEvent) and event.stop_reason == "complete":
                    break
    texts = [b.get("text", "") for m in agent.messages for b in m["content"]]
    assert "get_weather returned sunny in Paris." in texts
    response = next(f for f in fake.received if "tool_response" in f)["tool_response"]
    assert response["functionResponses"][0]["name"] == "get_weather"


async def test_bidi_chat_fake_talks_to_gemini_live() -> None:
    """`bidi chat --model gemini_live --fake` answers a typed line through the fake server."""
    cli = pytest.importorskip("bidi_core.cli")
    chat_module = pytest.importorskip("bidi_core.cli._chat")
    args = cli.build_parser().parse_args(
        ["chat", "--model", "gemini_live", "--fake", "--settle", "0.3"]
    )
    out = io.StringIO()
    stats = await chat_module.chat(args, stdin=io.StringIO("hello from the cli\n"), stdout=out)
    text = out.getvalue()
    assert "gemini_live fake server" in text
    assert "You said: hello from the cli." in text
    assert stats.input_tokens > 0


@pytest.mark.parametrize("resumption", [True, False], ids=["with_handle", "history_reseeded"])
async def test_agent_restarts_through_go_away(fake: FakeGeminiServer, resumption: bool) -> None:
    """On goAway the agent restarts: with the handle (no history) or by re-seeding history."""
    from bidi_core import BidiAgent, BidiConnectionRestartEvent

    model = make_model(fake, provider_config={"resumption": resumption})
    agent = BidiAgent(model)

    async def until(predicate: object) -> list[object]:
        seen = []
        async with asyncio.timeout(20):
            async for event in agent.receive():
                seen.append(event)
                if predicate(event):  # type: ignore[operator]
                    return seen
        return seen

    def done(event: object) -> bool:
        return isinstance(event, BidiResponseCompleteEvent) and event.stop_reason == "complete"

    async with agent:
        await agent.send("remember the tulips")
        await until(done)
        fake.assistants[-1].inject_fault("time_limit")
        restart = await until(lambda e: isinstance(e, BidiConnectionRestartEvent))
        await agent.send("recall")
        await until(done)
    event = restart[-1]
    assert isinstance(event, BidiConnectionRestartEvent)
    second = fake.setups[1]
    history = [f for f in fake.received if "client_content" in f]
    if resumption:
        assert set(event.restart_config) == {"resumption_handle"}
        assert second["sessionResumption"] == {"handle": event.restart_config["resumption_handle"]}
        assert history == []
    else:
        assert event.restart_config == {}
        assert "sessionResumption" not in second
        (seeded,) = history
        turns = seeded["client_content"]["turns"]
        assert turns[0] == {"role": "user", "parts": [{"text": "remember the tulips"}]}
    texts = [b.get("text", "") for m in agent.messages for b in m["content"]]
    # With a handle the server's memory is restored; without one, the re-seeded history.
    assert "Earlier you said: remember the tulips." in texts


async def test_fake_accepts_both_spellings_and_sends_binary_frames(fake: FakeGeminiServer) -> None:
    """The fake takes camelCase and snake_case keys and answers in binary JSON frames."""
    import websockets

    url = fake.model_kwargs["client_config"]["http_options"]["base_url"].replace("https", "wss")
    ctx = fake.model_kwargs["client_config"]["http_options"]["async_client_args"]["ssl"]
    path = "/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent"
    async with websockets.connect(
        url + path, ssl=ctx, additional_headers={"x-goog-api-key": "k"}
    ) as ws:
        await ws.send(json.dumps({"setup": {"model": "models/m", "session_resumption": {}}}))
        first = await ws.recv()
        assert isinstance(first, bytes)
        assert json.loads(first) == {"setupComplete": {}}
        await ws.send(json.dumps({"realtimeInput": {"text": "camel"}}))
        await ws.send(json.dumps({"realtime_input": {"text": "snake"}}))
        frames = []
        async with asyncio.timeout(15):
            while sum("turnComplete" in f.get("serverContent", {}) for f in frames) < 2:
                raw = await ws.recv()
                assert isinstance(raw, bytes)
                frames.append(json.loads(raw))
    assert {k for f in frames for k in f} <= {
        "serverContent",
        "usageMetadata",
        "sessionResumptionUpdate",
    }
    assert fake.assistants[0].inputs == [("text", "camel"), ("text", "snake")]


async def test_bidi_chat_fake_without_the_test_extra_names_this_plugin(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """--fake without trustme (the test extra) is a MissingDependencyError naming gemini's extra.

    Regression: the ModuleNotFoundError escaped as a raw traceback.
    """
    from bidi_core import MissingDependencyError
    from bidi_core.cli import build_parser
    from bidi_core.cli._chat import chat

    monkeypatch.setitem(sys.modules, "trustme", None)  # as if the test extra were missing
    args = build_parser().parse_args(["chat", "--model", "gemini_live", "--fake"])
    with pytest.raises(MissingDependencyError) as info:
        await chat(args, stdin=io.StringIO("hello\n"), stdout=io.StringIO())
    message = str(info.value)
    assert "needs bidi-gemini-live's test extra" in message
    assert "./dev install bidi-gemini-live[test]" in message
    assert "openai" not in message
