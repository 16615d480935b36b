"""The public API: sorted __all__, everything importable, lazy names, py.typed."""

from __future__ import annotations

import importlib
import importlib.resources
import json
import subprocess
import sys
import types
from pathlib import Path

import pytest

import bidi_core

PUBLIC_MODULES = ["bidi_core", "bidi_core.events", "bidi_core.testing"]


def defined_public_names(module: types.ModuleType) -> set[str]:
    """Public names whose objects are defined inside *module* (or its package)."""
    loaded = {name: getattr(module, name) for name in getattr(module, "__all__", [])}
    namespace = {**vars(module), **loaded}
    return {
        name
        for name, value in namespace.items()
        if not name.startswith("_")
        and not isinstance(value, types.ModuleType)
        and str(getattr(value, "__module__", "")).startswith(module.__name__)
    }


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_all_is_sorted_and_unique(name: str) -> None:
    """__all__ is sorted, without duplicates, so additions are easy to review."""
    exported = importlib.import_module(name).__all__
    assert exported == sorted(exported)
    assert len(set(exported)) == len(exported)


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_every_name_in_all_is_importable(name: str) -> None:
    """Every name listed in __all__ can be imported (lazy ones included)."""
    module = importlib.import_module(name)
    namespace: dict[str, object] = {}
    exec(f"from {name} import *", namespace)
    for exported in module.__all__:
        assert exported in namespace, exported
        assert namespace[exported] is getattr(module, exported)


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_every_public_name_is_in_all(name: str) -> None:
    """Public classes and functions defined by the package are all listed in __all__."""
    module = importlib.import_module(name)
    assert defined_public_names(module) - set(module.__all__) == set()


def test_errors_and_events_are_reexported_from_the_package() -> None:
    """Every public name of bidi_core.events is also importable from bidi_core (but helpers)."""
    from bidi_core import events

    helpers = {"StopReason", "event_types", "from_dict"}
    missing = set(events.__all__) - helpers - set(bidi_core.__all__)
    assert missing == set()


def test_lazy_names_are_loaded_on_first_use(tmp_path: Path) -> None:
    """BidiModelBase and ModelState import their asyncio-heavy module only when used."""
    code = (
        "import json, sys, bidi_core\n"
        "before = 'BidiModelBase' in vars(bidi_core) or 'bidi_core._base' in sys.modules\n"
        "cls = bidi_core.BidiModelBase\n"
        "from bidi_core._base import BidiModelBase, ModelState\n"
        "print(json.dumps([before, cls is BidiModelBase,"
        " bidi_core.ModelState is ModelState, 'bidi_core._base' in sys.modules]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert json.loads(result.stdout) == [False, True, True, True]


def test_unknown_attribute_raises_attribute_error() -> None:
    """A missing name is an AttributeError naming it (so hasattr() works)."""
    with pytest.raises(AttributeError, match=r"module 'bidi_core' has no attribute 'NoSuch'"):
        _ = bidi_core.NoSuch  # type: ignore[attr-defined]
    assert not hasattr(bidi_core, "get_modle")


def test_version_is_a_string() -> None:
    """__version__ is exported and looks like a version."""
    assert isinstance(bidi_core.__version__, str)
    assert bidi_core.__version__[0].isdigit()


def test_package_ships_py_typed() -> None:
    """The installed package carries the py.typed marker for type checkers."""
    assert importlib.resources.files("bidi_core").joinpath("py.typed").is_file()
