"""`import bidi_core; bidi_core.list_models()` stays light: no provider SDK, no test tools."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

#: Top-level packages that must not be imported by ``import bidi_core`` + ``list_models()``.
HEAVY = (
    "google",
    "boto3",
    "botocore",
    "aws_sdk_bedrock_runtime",
    "awscrt",
    "websockets",
    "starlette",
    "uvicorn",
    "playwright",
    "openai",
    "soxr",
    "sounddevice",
    "numpy",
    "pytest",
    "hypothesis",
)

PROBE = """
import json, sys, time
t0 = time.perf_counter()
import bidi_core
t1 = time.perf_counter()
after_import = set(sys.modules)
models = bidi_core.list_models()
t2 = time.perf_counter()
print(json.dumps({
    "import_ms": (t1 - t0) * 1000,
    "list_models_ms": (t2 - t1) * 1000,
    "modules": sorted(sys.modules),
    "added_by_list_models": sorted(set(sys.modules) - after_import),
    "models": [m.name for m in models],
    "errors": [str(e) for e in bidi_core.default_registry().plugin_errors],
}))
"""

LIGHT_HOOKS = """
import bidi_core

def _create(**config):
    import numpy  # heavy, but only on use
    raise RuntimeError("not used in this test")

@bidi_core.hookimpl
def bidi_register_models(register):
    register("featherweight", _create, capabilities=bidi_core.ModelCapabilities(),
             summary="Imports its SDK only in the factory.")
"""


def probe(cwd: Path, extra_path: Path | None = None) -> dict[str, Any]:
    """Run the probe in a fresh interpreter (outside the checkout, so the install is used)."""
    env = {k: v for k, v in os.environ.items() if k != "BIDI_DISABLE_PLUGIN_AUTOLOAD"}
    if extra_path is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(extra_path), env.get("PYTHONPATH")]))
    result = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def heavy_modules(modules: list[str]) -> list[str]:
    return [m for m in modules if m.split(".")[0] in HEAVY]


def test_import_and_list_models_import_no_heavy_module(tmp_path: Path) -> None:
    """No provider SDK, resampler, numpy or test tool is imported by listing models."""
    data = probe(tmp_path)
    assert "simulated" in data["models"]
    assert heavy_modules(data["modules"]) == []
    # Measured, never asserted (these machines are noisy); shown with pytest -s.
    print(
        f"\nimport bidi_core: {data['import_ms']:.1f} ms; list_models(): "
        f"{data['list_models_ms']:.1f} ms; list_models() added "
        f"{len(data['added_by_list_models'])} modules: {data['added_by_list_models']}"
    )


def test_light_installed_plugins_keep_list_models_light(tmp_path: Path) -> None:
    """A plugin whose _hooks imports its SDK only in the factory adds no heavy import."""
    site = tmp_path / "site"
    pkg = site / "bidi_featherweight"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "_hooks.py").write_text(LIGHT_HOOKS)
    info = site / "bidi_featherweight-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: bidi-featherweight\nVersion: 0.1\n"
    )
    (info / "entry_points.txt").write_text("[bidi]\nfeatherweight = bidi_featherweight._hooks\n")
    data = probe(tmp_path, extra_path=site)
    assert {"featherweight", "simulated"} <= set(data["models"])
    assert data["errors"] == []
    assert heavy_modules(data["modules"]) == []


def test_the_probe_detects_a_heavy_import(tmp_path: Path) -> None:
    """The check can fail: a plugin importing a heavy module in _hooks is caught."""
    pytest.importorskip("numpy")  # any heavy module that is installed will do
    site = tmp_path / "site"
    pkg = site / "bidi_heavy"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "_hooks.py").write_text("import numpy\n" + LIGHT_HOOKS.replace("featherweight", "heavy"))
    info = site / "bidi_heavy-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: bidi-heavy\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[bidi]\nheavy = bidi_heavy._hooks\n")
    data = probe(tmp_path, extra_path=site)
    assert "heavy" in data["models"]
    assert "numpy" in heavy_modules(data["modules"])
