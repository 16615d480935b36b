"""The cached entry-point scan: used when nothing changed, never stale after a change."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

PROBE = """
import json, sys
import bidi_core
models = bidi_core.list_models()
print(json.dumps({
    "models": {m.name: [m.distribution, m.version] for m in models},
    "scanned": "importlib.metadata" in sys.modules,
}))
"""

HOOKS = """
import bidi_core

@bidi_core.hookimpl
def bidi_register_models(register):
    register("{name}", lambda **config: None, summary="A cached plugin.")
"""

_clock = itertools.count(int(time.time()) - 600)


def age(*paths: Path) -> None:
    """Give *paths* a past modification time, later than any given before.

    A fresh time is never trusted by the cache (it could hide a change within the same
    second); a past one, moving forward as a real clock does, is.
    """
    then = next(_clock)
    for path in paths:
        os.utime(path, (then, then))


class Site:
    """A directory on PYTHONPATH holding fake plugin distributions."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.cache = root / "cache"
        self.site = root / "site"
        self.site.mkdir()

    def install(self, dist: str, version: str, names: list[str]) -> Path:
        package = self.site / f"bidi_{dist}"
        package.mkdir(exist_ok=True)
        (package / "__init__.py").write_text("")
        for name in names:
            (package / f"hooks_{name}.py").write_text(HOOKS.format(name=name))
        info = self.site / f"bidi_{dist}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: bidi-{dist}\nVersion: {version}\n"
        )
        lines = [f"{n} = bidi_{dist}.hooks_{n}" for n in names]
        (info / "entry_points.txt").write_text("[bidi]\n" + "\n".join(lines) + "\n")
        age(*info.iterdir(), info, package, self.site)
        return info

    def probe(self, **env: str) -> dict[str, Any]:
        environ = {
            **{k: v for k, v in os.environ.items() if not k.startswith("BIDI_")},
            "PYTHONPATH": str(self.site),
            "BIDI_CACHE_DIR": str(self.cache),
            **env,
        }
        done = subprocess.run(
            [sys.executable, "-c", PROBE],
            cwd=self.root,
            env=environ,
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        data: dict[str, Any] = json.loads(done.stdout)
        return data


@pytest.fixture
def site(tmp_path: Path) -> Site:
    age(tmp_path)
    return Site(tmp_path)


def test_the_second_listing_reads_the_cache_and_lists_the_same(site: Site) -> None:
    """Unchanged installs: the second process lists the same models without scanning."""
    site.install("alpha", "1.0", ["alpha"])
    first = site.probe()
    second = site.probe()
    assert first["scanned"]
    assert not second["scanned"]
    assert second["models"] == first["models"]
    assert first["models"]["alpha"] == ["bidi-alpha", "1.0"]


def test_an_install_an_upgrade_and_an_uninstall_are_seen_at_once(site: Site) -> None:
    """Adding, upgrading or removing a distribution invalidates the cache immediately."""
    old = site.install("alpha", "1.0", ["alpha"])
    site.probe()
    assert not site.probe()["scanned"]
    site.install("beta", "2.0", ["beta"])
    after_install = site.probe()
    assert after_install["scanned"]
    assert "beta" in after_install["models"]
    new = site.site / "bidi_alpha-1.1.dist-info"
    old.rename(new)  # an upgrade, as pip leaves it
    (new / "METADATA").write_text("Metadata-Version: 2.1\nName: bidi-alpha\nVersion: 1.1\n")
    assert site.probe()["models"]["alpha"] == ["bidi-alpha", "1.1"]
    shutil.rmtree(site.site / "bidi_beta-2.0.dist-info")
    after_uninstall = site.probe()
    assert "beta" not in after_uninstall["models"]
    assert "alpha" in after_uninstall["models"]


def test_editing_entry_points_in_place_is_seen(site: Site) -> None:
    """A changed entry_points.txt (no file added or removed) invalidates the cache."""
    info = site.install("alpha", "1.0", ["alpha"])
    site.probe()
    assert not site.probe()["scanned"]
    package = site.site / "bidi_alpha"
    (package / "hooks_gamma.py").write_text(HOOKS.format(name="gamma"))
    (info / "entry_points.txt").write_text("[bidi]\ngamma = bidi_alpha.hooks_gamma\n")
    models = site.probe()["models"]
    assert "gamma" in models
    assert "alpha" not in models


def test_a_fresh_install_is_not_trusted_until_it_settles(site: Site) -> None:
    """Metadata changed in the last seconds is scanned every time (coarse file clocks)."""
    info = site.install("alpha", "1.0", ["alpha"])
    os.utime(info / "entry_points.txt")  # just now
    site.probe()
    assert site.probe()["scanned"]


def test_a_broken_cache_file_is_ignored_and_replaced(site: Site) -> None:
    """A truncated or foreign cache file gives a scan, then a good file again."""
    site.install("alpha", "1.0", ["alpha"])
    site.probe()
    (cache,) = site.cache.iterdir()
    for junk in (b"", b"\x00garbage", cache.read_bytes()[:20]):
        cache.write_bytes(junk)
        data = site.probe()
        assert data["scanned"]
        assert "alpha" in data["models"]
    assert not site.probe()["scanned"]


def test_concurrent_first_listings_all_agree(site: Site) -> None:
    """Many processes writing the cache at once: every one lists the same models."""
    site.install("alpha", "1.0", ["alpha", "delta"])
    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(lambda _: site.probe(), range(6)))
    assert all(r["models"] == results[0]["models"] for r in results)
    assert {"alpha", "delta"} <= set(results[0]["models"])
    assert not site.probe()["scanned"]
    assert [p.name for p in site.cache.iterdir() if p.name.endswith(".tmp")] == []


def test_bidi_no_cache_scans_every_time(site: Site) -> None:
    """BIDI_NO_CACHE=1 reads the installed metadata every time and writes no file."""
    site.install("alpha", "1.0", ["alpha"])
    assert site.probe(BIDI_NO_CACHE="1")["scanned"]
    assert site.probe(BIDI_NO_CACHE="1")["scanned"]
    assert not site.cache.exists()
