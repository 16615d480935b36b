"""The template plugin (plugins/_template) keeps working, so copies of it start green.

The noxfile skips ``plugins/_*`` in ``plugin_tests``; this test imports the template
from its source directory instead and runs the conformance suite against its fake.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from bidi_core import Registry
from bidi_core.testing import AssistantConfig, ConformanceCase, conformance_cases
from bidi_core.testing.faults import FaultCase, fault_cases

TEMPLATE = Path(__file__).resolve().parents[1] / "plugins" / "_template"


@pytest.fixture
def template(monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """Import bidi_example from plugins/_template; forget it afterwards."""
    if not (TEMPLATE / "bidi_example").is_dir():
        pytest.skip("plugins/_template is not part of this checkout (e.g. an sdist)")
    stale = [name for name in sys.modules if name.partition(".")[0] == "bidi_example"]
    for name in stale:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.syspath_prepend(str(TEMPLATE))
    import bidi_example

    assert Path(bidi_example.__file__).is_relative_to(TEMPLATE)
    yield bidi_example
    for name in [name for name in sys.modules if name.partition(".")[0] == "bidi_example"]:
        del sys.modules[name]


@pytest.mark.parametrize("case", conformance_cases(), ids=str)
async def test_template_plugin_conforms(template: ModuleType, case: ConformanceCase) -> None:
    """The template's model passes every applicable conformance case against its fake."""
    from bidi_example.testing import serve

    if not case.needs(template.CAPABILITIES):
        pytest.skip(f"the template's capabilities exclude {case.name}")
    async with serve(assistant_config=AssistantConfig(story_seconds=8.0)) as fake:
        await case.run(lambda: template.ExampleModel(**fake.model_kwargs))


@pytest.mark.parametrize("case", fault_cases(), ids=str)
async def test_template_plugin_fault_matrix(template: ModuleType, case: FaultCase) -> None:
    """The template's model reaches each fault's defined outcome, without hangs or leaks."""
    from bidi_example.testing import serve

    if not case.needs(template.CAPABILITIES):
        pytest.skip(f"the template's capabilities exclude {case.name}")
    await case.run(serve, lambda fake: template.ExampleModel(**fake.model_kwargs))


def test_template_registers_through_its_hooks(template: ModuleType) -> None:
    """The template's hooks module registers 'example' with capabilities and a fake."""
    from bidi_core.testing import load_fake
    from bidi_example import _hooks
    from bidi_example.testing import serve

    registry = Registry(autoload=False)
    registry.register_plugin(_hooks, name="example")
    info = registry.model_info("example")
    assert info.capabilities == template.CAPABILITIES
    assert load_fake(info.extra["fake"]) is serve
    assert isinstance(registry.get_model("example"), template.ExampleModel)


def test_template_declares_its_entry_point() -> None:
    """The template's pyproject declares the `bidi` entry point at its hooks module."""
    import tomllib

    if not (TEMPLATE / "pyproject.toml").is_file():
        pytest.skip("plugins/_template is not part of this checkout")
    project = tomllib.loads((TEMPLATE / "pyproject.toml").read_text())["project"]
    assert project["name"] == "bidi-example"
    assert project["entry-points"]["bidi"] == {"example": "bidi_example._hooks"}
    assert (TEMPLATE / "bidi_example" / "py.typed").is_file()


async def test_fault_matrix_catches_a_leaked_task(template: ModuleType) -> None:
    """A model that leaves a task running after stop() fails the fault case, naming the task."""
    from bidi_core.testing.faults import FaultCaseError
    from bidi_example.testing import serve

    leaked: list[asyncio.Task[None]] = []

    class Leaky(template.ExampleModel):  # type: ignore[name-defined, misc]
        async def _open(self, **kwargs: Any) -> None:
            await super()._open(**kwargs)
            leaked.append(asyncio.create_task(asyncio.sleep(30), name="leaked-keepalive"))

    (case,) = fault_cases(skip=[c.name for c in fault_cases() if c.name != "slow_server"])
    with pytest.raises(FaultCaseError, match="leaked-keepalive"):
        await case.run(serve, lambda fake: Leaky(**fake.model_kwargs))
    for task in leaked:
        task.cancel()
    await asyncio.gather(*leaked, return_exceptions=True)


async def test_fault_matrix_catches_an_unbounded_handshake(
    template: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A model whose start() ignores open_timeout fails the stalled_handshake case (no hang)."""
    from bidi_core.testing import faults
    from bidi_example.testing import serve

    class Patient(template.ExampleModel):  # type: ignore[name-defined, misc]
        def __setattr__(self, name: str, value: Any) -> None:
            if name == "open_timeout":
                value = None  # ignores the bound it is given
            super().__setattr__(name, value)

    monkeypatch.setattr(faults, "STEP_TIMEOUT", 1.0)
    (case,) = faults.fault_cases(skip=[c.name for c in faults.fault_cases()][:-1])
    model_kwargs: dict[str, Any] = {}

    def make(fake: Any) -> Any:
        model_kwargs.update(fake.model_kwargs)
        model_kwargs["client_config"] = {**fake.model_kwargs["client_config"]}
        model_kwargs["client_config"]["connect_timeout"] = 60
        return Patient(**model_kwargs)

    with pytest.raises(faults.FaultCaseError, match="hung"):
        await case.run(serve, make)


async def test_template_takes_part_in_bidi_check(
    template: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A third-party plugin's check= hook drives `bidi check`: every step against its TLS fake."""
    import io

    from bidi_core.cli._check import check
    from bidi_example import _hooks
    from bidi_example.testing import serve

    registry = Registry(autoload=False)
    registry.register_plugin(_hooks, name="example")
    assert registry.model_info("example").extra["env_vars"] == ("EXAMPLE_API_KEY",)
    async with serve(tls=True) as fake:
        assert fake.tls is not None
        monkeypatch.setenv("SSL_CERT_FILE", str(fake.tls.ca_path))
        port = fake.model_kwargs["client_config"]["port"]
        settings = {"client_config": {"host": "127.0.0.1", "port": port}}
        monkeypatch.delenv("EXAMPLE_API_KEY", raising=False)
        out = io.StringIO()
        missing = await check("example", settings, registry=registry, out=out)
        assert [s.verdict for s in missing] == ["ok", "FAIL", "ok", "ok", "skip"]
        assert "set EXAMPLE_API_KEY" in missing[1].fix
        monkeypatch.setenv("EXAMPLE_API_KEY", fake.model_kwargs["client_config"]["api_key"])
        steps = await check("example", settings, registry=registry, out=out)
    assert [s.verdict for s in steps] == ["ok"] * 5
    assert steps[1].detail == "from EXAMPLE_API_KEY"
    assert "certificate verified" in steps[3].detail
