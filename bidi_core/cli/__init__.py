"""The ``bidi`` command line: ``bidi models``, ``check``, ``chat``, ``demo`` and ``serve``.

Run ``bidi --help`` (or ``python -m bidi_core --help``) for the options. Every error
is one line on stderr saying what to do (exit status 1); ``bidi --debug COMMAND``
shows the traceback instead.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .._version import __version__
from ._errors import run_command

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """Return the ``bidi`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="bidi",
        description="Bidirectional streaming (realtime speech-to-speech) models.",
    )
    parser.add_argument("--version", action="version", version=f"bidi-core {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    models = sub.add_parser("models", help="list installed models and their capabilities")
    models.add_argument("--json", action="store_true", help="print JSON instead of a table")

    check = sub.add_parser(
        "check",
        help="first contact: check config, credentials, DNS, TLS and a session for a model",
        description="Check that MODEL can be used here: its config and credentials, the "
        "endpoint's name and TLS certificate, and (with credentials) a session opened and "
        "closed. One line per step with the fix; exit status 1 if a step failed. No secret "
        "is ever printed.",
    )
    check.add_argument("model", metavar="MODEL", help="registry name, e.g. openai_realtime")
    _add_set_option(check)
    check.add_argument(
        "--timeout",
        type=float,
        default=15.0,
        metavar="SECONDS",
        help="bound on the whole check (default 15)",
    )

    chat = sub.add_parser("chat", help="talk to a model (text, WAV files or microphone)")
    chat.add_argument(
        "--model",
        help="registry name (default: the first provider with credentials, else 'simulated')",
    )
    _add_set_option(chat)
    chat.add_argument("--system", help="system prompt")
    chat.add_argument("--wav-in", metavar="FILE", help="speak this WAV file to the model")
    chat.add_argument("--wav-out", metavar="FILE", help="write the model's audio to this WAV")
    chat.add_argument("--mic", action="store_true", help="talk through the microphone")
    chat.add_argument("--speaker", action="store_true", help="play the model's audio")
    chat.add_argument(
        "--fast", action="store_true", help="send --wav-in as fast as possible, not in real time"
    )
    chat.add_argument(
        "--tool",
        dest="tools",
        action="append",
        default=[],
        metavar="MODULE:FUNCTION",
        help="a function the model may call (its signature and docstring describe it)",
    )
    chat.add_argument(
        "--fake",
        action="store_true",
        help="run against the provider plugin's offline fake server (no credentials needed)",
    )
    chat.add_argument(
        "--settle",
        type=float,
        default=1.5,
        metavar="SECONDS",
        help="after the input ends, wait this long for the model to finish (default 1.5)",
    )

    demo = sub.add_parser(
        "demo", help="a scripted conversation with the simulated model (tool call, barge-in)"
    )
    demo.add_argument(
        "--out", default="demo-out", metavar="DIR", help="where to write WAVs (demo-out)"
    )
    demo.add_argument(
        "--realtime", action="store_true", help="pace audio in real time (slower, like a call)"
    )
    from ._serve import add_serve_parser  # noqa: PLC0415 - argparse only, no server

    add_serve_parser(sub)
    return parser


def _add_set_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--set",
        dest="settings",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="model setting, dotted into get_model() keywords; VALUE is JSON or text, e.g. "
        "--set provider_config.audio.voice=alloy --set model_id=gpt-realtime",
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``bidi`` command; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    command = args.command
    if command is None:
        parser.print_help(sys.stderr)
        return 2

    def run() -> int:
        # Subcommands load on use: `bidi models` never imports asyncio & co.
        if command == "models":
            from ._models import run_models  # noqa: PLC0415

            return run_models(args)
        if command == "check":
            from ._check import run_check  # noqa: PLC0415

            return run_check(args)
        if command == "chat":
            from ._chat import run_chat  # noqa: PLC0415

            return run_chat(args)
        if command == "demo":
            from ._demo import run_demo  # noqa: PLC0415

            return run_demo(args)
        if command == "serve":
            from ._serve import run_serve  # noqa: PLC0415 - imports the server stack on use

            return run_serve(args)
        parser.print_help(sys.stderr)
        return 2

    return run_command(command, run, debug=bool(args.debug))
