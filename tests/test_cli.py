"""The ``bidi`` command line: models, chat and demo."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import wave
from pathlib import Path
from typing import Any

import pytest

import bidi_core
from bidi_core import ConfigError, ModelCapabilities, Registry, ToolError
from bidi_core.cli import build_parser, main
from bidi_core.cli._chat import chat, choose_model, load_tool, parse_settings
from bidi_core.cli._demo import QUESTION, demo, write_question_wav
from bidi_core.simulated import SimulatedModel
from bidi_core.testing.speech import normalize, transcribe


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bidi_core", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_models_lists_simulated_with_capabilities() -> None:
    """`bidi models` names the simulated model, its distribution and capabilities."""
    result = _run("models")
    assert result.returncode == 0, result.stderr
    assert "simulated  (bidi-core " in result.stdout
    assert "in text+audio+image -> out text+audio" in result.stdout
    assert "tools, interruption, truncation, resumption" in result.stdout


def test_models_json_is_machine_readable() -> None:
    """`bidi models --json` prints every model with capabilities and credential status."""
    result = _run("models", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    simulated = next(m for m in data["models"] if m["name"] == "simulated")
    assert simulated["distribution"] == "bidi-core"
    assert simulated["capabilities"]["output_sample_rate"] == 24000
    assert simulated["credentials"] is True


def test_no_command_prints_help_and_fails() -> None:
    """`bidi` without a command shows usage and exits 2."""
    assert main([]) == 2


def test_parse_settings_builds_nested_keywords() -> None:
    """--set KEY=VALUE dots into nested dicts; JSON values are parsed, others kept as text."""
    assert parse_settings(
        [
            "provider_config.audio.voice=alloy",
            "provider_config.audio.output_sample_rate=16000",
            'provider_config.inference={"temperature": 0.5}',
            "model_id=gpt-realtime",
        ]
    ) == {
        "provider_config": {
            "audio": {"voice": "alloy", "output_sample_rate": 16000},
            "inference": {"temperature": 0.5},
        },
        "model_id": "gpt-realtime",
    }
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_settings(["novalue"])


def test_load_tool_errors_name_the_problem() -> None:
    """--tool needs MODULE:FUNCTION that exists."""
    assert load_tool("bidi_core.cli._demo:get_weather").__name__ == "get_weather"
    with pytest.raises(ToolError, match="MODULE:FUNCTION"):
        load_tool("nocolon")
    with pytest.raises(ToolError, match="Cannot import"):
        load_tool("no_such_module_xyz:f")
    with pytest.raises(ToolError, match="no function 'nope'"):
        load_tool("bidi_core.cli._demo:nope")


def test_choose_model_prefers_a_provider_with_credentials() -> None:
    """Without --model the first provider whose credentials exist is used, else simulated."""

    class Plugin:
        def __init__(self, found: bool) -> None:
            self.found = found

        @bidi_core.hookimpl
        def bidi_register_models(self, register: Any) -> None:
            register(
                "acme_voice",
                SimulatedModel,
                capabilities=ModelCapabilities(),
                credentials=lambda: self.found,
            )

    with_keys = Registry(autoload=False)
    with_keys.register_plugin(Plugin(True), name="acme")
    name, note = choose_model(with_keys, None, fake=False)
    assert name == "acme_voice"
    assert note is not None
    assert "credentials were found" in note
    without = Registry(autoload=False)
    without.register_plugin(Plugin(False), name="acme")
    name, note = choose_model(without, None, fake=False)
    assert name == "simulated"
    assert note is not None
    assert "using the offline 'simulated' model" in note
    assert choose_model(without, "acme_voice", fake=False) == ("acme_voice", None)


def _chat_args(*argv: str) -> Any:
    return build_parser().parse_args(["chat", *argv])


async def test_chat_text_with_a_tool_prints_transcript_and_summary() -> None:
    """`bidi chat` reads typed turns, shows tool calls and answers, then a summary."""
    out = io.StringIO()
    stdin = io.StringIO('hello\ncall get_weather {"city": "oslo"}\n')
    stats = await chat(
        _chat_args("--tool", "bidi_core.cli._demo:get_weather", "--settle", "0.3"),
        stdin=stdin,
        stdout=out,
    )
    text = out.getvalue()
    assert text.splitlines()[0].startswith("No model given and no provider credentials found")
    assert "assistant: You said: hello." in text
    assert '[tool call] get_weather {"city": "oslo"}' in text
    assert "assistant: get_weather returned sunny and 21 degrees in Oslo." in text
    assert "turns: 3  tool calls: 1" in text
    assert "time to first audio per turn:" in text
    assert stats.tool_calls == 1


async def test_chat_bad_setting_is_a_clear_error() -> None:
    """A --set key the model does not know fails with the accepted keys."""
    with pytest.raises(ConfigError, match="Accepted keys"):
        await chat(
            _chat_args("--set", "provider_config.voic=x"),
            stdin=io.StringIO(""),
            stdout=io.StringIO(),
        )


def test_chat_fake_needs_a_plugin_fake() -> None:
    """--fake with a model that ships no fake server exits 1 and says why."""
    result = _run("chat", "--model", "simulated", "--fake")
    assert result.returncode == 1
    assert "ships no fake server" in result.stderr


async def test_chat_wav_in_and_out(tmp_path: Path) -> None:
    """--wav-in speaks a 48 kHz stereo WAV to the model; --wav-out records the reply."""
    question = write_question_wav(tmp_path / "q.wav", "hello there")
    reply = tmp_path / "reply.wav"
    out = io.StringIO()
    await chat(
        _chat_args("--wav-in", str(question), "--wav-out", str(reply), "--fast", "--settle", "0.3"),
        stdout=out,
    )
    assert "user: hello there" in out.getvalue()
    assert "assistant: You said: hello there." in out.getvalue()
    with wave.open(str(reply), "rb") as wav:
        rate = wav.getframerate()
        pcm = wav.readframes(wav.getnframes())
    assert transcribe(pcm, rate) == normalize("You said: hello there.")


async def test_demo_runs_the_whole_story(tmp_path: Path) -> None:
    """The demo: a spoken question, a tool call and its answer, a barge-in, a reply WAV."""
    out = io.StringIO()
    stats = await demo(tmp_path, stream=out)
    text = out.getvalue()
    assert f"user: {normalize(QUESTION)}" in text
    assert "[tool result] get_weather" in text
    assert "assistant: get_weather returned sunny and 21 degrees in Paris." in text
    assert "[interrupted] user_speech" in text
    assert "user: stop" in text
    assert "--- summary ---" in text
    assert stats.tool_calls == 1
    assert stats.interruptions == 1
    with wave.open(str(tmp_path / "reply.wav"), "rb") as wav:
        heard = transcribe(wav.readframes(wav.getnframes()), wav.getframerate())
    assert heard.startswith(normalize("get_weather returned sunny and 21 degrees in Paris."))
    # The story was cut mid-word by the barge-in, so only its start is intact.
    assert "once upon a" in heard
    assert heard.endswith(normalize("ou said: stop."))
