"""What plugins register is checked when they register; a misbehaving plugin is named."""

from __future__ import annotations

import io
import math
import re
import signal
from typing import Any

import pytest

import bidi_core
from bidi_core import (
    ModelCapabilities,
    PluginError,
    PluginLoadError,
    RegisterModel,
    Registry,
)
from bidi_core.cli._models import print_models
from bidi_core.simulated import SimulatedModel


def plugin(name: Any, factory: Any = SimulatedModel, **register_kwargs: Any) -> object:
    """A fake plugin registering one model."""

    class Plugin:
        @bidi_core.hookimpl
        def bidi_register_models(self, register: RegisterModel) -> None:
            register(name, factory, **register_kwargs)

    return Plugin()


def models_text(registry: Registry) -> str:
    """What `bidi models` prints."""
    out = io.StringIO()
    print_models(registry, out=out)
    return out.getvalue()


@pytest.mark.parametrize(
    ("name", "kwargs", "message"),
    [
        pytest.param(
            "bad_caps",
            {"capabilities": {"tools": "yes"}},
            r"registered 'bad_caps' with capabilities=\{'tools': 'yes'\}; pass a "
            r"bidi_core\.ModelCapabilities",
            id="capabilities-dict",
        ),
        pytest.param(
            "bad_extra",
            {"color": object()},
            r"with color=<object object.*which has a value of type object at the top",
            id="extra-not-json",
        ),
        pytest.param(
            "bad_extra",
            {"ratio": math.nan},
            r"ratio=nan, which has nan",
            id="extra-nan",
        ),
        pytest.param(
            "bad_creds",
            {"credentials": "yes"},
            r"credentials='yes'; it must be a zero-argument callable",
            id="credentials-str",
        ),
        pytest.param(
            "bad_fake",
            {"fake": "not a spec"},
            r"fake='not a spec'; it must be a 'module:attribute' string",
            id="fake-spec",
        ),
        pytest.param(
            "bad_summary", {"summary": 42}, r"summary=42; a summary is one line", id="summary"
        ),
        pytest.param(
            "two\nlines",
            {},
            r"invalid name 'two\\nlines'; a name is lower-case letters",
            id="name-newline",
        ),
        pytest.param(
            "\x1b[31mred",
            {},
            r"invalid name '\\x1b\[31mred'",
            id="name-ansi",
        ),
        pytest.param("Nova-Sonic", {}, r"invalid name 'Nova-Sonic'", id="name-case"),
    ],
)
def test_bad_registrations_fail_that_plugin_only(
    registry: Registry, name: str, kwargs: dict[str, Any], message: str
) -> None:
    """A bad name, capabilities, summary or extra value is that plugin's PluginLoadError."""
    registry.register_plugin(plugin(name, **kwargs), name="sloppy")
    registry.register_plugin(plugin("good"), name="good")
    assert [info.name for info in registry.list_models()] == ["good"]
    (error,) = registry.plugin_errors
    assert isinstance(error, PluginLoadError)
    assert "'sloppy'" in str(error)
    assert re.search(message, str(error)), str(error)
    assert "good" in models_text(registry)


def test_known_extra_values_are_accepted(registry: Registry) -> None:
    """credentials= a callable, fake= 'module:attr' and JSON extras register fine."""
    registry.register_plugin(
        plugin(
            "fine",
            credentials=lambda: True,
            fake="bidi_core.testing:serve",
            env_vars=["FINE_API_KEY"],
            capabilities=ModelCapabilities(),
        ),
        name="fine",
    )
    info = registry.model_info("fine")
    assert info.extra["env_vars"] == ["FINE_API_KEY"]
    assert registry.plugin_errors == []


def test_a_factory_returning_a_non_model_is_a_plugin_error(registry: Registry) -> None:
    """get_model() checks what the factory built, naming the plugin, instead of crashing later."""
    registry.register_plugin(plugin("answer", factory=lambda **_: 42), name="deep-thought")
    with pytest.raises(PluginError, match=r"Plugin 'deep-thought' built 42 \(a int\) for 'answer'"):
        registry.get_model("answer")


def test_a_factory_raising_system_exit_is_a_plugin_error(registry: Registry) -> None:
    """A factory raising SystemExit does not end the program: get_model() raises PluginError."""

    def factory(**_: Any) -> Any:
        raise SystemExit(2)

    registry.register_plugin(plugin("quitter", factory=factory), name="quitter")
    with pytest.raises(PluginError, match=r"ended while building 'quitter': SystemExit\(2\)"):
        registry.get_model("quitter")


def test_a_factory_config_error_still_reaches_the_caller(registry: Registry) -> None:
    """Ordinary errors of a factory (a bad config) are raised as they are."""
    registry.register_plugin(plugin("strict"), name="strict")
    with pytest.raises(bidi_core.ConfigError, match="Unknown key"):
        registry.get_model("strict", provider_config={"voise": "x"})


def test_a_real_ctrl_c_while_a_plugin_loads_still_interrupts(registry: Registry) -> None:
    """A SIGINT arriving while plugin code runs is a KeyboardInterrupt for the user."""

    class SlowPlugin:
        @bidi_core.hookimpl
        def bidi_register_models(self, register: RegisterModel) -> None:
            signal.raise_signal(signal.SIGINT)  # the user presses Ctrl-C right now

    registry.register_plugin(SlowPlugin(), name="slow")
    with pytest.raises(KeyboardInterrupt):
        registry.list_models()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_keyboard_interrupt_raised_by_a_plugin_is_its_error(registry: Registry) -> None:
    """A plugin raising KeyboardInterrupt itself (no signal) is reported as that plugin's error."""

    class Rude:
        @bidi_core.hookimpl
        def bidi_register_models(self, register: RegisterModel) -> None:
            raise KeyboardInterrupt

    registry.register_plugin(Rude(), name="rude")
    registry.register_plugin(plugin("good"), name="good")
    assert [info.name for info in registry.list_models()] == ["good"]
    (error,) = registry.plugin_errors
    assert "KeyboardInterrupt: plugin code tried to end the program" in str(error)


def test_get_model_of_none_says_a_name_is_a_str(registry: Registry) -> None:
    """get_model(None) is a TypeError saying what a name is, not 'NoneType is not iterable'."""
    with pytest.raises(TypeError, match=r"A model name is a str such as 'simulated' \(got None\)"):
        registry.get_model(None)  # type: ignore[arg-type]


def test_plugin_strings_cannot_spoof_bidi_models_lines(registry: Registry) -> None:
    """Control characters in a summary are printed escaped: no new line, no terminal escape."""
    summary = "Fine.\nnova_sonic  (bidi-nova-sonic 9.9)  credentials: found\x1b[2K"
    registry.register_plugin(plugin("spoofer", summary=summary), name="spoofer")
    text = models_text(registry)
    assert "\x1b" not in text
    assert not any(line.startswith("nova_sonic") for line in text.splitlines())
    assert "Fine.\\nnova_sonic" in text


def test_a_fake_module_that_exits_on_import_is_a_plugin_load_error(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """load_fake() of a module raising SystemExit at import: PluginLoadError, not the end."""
    from bidi_core.testing import load_fake

    (tmp_path / "rude_fake_module.py").write_text("raise SystemExit(1)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(PluginLoadError, match=r"rude_fake_module.*SystemExit"):
        load_fake("rude_fake_module:serve")
