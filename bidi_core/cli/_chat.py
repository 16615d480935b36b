"""``bidi chat``: a conversation with any installed model, from the terminal."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import json
import os
import statistics
import sys
from collections.abc import Callable
from typing import Any, TextIO

from .._config import deep_merge
from .._errors import ConfigError, MissingDependencyError, ToolError
from .._registry import Registry, default_registry
from ..agent import AgentStats, BidiAgent
from ..io._protocol import BidiInput, BidiOutput
from ._features import agent_features, setup_otel, shutdown_otel
from ._models import credentials_found

__all__ = [
    "Listener",
    "choose_model",
    "chat",
    "load_tool",
    "parse_settings",
    "print_summary",
    "run_chat",
]


def choose_model(
    registry: Registry, requested: str | None, *, fake: bool
) -> tuple[str, str | None]:
    """Return the model to use and a one-line note saying why (None if it was asked for)."""
    if requested:
        return requested, None
    if not fake:
        for info in registry.list_models():
            if info.name != "simulated" and credentials_found(info):
                return info.name, (
                    f"Using {info.name!r} (its credentials were found); "
                    "pass --model NAME to choose another."
                )
    return "simulated", (
        "No model given and no provider credentials found: using the offline 'simulated' "
        "model (pass --model NAME to choose one)."
    )


def parse_settings(settings: list[str]) -> dict[str, Any]:
    """Turn ``["provider_config.audio.voice=alloy", ...]`` into nested keyword arguments.

    Values are parsed as JSON when they are JSON (numbers, booleans, objects), else kept
    as text.

    Raises:
        ConfigError: A setting has no ``=`` or an empty key.
    """
    result: dict[str, Any] = {}
    for item in settings:
        key, sep, raw = item.partition("=")
        path = [part for part in key.strip().split(".") if part]
        if not sep or not path:
            msg = f"--set expects KEY=VALUE (e.g. provider_config.audio.voice=alloy), got {item!r}."
            raise ConfigError(msg)
        try:
            value: Any = json.loads(raw)
        except ValueError:
            value = raw
        nested: dict[str, Any] = {path[-1]: value}
        for part in reversed(path[:-1]):
            nested = {part: nested}
        result = deep_merge(result, nested)
    return result


def load_tool(spec: str) -> Callable[..., Any]:
    """Import ``module:function`` for ``--tool`` (the current directory is searched too).

    Raises:
        ToolError: The module or function cannot be found.
    """
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        msg = f"--tool expects MODULE:FUNCTION (e.g. mytools:get_weather), got {spec!r}."
        raise ToolError(msg)
    # Like `python -m bidi_core`, the `bidi` script finds modules in the current directory.
    here = os.getcwd()
    if here not in sys.path and "" not in sys.path:
        sys.path.insert(0, here)
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        msg = (
            f"Cannot import tool module {module_name!r}: {exc}. Run bidi from the directory "
            "holding it, or add that directory to PYTHONPATH."
        )
        raise ToolError(msg) from exc
    func = getattr(module, attr, None)
    if not callable(func):
        msg = f"Module {module_name!r} has no function {attr!r} for --tool {spec!r}."
        raise ToolError(msg)
    return func  # type: ignore[no-any-return]


def _is_terminal(stream: TextIO | None) -> bool:
    try:
        return bool(stream is not None and stream.isatty())
    except (AttributeError, ValueError):
        return False


class Listener:
    """An output channel that only watches events (no audio to clear or play)."""

    async def handle(self, event: Any) -> None:
        """Look at one event."""

    def clear_audio(self) -> None:
        """Nothing to clear."""

    def played_ms(self, response_id: str) -> float | None:
        """Nothing is played."""
        del response_id
        return None

    async def aclose(self) -> None:
        """Nothing to release."""


class _Prompt(Listener):
    """Shows ``you> `` when the model has finished answering."""

    TEXT = "you> "

    def __init__(self, out: TextIO) -> None:
        self._out = out

    async def handle(self, event: Any) -> None:
        from ..events import BidiResponseCompleteEvent  # noqa: PLC0415

        if isinstance(event, BidiResponseCompleteEvent) and event.stop_reason != "tool_use":
            self._out.write(self.TEXT)
            self._out.flush()


def print_summary(stats: AgentStats, out: TextIO) -> None:
    """Print turns, tool calls, usage and time to first audio per turn."""
    out.write("--- summary ---\n")
    out.write(
        f"turns: {stats.turns}  tool calls: {stats.tool_calls}  "
        f"interruptions: {stats.interruptions}  restarts: {stats.restarts}\n"
    )
    out.write(
        f"usage: {stats.input_tokens} input + {stats.output_tokens} output = "
        f"{stats.total_tokens} tokens\n"
    )
    ttfa = stats.time_to_first_audio_ms
    if ttfa:
        each = ", ".join(f"{v:.0f}" for v in ttfa)
        out.write(
            f"time to first audio per turn: {each} ms (median {statistics.median(ttfa):.0f} ms)\n"
        )
    else:
        out.write("time to first audio per turn: no audio\n")
    if stats.dropped_audio_chunks:
        out.write(f"audio chunks dropped under back-pressure: {stats.dropped_audio_chunks}\n")


async def chat(
    args: argparse.Namespace,
    *,
    registry: Registry | None = None,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    prompt: bool | None = None,
) -> AgentStats:
    """Run one ``bidi chat`` conversation; returns its stats.

    Typed input gets a hint line and, on a terminal (or with *prompt*), a ``you> ``
    prompt after each answer.
    """
    from ..io import TextInput, TextOutput  # noqa: PLC0415 - IO loads on use
    from ..testing._assistant import AssistantConfig  # noqa: PLC0415
    from ..testing._fake import load_fake, missing_test_extra  # noqa: PLC0415

    registry = registry or default_registry()
    out = stdout or sys.stdout
    name, note = choose_model(registry, args.model, fake=args.fake)
    if note:
        out.write(note + "\n")
    kwargs = parse_settings(args.settings)
    tools: list[Any] = [load_tool(spec) for spec in args.tools]
    extra_tools, features = agent_features(
        getattr(args, "mcp", []), getattr(args, "record", None), getattr(args, "otel", False)
    )
    tools += extra_tools
    if features.get("telemetry"):
        out.write(setup_otel() + "\n")
    async with contextlib.AsyncExitStack() as stack:
        if args.fake:
            info = registry.model_info(name)
            spec = info.extra.get("fake")
            if not isinstance(spec, str):
                msg = f"Model {name!r} ships no fake server; run it without --fake."
                raise ConfigError(msg)
            serve = load_fake(spec, info.distribution)
            pace = 0.0 if args.fast or not (args.wav_in or args.mic) else 1.0
            try:
                fake = await stack.enter_async_context(
                    serve(assistant_config=AssistantConfig(pace=pace))
                )
            except ImportError as exc:  # e.g. trustme, for the fake's TLS certificate
                msg = missing_test_extra(spec, info.distribution, exc)
                raise MissingDependencyError(msg) from exc
            kwargs = deep_merge(fake.model_kwargs, kwargs)
            out.write(f"Talking to the {name} fake server (offline).\n")
        model = registry.get_model(name, **kwargs)
        agent = BidiAgent(model, tools=tools, system_prompt=args.system, **features)
        if extra_tools:
            out.write("Starting the MCP server(s)...\n")
        inputs: list[BidiInput] = []
        outputs: list[BidiOutput] = [TextOutput(stream=out)]
        if args.wav_in:
            from ..io import WavFileInput  # noqa: PLC0415

            inputs.append(WavFileInput(args.wav_in, realtime=not args.fast))
        if args.mic:
            from ..io import MicrophoneInput  # noqa: PLC0415

            inputs.append(MicrophoneInput())
        if not inputs:
            inputs.append(TextInput(stream=stdin) if stdin is not None else TextInput())
            out.write("Type a message and press Enter; /quit or Ctrl-D ends the chat.\n")
            source = stdin if stdin is not None else sys.stdin
            if prompt if prompt is not None else _is_terminal(source):
                outputs.append(_Prompt(out))
                out.write(_Prompt.TEXT)
                out.flush()
        if args.wav_out:
            from ..io import WavFileOutput  # noqa: PLC0415

            outputs.append(WavFileOutput(args.wav_out))
        if args.speaker:
            from ..io import SpeakerOutput  # noqa: PLC0415

            outputs.append(SpeakerOutput())
        stats = await agent.run(inputs=inputs, outputs=outputs, settle_s=args.settle)
    print_summary(stats, out)
    if features.get("telemetry"):
        shutdown_otel()
    if features.get("record_to"):
        out.write(f"recorded into {features['record_to']}\n")
    return stats


def run_chat(args: argparse.Namespace) -> int:
    """Entry point of ``bidi chat`` (errors become one line in :func:`bidi_core.cli.main`)."""
    asyncio.run(chat(args))
    return 0
