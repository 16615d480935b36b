"""The ``bidi serve`` command: help, refusals, and a real server process (one and two workers)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from typing import Any

import pytest

from bidi_core import BidiTextInputEvent
from bidi_core.cli import build_parser
from bidi_core.cli._serve import banner, serve_config
from bidi_core.events import BidiResponseCompleteEvent, BidiTranscriptStreamEvent
from bidi_core.remote import RemoteModel
from bidi_core.testing import free_port


def _bidi(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bidi_core", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )


def test_serve_help_describes_endpoints_and_security() -> None:
    """bidi serve --help names the endpoints, the token rule and every option."""
    out = _bidi("serve", "--help").stdout
    for needle in (
        "/v1/session",
        "/v1/twilio",
        "--token",
        "BIDI_SERVE_TOKEN",
        "--allow-origin",
        "--workers",
        "--max-sessions",
        "--idle-timeout",
        "--system-prompt",
        "--tool",
        "--set",
    ):
        assert needle in out, needle


def test_serving_another_address_without_a_token_exits_with_the_fix() -> None:
    """--host 0.0.0.0 without a token: exit 1, saying to set --token or bind loopback."""
    env = {k: v for k, v in os.environ.items() if k != "BIDI_SERVE_TOKEN"}
    done = _bidi("serve", "--host", "0.0.0.0", "--model", "simulated", env=env)
    assert done.returncode == 1
    assert "without a token" in done.stderr
    assert "--token" in done.stderr


def test_the_token_comes_from_the_environment_and_is_never_printed() -> None:
    """BIDI_SERVE_TOKEN is read; the banner says a token is required, not what it is."""
    args = build_parser().parse_args(["serve", "--host", "0.0.0.0", "--model", "simulated"])
    config = serve_config(args, environ={"BIDI_SERVE_TOKEN": "env-secret"})
    assert config.token is not None
    assert config.token.matches("env-secret")

    class Out:
        text = ""

        def write(self, s: str) -> int:
            self.text += s
            return len(s)

    out: Any = Out()
    banner(config, out)
    assert "env-secret" not in out.text
    assert "token: required" in out.text
    assert "<Connect>" in out.text
    assert "/v1/twilio" in out.text


async def _wait_healthy(port: int, proc: subprocess.Popen[str]) -> None:
    async with asyncio.timeout(60):
        while True:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                await asyncio.sleep(0.1)
                continue
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            raw = await reader.read()
            writer.close()
            await writer.wait_closed()
            if b" 200 " in raw.split(b"\r\n", 1)[0]:
                return
            await asyncio.sleep(0.1)


async def _talk(port: int, token: str | None) -> str:
    config: dict[str, Any] = {"url": f"ws://127.0.0.1:{port}/v1/session"}
    if token:
        config["token"] = token
    model = RemoteModel(client_config=config)
    await model.start()
    try:
        await model.send(BidiTextInputEvent(text="hello process"))
        async for event in model.receive():
            if isinstance(event, BidiTranscriptStreamEvent) and event.is_final:
                return event.text
            if isinstance(event, BidiResponseCompleteEvent):
                break
    finally:
        await model.stop()
    raise AssertionError("no answer")


@pytest.mark.parametrize("workers", [1, 2])
async def test_bidi_serve_runs_a_gateway_process(workers: int) -> None:
    """A real `bidi serve` process answers remote sessions, then stops on SIGINT."""
    port = free_port()
    env = {**os.environ, "BIDI_SERVE_TOKEN": "proc-secret"}
    proc = subprocess.Popen(  # noqa: ASYNC220 - started once; the test waits on the socket
        [
            sys.executable,
            "-m",
            "bidi_core",
            "serve",
            "--model",
            "simulated",
            "--port",
            str(port),
            "--workers",
            str(workers),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        await _wait_healthy(port, proc)
        answers = await asyncio.gather(*(_talk(port, "proc-secret") for _ in range(3)))
        assert answers == ["You said: hello process."] * 3
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            out, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
    assert proc.returncode in (0, 130), err
    assert f"listening on http://127.0.0.1:{port}" in out
    assert "proc-secret" not in out + err


def test_the_cli_and_the_serve_package_do_not_import_the_server_stack() -> None:
    """Building the bidi parser and importing bidi_core.serve load no Starlette or uvicorn."""
    probe = (
        "import sys; from bidi_core.cli import build_parser; build_parser(); "
        "import bidi_core.serve, bidi_core.cli._serve; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'starlette', 'uvicorn', 'websockets', 'playwright'}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "[]"
