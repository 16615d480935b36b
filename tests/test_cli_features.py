"""`bidi chat` and `bidi serve` with --mcp, --record and --otel."""

from __future__ import annotations

import asyncio
import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("mcp")
pytest.importorskip("opentelemetry.sdk")

from bidi_core.cli import build_parser
from bidi_core.cli._chat import chat
from bidi_core.cli._serve import serve_config
from bidi_core.events import BidiTextInputEvent, BidiTranscriptStreamEvent
from bidi_core.serve import ServeConfig
from bidi_core.serve.testing import gateway

MCP_SERVER = f"{sys.executable} -m bidi_core.testing.mcp_server"


def _listing(directory: Path) -> list[Path]:
    return list(directory.iterdir())


def _args(*argv: str) -> Any:
    return build_parser().parse_args(list(argv))


async def test_chat_with_an_mcp_server_and_a_recording(tmp_path: Path) -> None:
    """`bidi chat --mcp CMD --record DIR`: the MCP tool answers and the talk is recorded."""
    out = io.StringIO()
    stdin = io.StringIO('add {"a": 2, "b": 3}\n')
    record = tmp_path / "rec"
    args = _args("chat", "--mcp", MCP_SERVER, "--record", str(record), "--settle", "0.5")
    await chat(args, stdin=stdin, stdout=out)
    text = out.getvalue()
    assert "assistant: add returned 5." in text
    assert f"recorded into {record}" in text
    assert len(list(record.glob("*.wav"))) == 1
    log = (next(record.glob("*.jsonl"))).read_text().splitlines()
    assert any(json.loads(line)["type"] == "tool_use_stream" for line in log)


def test_chat_with_otel_exports_spans_to_stderr() -> None:
    """`bidi chat --otel` without an OTLP exporter installed prints spans to stderr."""
    result = subprocess.run(
        [sys.executable, "-m", "bidi_core", "chat", "--otel", "--settle", "0.3"],
        input="hello\n",
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={k: v for k, v in __import__("os").environ.items() if not k.startswith("OTEL_")},
    )
    assert result.returncode == 0, result.stderr
    assert "OpenTelemetry: spans and metrics go to" in result.stdout
    assert '"name": "invoke_agent bidi"' in result.stderr
    assert '"name": "bidi.response"' in result.stderr
    assert "You said: hello" not in result.stderr  # no transcript in telemetry


def test_help_lists_the_options() -> None:
    """`bidi chat --help` and `bidi serve --help` describe --mcp, --record and --otel."""
    for command in ("chat", "serve"):
        result = subprocess.run(
            [sys.executable, "-m", "bidi_core", command, "--help"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0
        for option in ("--mcp SERVER", "--record DIR", "--otel"):
            assert option in result.stdout, (command, option)


def test_serve_options_reach_the_config_and_survive_workers(tmp_path: Path) -> None:
    """--mcp/--record/--otel go into ServeConfig and through to_env()/from_env()."""
    args = _args(
        "serve",
        "--model",
        "simulated",
        "--mcp",
        MCP_SERVER,
        "--mcp",
        "http://127.0.0.1:9/mcp",
        "--record",
        str(tmp_path),
        "--otel",
    )
    config = serve_config(args, environ={})
    assert config.mcp == (MCP_SERVER, "http://127.0.0.1:9/mcp")
    assert config.record_to == str(tmp_path)
    assert config.otel is True
    again = ServeConfig.from_env(config.to_env())
    assert (again.mcp, again.record_to, again.otel) == (config.mcp, config.record_to, True)


async def test_a_gateway_session_uses_mcp_tools_and_is_recorded(tmp_path: Path) -> None:
    """Each `bidi serve` session gets the MCP tools and its own recording."""
    async with gateway("simulated", mcp=(MCP_SERVER,), record_to=str(tmp_path)) as gw:
        for _ in range(2):
            model = gw.remote_model()
            await model.start()
            try:
                await model.send(BidiTextInputEvent(text='add {"a": 20, "b": 22}'))
                finals: list[str] = []
                async for event in model.receive():
                    if isinstance(event, BidiTranscriptStreamEvent) and event.is_final:
                        finals.append(event.text)
                        if "returned" in event.text:
                            break
            finally:
                await model.stop()
            assert "add returned 42." in finals
    assert sorted(p.suffix for p in await asyncio.to_thread(_listing, tmp_path)) == [
        ".jsonl",
        ".jsonl",
        ".wav",
        ".wav",
    ]
