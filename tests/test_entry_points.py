"""Entry-point discovery through real installed metadata (throwaway distributions)."""

from __future__ import annotations

import importlib.metadata
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

import bidi_core
from bidi_core import PluginLoadError, Registry, UnknownModelError
from bidi_core.simulated import SimulatedModel

GOOD_HOOKS = """
import bidi_core

def _create(**config):
    from bidi_core.simulated import SimulatedModel
    return SimulatedModel(**config)

@bidi_core.hookimpl
def bidi_register_models(register):
    register("{name}", _create, capabilities=bidi_core.ModelCapabilities(tools=False),
             summary="A throwaway test plugin.")
"""


def install_dist(site: Path, dist: str, version: str, hooks: str, target: str = "") -> str:
    """Install ``bidi_x`` + a ``.dist-info`` (METADATA, entry_points.txt) for *dist* in *site*.

    The entry point is named after the distribution without its ``bidi-`` prefix and
    points at ``<package>._hooks`` (or *target*). Returns the entry-point name.
    """
    package = dist.replace("-", "_")
    name = package.removeprefix("bidi_")
    pkg = site / package
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "_hooks.py").write_text(textwrap.dedent(hooks).format(name=name))
    info = site / f"{package}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[bidi]\n{name} = {target or package + '._hooks'}\n")
    return name


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A directory on sys.path holding throwaway distributions; imports undone afterwards."""
    monkeypatch.delenv("BIDI_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    path = tmp_path / "site-packages"
    path.mkdir()
    monkeypatch.syspath_prepend(str(path))
    before = set(sys.modules)
    yield path
    for name in set(sys.modules) - before:
        if name.startswith("bidi_throwaway"):
            del sys.modules[name]


def test_entry_point_plugin_is_found_with_distribution_and_version(site: Path) -> None:
    """A distribution with a `bidi` entry point is loaded, with its name and version."""
    install_dist(site, "bidi-throwaway", "1.2.3", GOOD_HOOKS)
    # Sanity: the metadata really is installed, as importlib.metadata sees it.
    assert importlib.metadata.version("bidi-throwaway") == "1.2.3"
    registry = Registry()
    info = registry.model_info("throwaway")
    assert (info.plugin, info.distribution, info.version) == (
        "throwaway",
        "bidi-throwaway",
        "1.2.3",
    )
    assert info.summary == "A throwaway test plugin."
    assert info.capabilities is not None
    assert info.capabilities.tools is False
    model = registry.get_model("throwaway", provider_config={"seed": 2})
    assert isinstance(model, SimulatedModel)
    assert registry.plugin_errors == []


def test_broken_distribution_is_reported_by_name_and_others_work(site: Path) -> None:
    """A plugin whose module raises ImportError is a PluginLoadError naming it; others load."""
    install_dist(site, "bidi-throwaway", "1.0", GOOD_HOOKS)
    install_dist(
        site, "bidi-throwaway-broken", "0.9", "import provider_sdk_that_is_not_installed\n"
    )
    registry = Registry()
    names = [info.name for info in registry.list_models()]
    assert "throwaway" in names
    assert "simulated" in names
    assert "throwaway_broken" not in names
    (error,) = [e for e in registry.plugin_errors if "throwaway_broken" in str(e)]
    message = str(error)
    assert "Error importing plugin 'throwaway_broken'" in message
    assert "'bidi-throwaway-broken'" in message
    assert "ModuleNotFoundError" in message
    assert "pip install --force-reinstall bidi-throwaway-broken" in message
    assert isinstance(error.__cause__, ImportError)
    with pytest.raises(PluginLoadError, match="throwaway_broken"):
        registry.get_model("throwaway_broken")


def test_entry_point_plugin_with_a_misspelled_hook_does_not_break_others(site: Path) -> None:
    """A typo'd hook name in one installed plugin is reported; every other model works."""
    install_dist(
        site,
        "bidi-throwaway-typo",
        "0.1",
        "import bidi_core\n\n@bidi_core.hookimpl\ndef bidi_register_model(register):\n    pass\n",
    )
    registry = Registry()
    assert isinstance(registry.get_model("simulated"), SimulatedModel)
    (error,) = [e for e in registry.plugin_errors if "throwaway_typo" in str(e)]
    assert "unknown hook(s) 'bidi_register_model'" in str(error)


def test_entry_point_pointing_at_a_missing_attribute_is_reported(site: Path) -> None:
    """An entry point naming an attribute its module lacks is a PluginLoadError."""
    install_dist(site, "bidi-throwaway-attr", "0.1", "", target="bidi_throwaway_attr._hooks:nope")
    registry = Registry()
    (error,) = [e for e in registry.plugin_errors if "throwaway_attr" in str(e)]
    assert "AttributeError" in str(error)


def test_disable_autoload_ignores_installed_plugins(
    site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """BIDI_DISABLE_PLUGIN_AUTOLOAD=1 leaves installed distributions alone (not imported)."""
    install_dist(site, "bidi-throwaway", "1.0", GOOD_HOOKS)
    monkeypatch.setenv("BIDI_DISABLE_PLUGIN_AUTOLOAD", "1")
    registry = Registry()
    with pytest.raises(UnknownModelError):
        registry.get_model("throwaway")
    assert "bidi_throwaway._hooks" not in sys.modules


def test_autoload_false_ignores_installed_plugins(site: Path) -> None:
    """Registry(autoload=False) loads no entry points."""
    install_dist(site, "bidi-throwaway", "1.0", GOOD_HOOKS)
    assert Registry(autoload=False).list_models() == []


def test_core_simulated_entry_point_comes_from_installed_metadata(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`simulated` is registered through bidi-core's own installed entry point."""
    monkeypatch.delenv("BIDI_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    (ep,) = [ep for ep in importlib.metadata.entry_points(group="bidi") if ep.name == "simulated"]
    assert ep.value == "bidi_core._simulated_hooks"
    assert ep.dist is not None
    assert ep.dist.name == "bidi-core"
    info = Registry().model_info("simulated")
    assert (info.plugin, info.distribution, info.version) == (
        "simulated",
        "bidi-core",
        bidi_core.__version__,
    )
    assert info.capabilities is not None
    assert "audio" in info.capabilities.input_modalities
    assert info.extra["credentials"]() is True
