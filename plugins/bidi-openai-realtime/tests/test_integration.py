"""Registry, import-lightness, the fake-server contract, BidiAgent and ``bidi chat --fake``."""

from __future__ import annotations

import asyncio
import io
import json
import subprocess
import sys

import pytest

import bidi_openai_realtime
from bidi_core import (
    BidiAudioInputEvent,
    BidiAudioStreamEvent,
    BidiInterruptionEvent,
    BidiResponseCompleteEvent,
    BidiTextInputEvent,
    ConfigError,
    Registry,
    SupportsTruncation,
)
from bidi_core.testing import AssistantConfig, FakeServer, load_fake, speak
from bidi_openai_realtime import CAPABILITIES, DEFAULT_MODEL_ID, OpenAIRealtimeModel, __version__
from bidi_openai_realtime._hooks import credentials_configured
from bidi_openai_realtime.testing import OpenAIRealtimeFake, serve


def test_import_and_list_models_do_not_import_the_sdk() -> None:
    """`import bidi_openai_realtime` and list_models() import neither websockets nor openai."""
    code = (
        "import sys, json, bidi_core, bidi_openai_realtime\n"
        "infos = {i.name: i for i in bidi_core.list_models()}\n"
        "info = infos['openai_realtime']\n"
        "heavy = ('websockets', 'openai', 'pydantic')\n"
        "print(json.dumps({'sdk': sorted(m for m in sys.modules if m.split('.')[0] in heavy),"
        " 'caps': info.capabilities.to_dict(), 'fake': info.extra.get('fake'),"
        " 'dist': info.distribution, 'version': info.version}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    data = json.loads(out.stdout)
    assert data["sdk"] == []
    assert data["caps"] == CAPABILITIES.to_dict()
    assert data["fake"] == "bidi_openai_realtime.testing:serve"
    assert data["dist"] == "bidi-openai-realtime"
    assert data["version"] == __version__ == "0.1.0"


def test_capabilities() -> None:
    """The declared capabilities match what the plugin implements."""
    assert CAPABILITIES.input_modalities == ("text", "audio", "image")
    assert CAPABILITIES.output_modalities == ("text", "audio")
    assert CAPABILITIES.tools
    assert CAPABILITIES.interruption
    assert CAPABILITIES.output_truncation
    assert not CAPABILITIES.resumption
    assert CAPABILITIES.connection_limit_s == 3600
    assert CAPABILITIES.input_sample_rates == (24000,)
    assert CAPABILITIES.output_sample_rate == 24000
    assert CAPABILITIES.resamples_input
    assert isinstance(OpenAIRealtimeModel(), SupportsTruncation)


def test_public_names() -> None:
    """__all__ is sorted and every name in it resolves."""
    names = bidi_openai_realtime.__all__
    assert names == sorted(names)
    for name in names:
        assert getattr(bidi_openai_realtime, name) is not None
    with pytest.raises(AttributeError):
        _ = bidi_openai_realtime.nothing_here


def test_registry_builds_the_model() -> None:
    """get_model('openai_realtime') builds the model with the default id and rejects typos."""
    model = Registry().get_model("openai_realtime")
    assert isinstance(model, OpenAIRealtimeModel)
    assert model.model_id == DEFAULT_MODEL_ID == "gpt-realtime"
    with pytest.raises(ConfigError, match="model_id"):
        Registry().get_model("openai_realtime", modelid="x")


def test_credentials_probe_reads_only_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The credentials probe says whether OPENAI_API_KEY is set."""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    assert credentials_configured() is False
    monkeypatch.setenv("OPENAI_API_KEY", "sk-x")
    assert credentials_configured() is True
    info = Registry().model_info("openai_realtime")
    assert info.extra["credentials"]() is True


async def test_fake_satisfies_the_fake_server_contract() -> None:
    """serve() loads through load_fake and yields a FakeServer with one assistant per connection."""
    factory = load_fake("bidi_openai_realtime.testing:serve")
    async with factory(assistant_config=AssistantConfig(seed=3)) as fake:
        assert isinstance(fake, FakeServer)
        assert fake.model_kwargs == {
            "client_config": {"api_key": "fake-key", "base_url": f"http://127.0.0.1:{fake.port}/v1"}
        }
        model = Registry().get_model("openai_realtime", **fake.model_kwargs)
        await model.start()
        await model.send(BidiTextInputEvent(text="contract"))
        async with asyncio.timeout(15):
            async for event in model.receive():
                if isinstance(event, BidiResponseCompleteEvent):
                    break
        await model.stop()
        assert len(fake.assistants) == 1
        assert fake.assistants[0].config.seed == 3
        assert ("text", "contract") in fake.assistants[0].inputs
        assert fake.received[0]["type"] == "session.update"
    with pytest.raises(ConfigError, match="Accepted keys"):
        async with serve(bogus=True):
            pass


async def test_agent_runs_a_tool_against_the_fake(fake: OpenAIRealtimeFake) -> None:
    """A BidiAgent with one @tool answers a text turn that calls the tool, over the real wire."""
    from bidi_core import BidiAgent, tool

    @tool
    def get_weather(city: str) -> str:
        """Return the weather for a city.

        Args:
            city: The city name.
        """
        return f"sunny in {city}"

    agent = BidiAgent(
        OpenAIRealtimeModel(**fake.model_kwargs), tools=[get_weather], system_prompt="Be brief."
    )
    async with agent:
        await agent.send('What is the weather? get_weather {"city": "Paris"}')
        async with asyncio.timeout(20):
            async for event in agent.receive():
                if isinstance(event, BidiResponseCompleteEvent) and event.stop_reason == "complete":
                    break
    texts = [b.get("text", "") for m in agent.messages for b in m["content"]]
    assert "get_weather returned sunny in Paris." in texts
    output = next(
        f["item"]
        for f in fake.client_events("conversation.item.create")
        if f["item"]["type"] == "function_call_output"
    )
    assert output["output"] == "sunny in Paris"
    session = fake.client_events("session.update")[0]["session"]
    assert session["instructions"] == "Be brief."
    assert session["tools"][0]["name"] == "get_weather"


async def test_agent_barge_in_truncates_the_interrupted_item(fake: OpenAIRealtimeFake) -> None:
    """On barge-in the agent calls truncate(); the fake receives a valid truncate or delete."""
    from bidi_core import BidiAgent

    agent = BidiAgent(OpenAIRealtimeModel(**fake.model_kwargs))
    async with agent:
        await agent.send("tell me a story")
        events = aiter(agent.receive())
        async with asyncio.timeout(20):
            while not isinstance(await anext(events), BidiAudioStreamEvent):
                pass
            await asyncio.sleep(0.1)
            pcm = speak("stop", 24000) + bytes(24000 * 2 * 6 // 10)
            for offset in range(0, len(pcm), 960):
                await agent.send(
                    BidiAudioInputEvent(audio=pcm[offset : offset + 960], sample_rate=24000)
                )
            seen = []
            while True:
                event = await anext(events)
                seen.append(event)
                if isinstance(event, BidiResponseCompleteEvent) and event.stop_reason == "complete":
                    break
        for _ in range(50):  # the truncate call runs in the background
            record = fake.connections[0]
            if record.truncations or record.deletions:
                break
            await asyncio.sleep(0.02)
    assert sum(isinstance(e, BidiInterruptionEvent) for e in seen) == 1
    record = fake.connections[0]
    assert record.truncations or record.deletions
    assert record.refused == []
    interrupted = [m for m in agent.messages if any(b.get("interrupted") for b in m["content"])]
    assert interrupted


async def test_agent_restarts_after_session_expired(fake: OpenAIRealtimeFake) -> None:
    """At session_expired the agent restarts the model with history and the talk goes on."""
    from bidi_core import BidiAgent, BidiConnectionRestartEvent

    agent = BidiAgent(OpenAIRealtimeModel(**fake.model_kwargs))
    async with agent:
        events = aiter(agent.receive())

        async def turn() -> list[object]:
            seen = []
            async with asyncio.timeout(20):
                while True:
                    event = await anext(events)
                    seen.append(event)
                    if isinstance(event, BidiResponseCompleteEvent):
                        return seen

        await agent.send("remember the tulips")
        await turn()
        fake.assistants[-1].inject_fault("time_limit")
        async with asyncio.timeout(20):
            while not isinstance(await anext(events), BidiConnectionRestartEvent):
                pass
        await agent.send("recall")
        answer = await turn()
    texts = [getattr(e, "text", "") for e in answer if getattr(e, "is_final", False)]
    # The last user text before "recall" lives only in the replayed history.
    assert "Earlier you said: remember the tulips." in texts
    assert len(fake.connections) == 2
    replayed = [
        i["content"][0].get("text")
        for i in fake.connections[1].items
        if i.get("role") == "user" and i["content"][0]["type"] == "input_text"
    ]
    assert replayed[:1] == ["remember the tulips"]


async def test_a_time_limit_directive_does_not_end_every_later_connection(
    fake: OpenAIRealtimeFake,
) -> None:
    """After a `[fault:time_limit]` turn restarts twice, the next line is answered.

    Regression: the turn stayed in the replayed history, and the fake's first response
    on each new connection (which answers the history's unanswered texts with the new
    one, as the service does) fired its directive again: restarts forever, no answer.
    """
    from bidi_core import BidiAgent, BidiConnectionRestartEvent, BidiTranscriptStreamEvent

    agent = BidiAgent(OpenAIRealtimeModel(**fake.model_kwargs))
    async with agent:
        events = aiter(agent.receive())
        await agent.send("hello [fault:time_limit]")
        restarts = 0
        async with asyncio.timeout(20):
            while restarts < 2:  # the directive fires, then once more on the resent turn
                if isinstance(await anext(events), BidiConnectionRestartEvent):
                    restarts += 1
        for _ in range(100):  # the second restart's new connection is up
            if len(fake.connections) == 3 and agent.model.state.value == "open":
                break
            await asyncio.sleep(0.02)
        await agent.send("what next")
        answer = None
        async with asyncio.timeout(20):
            while answer is None:
                event = await anext(events)
                assert not isinstance(event, BidiConnectionRestartEvent), "restarted again"
                if (
                    isinstance(event, BidiTranscriptStreamEvent)
                    and event.is_final
                    and event.role == "assistant"
                ):
                    answer = event.text
    assert answer is not None
    assert answer.endswith("what next.")
    assert agent.stats.restarts == 2
    assert len(fake.connections) == 3


async def test_bidi_chat_fake_talks_to_openai_realtime() -> None:
    """`bidi chat --model openai_realtime --fake` answers a typed line through the fake server."""
    cli = pytest.importorskip("bidi_core.cli")
    chat_module = pytest.importorskip("bidi_core.cli._chat")
    args = cli.build_parser().parse_args(
        ["chat", "--model", "openai_realtime", "--fake", "--settle", "0.3"]
    )
    out = io.StringIO()
    stats = await chat_module.chat(args, stdin=io.StringIO("hello from the cli\n"), stdout=out)
    text = out.getvalue()
    assert "openai_realtime fake server" in text
    assert "You said: hello from the cli." in text
    assert stats.input_tokens > 0
