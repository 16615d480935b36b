"""``bidi models``: what is installed, what it can do, whether credentials were found."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, TextIO

from .._isolate import plugin_code
from .._protocol import ModelCapabilities
from .._registry import ModelInfo, Registry, default_registry

__all__ = ["credentials_found", "describe_capabilities", "run_models"]


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


def describe_capabilities(caps: ModelCapabilities | None) -> str:
    """One short line: modalities, features, rates, connection limit."""
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
    rates = "/".join(str(r // 1000) + "k" for r in caps.input_sample_rates)
    limit = f", limit {caps.connection_limit_s:g}s" if caps.connection_limit_s else ""
    return (
        f"in {'+'.join(caps.input_modalities)} -> out {'+'.join(caps.output_modalities)}; "
        f"{', '.join(features) or 'no extras'}; audio {rates} in, "
        f"{caps.output_sample_rate // 1000}k out{limit}"
    )


def _rows(registry: Registry) -> list[dict[str, Any]]:
    return [
        {
            "name": info.name,
            "distribution": info.distribution,
            "version": info.version,
            "summary": info.summary,
            "credentials": credentials_found(info),
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
        out.write("No models installed. Install a plugin, e.g. pip install bidi-openai-realtime\n")
    for row in rows:
        creds = {True: "found", False: "missing", None: "n/a"}[row["credentials"]]
        dist = printable(f"{row['distribution'] or '?'} {row['version'] or ''}".strip())
        out.write(f"{printable(row['name'])}  ({dist})  credentials: {creds}\n")
        if row["summary"]:
            out.write(f"    {printable(row['summary'])}\n")
        out.write(f"    {describe_capabilities(row['_caps'])}\n")
    for error in errors:
        out.write(f"warning: {printable(error)}\n")


def run_models(args: argparse.Namespace) -> int:
    """Entry point of ``bidi models``."""
    print_models(default_registry(), as_json=bool(args.json))
    return 0
