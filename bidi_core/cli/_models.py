"""``bidi models``: what is installed, what it can do, whether credentials were found."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, TextIO

from .._isolate import plugin_code
from .._protocol import ModelCapabilities
from .._registry import ModelInfo, Registry, default_registry

__all__ = ["credentials_found", "describe_capabilities", "env_vars", "run_models"]


def credentials_found(info: ModelInfo) -> bool | None:
    """Ask the plugin whether credentials are configured; None if it cannot tell."""
    check = info.extra.get("credentials")
    if not callable(check):
        return None
    try:
        with plugin_code():  # plugin code: its SystemExit must not end `bidi models`
            return bool(check())
    except Exception:
        return False


def printable(text: object) -> str:
    """Return *text* with control characters escaped (``\\n``, ``\\x1b``...).

    Plugin-provided strings (summaries, distribution names, error messages) must not
    be able to start new lines or send terminal escapes that fake other output.
    """
    return "".join(
        ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in str(text)
    )


def env_vars(info: ModelInfo) -> list[str]:
    """The environment variables the plugin says the model reads (``register(env_vars=...)``)."""
    names = info.extra.get("env_vars") or ()
    if isinstance(names, str):
        names = (names,)
    return [str(name) for name in names]


def describe_env(info: ModelInfo) -> str | None:
    """One line naming the variables the model reads and which are set (never values)."""
    names = env_vars(info)
    if not names:
        return None
    shown = [f"{name} (set)" if os.environ.get(name) else name for name in names]
    return f"reads {', '.join(shown)}"


def describe_capabilities(caps: ModelCapabilities | None) -> str:
    """One short line: modalities, features, rates (audio models only), connection limit."""
    if caps is None:
        return "(not declared)"
    features = [
        name
        for name, on in (
            ("tools", caps.tools),
            ("interruption", caps.interruption),
            ("truncation", caps.output_truncation),
            ("resumption", caps.resumption),
        )
        if on
    ]
    audio = []
    if "audio" in caps.input_modalities:
        rates = "/".join(f"{r / 1000:g}k" for r in caps.input_sample_rates)
        audio.append(f"{rates} in")
    if "audio" in caps.output_modalities:
        audio.append(f"{caps.output_sample_rate / 1000:g}k out")
    rates_text = f"; audio {', '.join(audio)}" if audio else ""
    limit = f", limit {caps.connection_limit_s:g}s" if caps.connection_limit_s else ""
    return (
        f"in {'+'.join(caps.input_modalities)} -> out {'+'.join(caps.output_modalities)}; "
        f"{', '.join(features) or 'no extras'}{rates_text}{limit}"
    )


def _rows(registry: Registry) -> list[dict[str, Any]]:
    return [
        {
            "name": info.name,
            "distribution": info.distribution,
            "version": info.version,
            "summary": info.summary,
            "credentials": credentials_found(info),
            "env_vars": env_vars(info),
            "env_set": [name for name in env_vars(info) if os.environ.get(name)],
            "fake": info.extra.get("fake"),
            "capabilities": info.capabilities.to_dict() if info.capabilities else None,
            "_caps": info.capabilities,
        }
        for info in registry.list_models()
    ]


def print_models(registry: Registry, *, as_json: bool = False, out: TextIO = sys.stdout) -> None:
    """Print the installed models as a table (or JSON)."""
    rows = _rows(registry)
    errors = registry.plugin_errors
    if as_json:
        clean = [{k: v for k, v in row.items() if k != "_caps"} for row in rows]
        payload = {"models": clean, "plugin_errors": [str(e) for e in errors]}
        json.dump(payload, out, indent=2)
        out.write("\n")
        return
    if not rows:
        out.write(
            "No models installed. Install a plugin from a clone of bidi, e.g. "
            "./dev install openai_realtime\n"
        )
    infos = {info.name: info for info in registry.list_models()}
    for row in rows:
        creds = {True: "found", False: "missing", None: "n/a"}[row["credentials"]]
        if row["credentials"] is False:
            creds += f" (bidi check {row['name']} says what to set)"
        dist = printable(f"{row['distribution'] or '?'} {row['version'] or ''}".strip())
        out.write(f"{printable(row['name'])}  ({dist})  credentials: {creds}\n")
        if row["summary"]:
            out.write(f"    {printable(row['summary'])}\n")
        out.write(f"    {describe_capabilities(row['_caps'])}\n")
        env = describe_env(infos[row["name"]])
        if env:
            out.write(f"    {printable(env)}\n")
    for error in errors:
        out.write(f"warning: {printable(error)}\n")


def run_models(args: argparse.Namespace) -> int:
    """Entry point of ``bidi models``."""
    print_models(default_registry(), as_json=bool(args.json))
    return 0
