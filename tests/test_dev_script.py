"""The ``./dev`` script: its help, and ``./dev install``'s argument checks (no pip run)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

DEV = Path(__file__).resolve().parents[1] / "dev"

pytestmark = pytest.mark.skipif(not DEV.is_file(), reason="./dev is not in this checkout")


def _dev(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(DEV), *args], capture_output=True, text=True, timeout=60, check=False
    )


def test_help_prints_the_header_comment_only() -> None:
    """`./dev help` shows the usage (install, demo, test, nox), not a line of the script."""
    result = _dev("help")
    assert result.returncode == 0
    assert "set -euo pipefail" not in result.stdout
    assert "./dev install [--venv DIR]" in result.stdout
    assert result.stdout.rstrip().endswith("to choose the interpreter yourself.")
    assert _dev().stdout == result.stdout


def test_install_refuses_an_unknown_plugin_naming_the_real_ones() -> None:
    """`./dev install openai` exits 2 and lists what can be installed (nothing installed)."""
    result = _dev("install", "--venv", "/nonexistent/never-created", "openai")
    assert result.returncode == 2
    assert "no plugin named 'openai'" in result.stderr
    assert "gemini_live, nova_sonic, openai_realtime" in result.stderr
    assert not Path("/nonexistent/never-created").exists()
