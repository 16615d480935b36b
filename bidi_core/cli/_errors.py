"""Errors of the ``bidi`` command: one line that says what to do, never a traceback.

Library errors say how to fix things in Python (``client_config={'api_key': ...}``);
on the command line the same setting is ``--set client_config.api_key=...``, so
messages are rewritten into that form. ``bidi --debug COMMAND`` shows the traceback.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable
from typing import TextIO

from .._errors import BidiError

__all__ = ["cli_form", "one_line", "run_command"]

# client_config={'api_key': ...}  ->  --set client_config.api_key=...
_INLINE = re.compile(
    r"(?P<cfg>provider_config|client_config)=\{'(?P<key>\w+)':\s*(?P<value>[^{}()]*?)\}"
)
# client_config['audio']['voice']  ->  client_config.audio.voice
_INDEXED = re.compile(r"(?P<cfg>provider_config|client_config)(?P<keys>(?:\['\w+'\])+)")
_QUOTED = re.compile(r"^'([^']*)'$")


def cli_form(text: str) -> str:
    """Rewrite Python config syntax in *text* into the ``--set`` form of ``bidi``."""

    def inline(match: re.Match[str]) -> str:
        value = match["value"].strip()
        quoted = _QUOTED.match(value)
        if quoted:
            value = quoted.group(1)
        return f"--set {match['cfg']}.{match['key']}={value}"

    def indexed(match: re.Match[str]) -> str:
        keys = re.findall(r"\['(\w+)'\]", match["keys"])
        return ".".join([match["cfg"], *keys])

    return _INDEXED.sub(indexed, _INLINE.sub(inline, text))


def _leaf(exc: BaseException) -> BaseException:
    """The error to report: a bidi error inside an exception group, else the first leaf."""
    while isinstance(exc, BaseExceptionGroup):
        leaves = list(exc.exceptions)
        exc = next((e for e in leaves if isinstance(e, BidiError)), leaves[0])
    return exc


def one_line(exc: BaseException) -> str:
    """The message of *exc* for the command line, on one line."""
    exc = _leaf(exc)
    text = " ".join(str(exc).split())
    if isinstance(exc, BidiError):
        return cli_form(text)
    if isinstance(exc, ImportError) and getattr(exc, "name", None):
        return (
            f"a package is missing ({text}); install it (pip install {exc.name}), "
            "or run with --debug for the traceback."
        )
    detail = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return f"unexpected error ({detail}); run with --debug for the traceback."


def run_command(
    command: str,
    run: Callable[[], int],
    *,
    debug: bool = False,
    stream: TextIO | None = None,
) -> int:
    """Run one subcommand, turning any error into one line on stderr and exit status 1.

    Ctrl-C exits with 130. With *debug* errors propagate (the traceback is shown).
    """
    out = stream or sys.stderr
    try:
        return run()
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # the reader went away (`bidi models | head`): stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except Exception as exc:  # every failure of a command becomes one line
        if debug:
            raise
        out.write(f"bidi {command}: {one_line(exc)}\n")
        return 1
