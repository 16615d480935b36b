"""The ``bidi`` command line: models, chat and demo."""

from __future__ import annotations

import io
import json
import os
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
from bidi_core.cli._errors import cli_form, run_command
from bidi_core.cli._models import print_models
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


# ------------------------------------------------------------- errors and help


def _one_line_error(result: subprocess.CompletedProcess[str], command: str) -> str:
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"bidi {command}: ")
    return lines[0]


def test_an_unknown_model_is_one_line_that_says_what_to_do() -> None:
    """`bidi chat --model openai` exits 1 with one line suggesting the real name, no traceback."""
    line = _one_line_error(_run("chat", "--model", "openai"), "chat")
    assert "Unknown model: 'openai'. Did you mean 'openai_realtime'?" in line
    assert "pip install bidi-openai " not in line


def test_debug_shows_the_traceback() -> None:
    """`bidi --debug ...` lets the error through with its traceback."""
    result = _run("--debug", "chat", "--model", "openai")
    assert result.returncode == 1
    assert "Traceback" in result.stderr
    assert "UnknownModelError" in result.stderr


def test_demo_without_soxr_is_one_line(tmp_path: Path) -> None:
    """`bidi demo` without soxr says how to install it, in one line, before it starts."""
    code = (
        "import sys\n"
        "sys.modules['soxr'] = None\n"
        "from bidi_core.cli import main\n"
        f"raise SystemExit(main(['demo', '--out', {str(tmp_path)!r}]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    line = _one_line_error(result, "demo")
    assert "needs the soxr resampler" in line
    assert "pip install 'soxr" in line
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("library", "cli"),
    [
        (
            "No key: pass client_config={'api_key': ...} or set KEY.",
            "No key: pass --set client_config.api_key=... or set KEY.",
        ),
        (
            "pass client_config={'region': 'us-east-1'} or a session",
            "pass --set client_config.region=us-east-1 or a session",
        ),
        (
            "raise client_config['open_timeout'] or provider_config['audio']['voice']",
            "raise client_config.open_timeout or provider_config.audio.voice",
        ),
        (
            "client_config={'boto_session': boto3.Session(...)}",
            "client_config={'boto_session': boto3.Session(...)}",
        ),
    ],
)
def test_errors_name_settings_the_way_the_cli_takes_them(library: str, cli: str) -> None:
    """Python config syntax in an error becomes the --set form on the command line."""
    assert cli_form(library) == cli


def test_a_non_bidi_error_is_one_line_too() -> None:
    """An unexpected exception is one line pointing at --debug, never a traceback."""
    err = io.StringIO()

    def boom() -> int:
        raise RuntimeError("wires crossed")

    assert run_command("chat", boom, stream=err) == 1
    assert err.getvalue() == (
        "bidi chat: unexpected error (RuntimeError: wires crossed); "
        "run with --debug for the traceback.\n"
    )
    with pytest.raises(RuntimeError):
        run_command("chat", boom, debug=True, stream=err)


# ------------------------------------------------------------------ chat


def test_chat_tool_is_imported_from_the_current_directory(tmp_path: Path) -> None:
    """`bidi chat --tool mytools:fn` finds mytools.py in the current directory (console script)."""
    (tmp_path / "mytools.py").write_text(
        "def get_time(city: str) -> str:\n"
        '    """Get the time.\n\n    Args:\n        city: A city.\n    """\n'
        "    return f'noon in {city}'\n"
    )
    script = Path(sys.executable).with_name("bidi")
    result = subprocess.run(
        [str(script), "chat", "--tool", "mytools:get_time", "--settle", "0.3"],
        input='call get_time {"city": "Oslo"}\n',
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
        check=False,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
    )
    assert result.returncode == 0, result.stderr
    assert "get_time returned noon in Oslo." in result.stdout


async def test_chat_shows_how_to_type_and_quit_and_prompts() -> None:
    """Typed chat starts with a hint naming /quit, and prompts `you> ` after each answer."""
    out = io.StringIO()
    await chat(
        _chat_args("--settle", "0.3"), stdin=io.StringIO("hello\n/quit\n"), stdout=out, prompt=True
    )
    lines = out.getvalue().splitlines()
    assert lines[1] == "Type a message and press Enter; /quit or Ctrl-D ends the chat."
    assert lines[2] == "you> assistant: You said: hello."
    assert lines[3].startswith("you> --- summary ---")


# ---------------------------------------------------------------- models


def test_models_names_env_vars_and_omits_audio_rates_for_text_models() -> None:
    """A text-only model shows no audio rates; each model names the env vars it reads."""

    class Plugin:
        @bidi_core.hookimpl
        def bidi_register_models(self, register: Any) -> None:
            register(
                "acme_text",
                SimulatedModel,
                capabilities=ModelCapabilities(
                    input_modalities=("text",),
                    output_modalities=("text",),
                    tools=True,
                    interruption=False,
                ),
                credentials=lambda: False,
                env_vars=("ACME_API_KEY", "ACME_REGION"),
            )

    registry = Registry(autoload=False)
    registry.register_plugin(Plugin(), name="acme")
    out = io.StringIO()
    print_models(registry, out=out)
    lines = out.getvalue().splitlines()
    assert (
        lines[0] == "acme_text  (?)  credentials: missing (bidi check acme_text says what to set)"
    )
    assert lines[1] == "    in text -> out text; tools"
    assert lines[2] == "    reads ACME_API_KEY, ACME_REGION"
    as_json = io.StringIO()
    print_models(registry, as_json=True, out=as_json)
    row = json.loads(as_json.getvalue())["models"][0]
    assert row["env_vars"] == ["ACME_API_KEY", "ACME_REGION"]
    assert row["env_set"] == []
