"""Entry-point discovery through real installed metadata (throwaway distributions)."""

from __future__ import annotations

import importlib.metadata
import io
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

import bidi_core
from bidi_core import DuplicateModelError, PluginLoadError, Registry, UnknownModelError
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


# ------------------------------------------------- one bad plugin, the others work

CLASH_HOOKS = """
import bidi_core

def _create(**config):
    from bidi_core.simulated import SimulatedModel
    return SimulatedModel(**config)

@bidi_core.hookimpl
def bidi_register_models(register):
    register("shared_voice", _create, summary="Claimed twice.")
    register("{name}", _create, summary="Only mine.")
"""


def print_models_text(registry: Registry) -> str:
    """What `bidi models` prints for *registry*."""
    from bidi_core.cli._models import print_models

    out = io.StringIO()
    print_models(registry, out=out)
    return out.getvalue()


def test_two_distributions_claiming_one_name_break_nothing_else(site: Path) -> None:
    """A clash is reported once, naming both distributions; every other model still works."""
    install_dist(site, "bidi-throwaway-one", "1.0", CLASH_HOOKS)
    install_dist(site, "bidi-throwaway-two", "2.0", CLASH_HOOKS)
    registry = Registry()
    names = [info.name for info in registry.list_models()]
    assert {"simulated", "throwaway_one", "throwaway_two"} <= set(names)
    assert "shared_voice" not in names
    for name in ("simulated", "throwaway_one", "throwaway_two"):
        assert isinstance(registry.get_model(name), SimulatedModel)
    (clash,) = [e for e in registry.plugin_errors if isinstance(e, DuplicateModelError)]
    message = str(clash)
    assert "'bidi-throwaway-one' 1.0" in message
    assert "'bidi-throwaway-two' 2.0" in message
    assert "bidi_core" not in message  # the core is not blamed
    with pytest.raises(DuplicateModelError) as info:
        registry.get_model("shared_voice")
    assert info.value is clash
    text = print_models_text(registry)
    assert "throwaway_one" in text
    assert text.count("'shared_voice' is registered by more than one plugin") == 1


@pytest.mark.parametrize(
    ("hooks", "what"),
    [
        pytest.param("raise SystemExit(3)\n", "SystemExit(3)", id="exit-at-import"),
        pytest.param("raise KeyboardInterrupt\n", "KeyboardInterrupt", id="ctrl-c-at-import"),
        pytest.param(
            "import bidi_core\n\n@bidi_core.hookimpl\ndef bidi_register_models(register):\n"
            "    raise SystemExit('bye')\n",
            "SystemExit(bye)",
            id="exit-in-hook",
        ),
        pytest.param(
            "import bidi_core\n\n@bidi_core.hookimpl\ndef bidi_register_models(register):\n"
            "    raise KeyboardInterrupt\n",
            "KeyboardInterrupt",
            id="ctrl-c-in-hook",
        ),
    ],
)
def test_a_plugin_raising_an_exit_is_reported_and_bidi_models_goes_on(
    site: Path, hooks: str, what: str
) -> None:
    """SystemExit/KeyboardInterrupt raised by a plugin is that plugin's error, not the end."""
    install_dist(site, "bidi-throwaway-rude", "0.1", hooks)
    install_dist(site, "bidi-throwaway", "1.0", GOOD_HOOKS)
    registry = Registry()
    text = print_models_text(registry)
    assert "throwaway  (bidi-throwaway 1.0)" in text
    assert "simulated" in text
    (error,) = [e for e in registry.plugin_errors if "throwaway_rude" in str(e)]
    assert what in str(error)
    assert f"warning: {error}" in text


def test_a_credentials_callable_that_exits_does_not_end_bidi_models(site: Path) -> None:
    """SystemExit from a plugin's credentials callable counts as 'credentials missing'."""
    hooks = GOOD_HOOKS.replace(
        'summary="A throwaway test plugin.")',
        'summary="A throwaway test plugin.", credentials=lambda: exit(4))',
    )
    install_dist(site, "bidi-throwaway", "1.0", hooks)
    text = print_models_text(Registry())
    assert "throwaway  (bidi-throwaway 1.0)  credentials: missing" in text
    assert "simulated" in text


def test_a_second_distribution_with_a_taken_plugin_name_is_reported(site: Path) -> None:
    """Two distributions with one entry-point name: the second is reported, not silently dropped."""
    install_dist(site, "bidi-throwaway", "1.0", GOOD_HOOKS)
    install_dist(site, "bidi-throwaway-copy", "2.0", GOOD_HOOKS)
    entry_points = site / "bidi_throwaway_copy-2.0.dist-info" / "entry_points.txt"
    entry_points.write_text("[bidi]\nthrowaway = bidi_throwaway_copy._hooks\n")
    registry = Registry()
    loaded = {info.distribution for info in registry.list_models()}
    (kept,) = loaded & {"bidi-throwaway", "bidi-throwaway-copy"}  # whichever came first
    (dropped,) = {"bidi-throwaway", "bidi-throwaway-copy"} - {kept}
    (error,) = [e for e in registry.plugin_errors if "Plugin name 'throwaway'" in str(e)]
    assert f"from distribution {dropped!r} is already taken by distribution {kept!r}" in str(error)
