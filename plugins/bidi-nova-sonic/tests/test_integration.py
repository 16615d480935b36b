"""Packaging, registry, credentials detection, the agent and the CLI with Nova Sonic."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from bidi_core import BidiResponseCompleteEvent, BidiTranscriptStreamEvent, Registry
from bidi_core.testing import FakeServer, load_fake
from bidi_nova_sonic import CAPABILITIES, DEFAULT_MODEL_ID, NovaSonicModel
from bidi_nova_sonic import _eventstream as es
from bidi_nova_sonic._hooks import credentials_configured
from bidi_nova_sonic.testing import FakeNovaServer, serve

HEAVY = ("boto3", "botocore", "aws_sdk_bedrock_runtime", "smithy_core", "awscrt", "h2")


def test_import_and_list_models_import_no_sdk() -> None:
    """import bidi_core + list_models() + import bidi_nova_sonic import no AWS SDK."""
    code = (
        "import sys, json, bidi_core; bidi_core.list_models(); import bidi_nova_sonic; "
        f"print(json.dumps([m for m in {list(HEAVY)!r} if m in sys.modules]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert json.loads(out.stdout) == []


def test_registry_lists_nova_sonic_with_capabilities_and_fake() -> None:
    """The entry point registers nova_sonic with its capabilities, credentials check and fake."""
    info = Registry().model_info("nova_sonic")
    assert info.distribution == "bidi-nova-sonic"
    assert info.capabilities == CAPABILITIES
    assert info.extra["fake"] == "bidi_nova_sonic.testing:serve"
    assert callable(info.extra["credentials"])
    assert CAPABILITIES.input_modalities == ("text", "audio")
    assert CAPABILITIES.connection_limit_s == 480
    assert not CAPABILITIES.output_truncation
    assert not CAPABILITIES.resumption


def test_get_model_builds_the_default_model_without_io() -> None:
    """get_model('nova_sonic') builds an unstarted NovaSonicModel for the default model id."""
    model = Registry().get_model("nova_sonic")
    assert isinstance(model, NovaSonicModel)
    assert model.model_id == DEFAULT_MODEL_ID


async def test_load_fake_yields_a_fake_server() -> None:
    """The registered fake spec loads and satisfies the FakeServer contract."""
    serve_fake = load_fake("bidi_nova_sonic.testing:serve")
    async with serve_fake() as fake:
        assert isinstance(fake, FakeServer)
        assert fake.model_kwargs["client_config"]["endpoint_uri"].startswith("https://127.0.0.1:")


def test_credentials_check_reads_only_env_and_files(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The credentials callable looks at env vars and ~/.aws files, never the network."""
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_SHARED_CREDENTIALS_FILE",
        "AWS_CONFIG_FILE",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert credentials_configured() is False
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDFAKE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "fake")
    assert credentials_configured() is True
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    aws = tmp_path / ".aws"
    aws.mkdir()
    (aws / "credentials").write_text("[default]\naws_access_key_id = AKIDFAKE\n")
    assert credentials_configured() is True
    (aws / "credentials").write_text("[default]\nregion = us-east-1\n")
    assert credentials_configured() is False


def test_eventstream_codec_round_trips_and_detects_corruption() -> None:
    """Event-stream messages survive encode/decode in pieces; a bad CRC is an error."""
    frame = es.encode_message({":event-type": "chunk", "n": 7, "b": b"\x01", "t": True}, b"hi")
    decoder = es.MessageDecoder()
    assert decoder.feed(frame[:5]) == []
    (message,) = decoder.feed(frame[5:] + frame)[:1]
    assert message.headers == {":event-type": "chunk", "n": 7, "b": b"\x01", "t": True}
    assert message.payload == b"hi"
    broken = bytearray(frame)
    broken[-6] ^= 1
    with pytest.raises(es.EventStreamError, match="CRC"):
        es.decode_message(bytes(broken))


async def test_agent_runs_a_tool_turn_against_the_fake() -> None:
    """BidiAgent with one @tool: a text turn calls the tool and answers with its result."""
    from bidi_core import BidiAgent, tool

    @tool
    def lookup_city(city: str) -> str:
        """Return the weather of a city.

        Args:
            city: The city.
        """
        return f"sunny in {city}"

    async with serve() as fake:
        model = NovaSonicModel(**fake.model_kwargs)
        agent = BidiAgent(model, tools=[lookup_city], system_prompt="Use tools.")
        answers: list[str] = []
        async with agent:
            await agent.send('lookup_city {"city": "Paris"}')
            async with asyncio.timeout(20):
                async for event in agent.receive():
                    if isinstance(event, BidiTranscriptStreamEvent) and event.is_final:
                        answers.append(event.text)
                    if (
                        isinstance(event, BidiResponseCompleteEvent)
                        and event.stop_reason == "complete"
                    ):
                        break
        assert answers == ["lookup_city returned sunny in Paris."]
        assert fake.protocol_errors == []
        assert fake.session_ends == 1
        assert any(m["role"] == "assistant" for m in agent.messages)


async def test_agent_restarts_after_time_limit_with_history() -> None:
    """A Nova modelTimeoutException makes the agent restart with the history replayed."""
    from bidi_core import BidiAgent, BidiConnectionRestartEvent

    async with serve() as fake:
        agent = BidiAgent(NovaSonicModel(**fake.model_kwargs))
        finals: list[str] = []
        restarts = 0
        async with agent:
            await agent.send("remember the tulips")
            async with asyncio.timeout(20):
                async for event in agent.receive():
                    if isinstance(event, BidiResponseCompleteEvent) and restarts == 0:
                        fake.assistants[-1].inject_fault("time_limit")
                    if isinstance(event, BidiConnectionRestartEvent):
                        restarts += 1
                        await agent.send("recall")
                    if isinstance(event, BidiTranscriptStreamEvent) and event.is_final:
                        finals.append(event.text)
                        if event.text.startswith("Earlier"):
                            break
        assert restarts == 1
        assert finals[-1].startswith("Earlier you said: remember the tulips")
        assert len(fake.requests) == 2


def _cli_available() -> bool:
    try:
        from bidi_core.io import TextInput  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.mark.skipif(
    not _cli_available(), reason="bidi_core.io (the CLI's text IO) is not installed"
)
def test_cli_chat_with_the_fake(capsys: pytest.CaptureFixture[str]) -> None:
    """`bidi chat --model nova_sonic --fake` talks to this plugin's fake offline."""
    from bidi_core.cli import main

    stdin = io.StringIO("hello from the cli\n")
    monkey = pytest.MonkeyPatch()
    monkey.setattr(sys, "stdin", stdin)
    try:
        code = main(["chat", "--model", "nova_sonic", "--fake", "--settle", "0.5"])
    finally:
        monkey.undo()
    out = capsys.readouterr().out
    assert code == 0
    assert "You said: hello from the cli." in out


async def test_fake_server_contract_fields(fake: FakeNovaServer) -> None:
    """model_kwargs hold the loopback endpoint, the CA bundle and a static-credential session."""
    client = fake.model_kwargs["client_config"]
    assert client["endpoint_uri"] == fake.endpoint_uri
    pem = await asyncio.to_thread(Path(client["ca_bundle"]).read_bytes)
    assert pem.startswith(b"-----BEGIN CERTIFICATE-----")
    creds = client["boto_session"].get_credentials()
    assert creds.method == "explicit"
    assert client["boto_session"].region_name == "us-east-1"


async def test_agent_loses_no_audio_when_the_service_ends_the_stream_mid_speech() -> None:
    """Audio streamed through BidiAgent across a modelTimeoutException all arrives."""
    import base64

    from bidi_core import BidiAgent
    from bidi_core.events import BidiAudioInputEvent, BidiConnectionStartEvent

    chunks = [i.to_bytes(4, "little") + bytes(636) for i in range(60)]
    async with serve() as fake:
        agent = BidiAgent(NovaSonicModel(**fake.model_kwargs))
        connections = 0
        async with agent:
            restarted = asyncio.Event()

            async def watch() -> None:
                nonlocal connections
                async for event in agent.receive():
                    if isinstance(event, BidiConnectionStartEvent):
                        connections += 1
                        if connections == 2:
                            restarted.set()

            watcher = asyncio.create_task(watch())
            for i, pcm in enumerate(chunks):
                if i == 20:
                    await fake.inject_exception("modelTimeoutException", "Model has timed out.")
                await agent.send(BidiAudioInputEvent(audio=pcm, sample_rate=16000))
                await asyncio.sleep(0.002)
            async with asyncio.timeout(20):
                await restarted.wait()
            await agent.send("done")  # a turn on the new stream, after the flushed audio
            await asyncio.sleep(0.2)
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
    pcm = [
        base64.b64decode(next(iter(e["event"].values()))["content"])
        for e in fake.received
        if "audioInput" in e["event"]
    ]
    received = {p[i : i + 640] for p in pcm for i in range(0, len(p), 640)}  # replays join chunks
    assert agent.stats.restarts == 1
    assert set(chunks) <= received


async def test_bidi_chat_fake_without_the_test_extra_names_this_plugin(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """--fake without h2 (the test extra) names bidi-nova-sonic[test], not another plugin.

    Regression: the message was hard-coded in the core and named bidi-openai-realtime[test].
    """
    from bidi_core import PluginLoadError
    from bidi_core.cli import build_parser
    from bidi_core.cli._chat import chat

    monkeypatch.setitem(sys.modules, "h2", None)  # as if the test extra were missing
    monkeypatch.delitem(sys.modules, "bidi_nova_sonic.testing")
    args = build_parser().parse_args(["chat", "--model", "nova_sonic", "--fake"])
    with pytest.raises(PluginLoadError) as info:
        await chat(args, stdin=io.StringIO("hello\n"), stdout=io.StringIO())
    message = str(info.value)
    assert "needs bidi-nova-sonic's test extra" in message
    assert "./dev install bidi-nova-sonic[test]" in message
    assert "openai" not in message
