"""The registry with in-process fake plugins (entry points: test_entry_points.py)."""

from __future__ import annotations

from typing import Any

import pytest

import bidi_core
from bidi_core import (
    DuplicateModelError,
    ModelCapabilities,
    PluginLoadError,
    RegisterModel,
    Registry,
    UnknownModelError,
)
from bidi_core.simulated import SimulatedModel


class Recorder:
    """A factory that records the config it was called with."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def __call__(self, **config: Any) -> SimulatedModel:
        self.calls.append(config)
        return SimulatedModel()


def plugin(*names: str, factory: Any = None, **register_kwargs: Any) -> object:
    """Build a fake plugin object registering *names*."""

    class Plugin:
        @bidi_core.hookimpl
        def bidi_register_models(self, register: RegisterModel) -> None:
            for name in names:
                register(name, factory or SimulatedModel, **register_kwargs)

    return Plugin()


def test_get_model_passes_config_to_the_factory(registry: Registry) -> None:
    """get_model(name, **config) calls the factory once with exactly that config."""
    factory = Recorder()
    registry.register_plugin(plugin("echo", factory=factory), name="echo-plugin")
    config = {"model_id": "m1", "provider_config": {"seed": 3}, "client_config": {}}
    model = registry.get_model("echo", **config)
    assert isinstance(model, SimulatedModel)
    assert factory.calls == [config]
    registry.get_model("echo")
    assert factory.calls == [config, {}]


def test_list_models_reports_name_plugin_summary_and_capabilities(registry: Registry) -> None:
    """list_models() shows what each plugin registered, sorted by name."""
    caps = ModelCapabilities(input_modalities=("text",))
    registry.register_plugin(
        plugin("zeta", "alpha", capabilities=caps, summary="Two models.", credentials=bool),
        name="greek",
    )
    infos = registry.list_models()
    assert [info.name for info in infos] == ["alpha", "zeta"]
    alpha = infos[0]
    assert (alpha.plugin, alpha.summary, alpha.capabilities) == ("greek", "Two models.", caps)
    assert (alpha.distribution, alpha.version) == (None, None)  # in-process: no distribution
    assert alpha.extra == {"credentials": bool}


def test_plugin_registered_after_loading_is_visible(registry: Registry) -> None:
    """register_plugin() after the first lookup adds its models at once."""
    assert registry.list_models() == []
    registry.register_plugin(plugin("late"), name="late")
    assert [info.name for info in registry.list_models()] == ["late"]


def test_unknown_model_error_lists_installed_names_and_suggests_one(registry: Registry) -> None:
    """The message lists installed names and the closest one; no install hint is guessed."""
    registry.register_plugin(plugin("nova_sonic", "gemini_live"), name="p")
    with pytest.raises(UnknownModelError) as info:
        registry.get_model("nova_sonik")
    message = str(info.value)
    assert message.startswith("Unknown model: 'nova_sonik'.")
    assert "Did you mean 'nova_sonic'?" in message
    assert "Installed models: gemini_live, nova_sonic." in message
    assert "bidi-nova-sonik" not in message  # no such distribution exists


def test_unknown_model_error_without_close_match(registry: Registry) -> None:
    """With nothing close, there is no suggestion, and an empty registry says 'none'."""
    registry.register_plugin(plugin("alpha"), name="p")
    with pytest.raises(UnknownModelError) as info:
        registry.get_model("zzz")
    message = str(info.value)
    assert "Did you mean" not in message
    assert "Installed models: alpha." in message
    assert "pip install" not in message
    assert "./dev install NAME" in message


def test_unknown_model_error_for_a_shipped_plugin_names_its_distribution(
    registry: Registry,
) -> None:
    """A model the repository ships but that is not installed: its real distribution."""
    with pytest.raises(UnknownModelError) as info:
        registry.get_model("openai_realtime")
    message = str(info.value)
    assert "Did you mean" not in message
    assert "Installed models: none." in message
    assert "'openai_realtime' comes from bidi-openai-realtime, which is not installed" in message
    assert "./dev install bidi-openai-realtime" in message


@pytest.mark.parametrize(
    ("name", "meant"),
    [
        ("openai", "'openai_realtime'"),  # a prefix
        ("sonic", "'nova_sonic'"),  # a substring
        ("bidi-gemini-live", "'gemini_live'"),  # the distribution name
        ("Nova_Sonic", "'nova_sonic'"),  # case
        ("nova_sonik", "'nova_sonic'"),  # spelling
    ],
)
def test_unknown_model_suggestions_consider_prefixes_and_substrings(
    registry: Registry, name: str, meant: str
) -> None:
    """`get_model("openai")` suggests 'openai_realtime', and never `pip install bidi-openai`."""
    registry.register_plugin(plugin("openai_realtime", "nova_sonic", "gemini_live"), name="p")
    with pytest.raises(UnknownModelError) as info:
        registry.get_model(name)
    message = str(info.value)
    assert f"Did you mean {meant}?" in message
    assert "pip install bidi-" not in message


@pytest.mark.parametrize("name", ["", "  "])
def test_unknown_model_error_for_an_empty_name(registry: Registry, name: str) -> None:
    """An empty name says a name is needed and lists the installed ones (no 'bidi-.')."""
    registry.register_plugin(plugin("alpha"), name="p")
    with pytest.raises(UnknownModelError) as info:
        registry.get_model(name)
    message = str(info.value)
    assert message.startswith("No model name given")
    assert "Installed models: alpha." in message
    assert "bidi-" not in message


def test_unknown_model_error_is_a_lookup_error(registry: Registry) -> None:
    """Code that catches LookupError also catches an unknown model."""
    with pytest.raises(LookupError):
        registry.model_info("nothing")


def test_duplicate_model_error_names_both_plugins(registry: Registry) -> None:
    """A name two plugins register is refused by get_model() with an error naming both."""
    registry.register_plugin(plugin("shared", "mine"), name="first-plugin")
    registry.register_plugin(plugin("shared", "yours"), name="second-plugin")
    assert [info.name for info in registry.list_models()] == ["mine", "yours"]
    for _ in range(2):  # the second lookup reports the same, not a self-duplicate
        with pytest.raises(DuplicateModelError) as info:
            registry.get_model("shared")
        message = str(info.value)
        assert "'shared'" in message
        assert "'second-plugin'" in message
        assert "'first-plugin'" in message
        assert "refuses to pick one" in message
    (error,) = registry.plugin_errors  # reported once
    assert error is info.value
    assert isinstance(registry.get_model("mine"), SimulatedModel)
    assert isinstance(registry.get_model("yours"), SimulatedModel)


def test_duplicate_after_loading_rejects_the_newcomer(registry: Registry) -> None:
    """A late plugin with a taken name raises and is not kept; the first one still works."""
    registry.register_plugin(plugin("shared", "one"), name="first-plugin")
    registry.list_models()
    with pytest.raises(DuplicateModelError, match="first-plugin"):
        registry.register_plugin(plugin("other", "shared"), name="late-plugin")
    assert [info.name for info in registry.list_models()] == ["one", "shared"]
    assert registry.model_info("shared").plugin == "first-plugin"
    registry.register_plugin(plugin("other"), name="late-plugin")  # the name is free again
    assert "other" in [info.name for info in registry.list_models()]


def test_plugin_whose_register_raises_is_reported_and_others_work(registry: Registry) -> None:
    """A plugin failing inside its hook is reported by name; other plugins still work."""

    class Broken:
        @bidi_core.hookimpl
        def bidi_register_models(self, register: RegisterModel) -> None:
            register("half", SimulatedModel)
            raise RuntimeError("capabilities could not be built")

    registry.register_plugin(Broken(), name="broken")
    registry.register_plugin(plugin("good"), name="good")
    assert [info.name for info in registry.list_models()] == ["good"]  # all or nothing
    assert isinstance(registry.get_model("good"), SimulatedModel)
    (error,) = registry.plugin_errors
    assert "'broken'" in str(error)
    assert "RuntimeError: capabilities could not be built" in str(error)
    assert isinstance(error.__cause__, RuntimeError)


def test_broken_plugin_is_named_when_its_model_is_asked_for(registry: Registry) -> None:
    """get_model() of a model whose plugin failed raises that plugin's error, not 'unknown'."""

    class Broken:
        @bidi_core.hookimpl
        def bidi_register_models(self, register: RegisterModel) -> None:
            raise ImportError("no module named 'sdk'")

    registry.register_plugin(Broken(), name="acme")
    with pytest.raises(PluginLoadError, match="'acme' failed while registering"):
        registry.get_model("acme")


def test_unknown_model_error_mentions_broken_plugins(registry: Registry) -> None:
    """An unknown name also points at plugins that failed to load."""

    class Broken:
        @bidi_core.hookimpl
        def bidi_register_models(self, register: RegisterModel) -> None:
            raise ValueError("bad")

    registry.register_plugin(Broken(), name="acme_voice")
    with pytest.raises(UnknownModelError, match="Plugins that failed to load: acme_voice"):
        registry.get_model("other")


@pytest.mark.parametrize(
    ("name", "factory", "message"),
    [
        ("", SimulatedModel, "invalid name ''"),
        (3, SimulatedModel, "invalid name 3"),
        ("ok", "not callable", "non-callable factory"),
    ],
)
def test_bad_registrations_are_reported(
    registry: Registry, name: Any, factory: Any, message: str
) -> None:
    """A bad name or factory fails that plugin with a clear PluginLoadError."""
    registry.register_plugin(plugin(name, factory=factory), name="sloppy")
    assert registry.list_models() == []
    (error,) = registry.plugin_errors
    assert message in str(error)


def test_misspelled_hook_is_refused_with_a_clear_error(registry: Registry) -> None:
    """An in-process plugin implementing an unknown hook is refused at once, by name."""

    class Typo:
        @bidi_core.hookimpl
        def bidi_register_model(self, register: RegisterModel) -> None:  # missing "s"
            register("typo", SimulatedModel)

    with pytest.raises(PluginLoadError, match=r"'typo-plugin' implements unknown hook"):
        registry.register_plugin(Typo(), name="typo-plugin")
    registry.register_plugin(plugin("good"), name="good")
    assert [info.name for info in registry.list_models()] == ["good"]


def test_hook_with_wrong_arguments_is_refused(registry: Registry) -> None:
    """A hookimpl taking arguments the spec does not have is a PluginLoadError."""

    class WrongArgs:
        @bidi_core.hookimpl
        def bidi_register_models(self, registry: Any) -> None:
            pass

    with pytest.raises(PluginLoadError, match="Cannot register plugin"):
        registry.register_plugin(WrongArgs(), name="wrong")


def test_same_plugin_twice_is_refused(registry: Registry) -> None:
    """Registering the same plugin name twice is a PluginLoadError, not a pluggy ValueError."""
    registry.register_plugin(plugin("a"), name="p")
    with pytest.raises(PluginLoadError):
        registry.register_plugin(plugin("b"), name="p")


def test_disable_autoload_env_skips_entry_points(monkeypatch: pytest.MonkeyPatch) -> None:
    """BIDI_DISABLE_PLUGIN_AUTOLOAD=1 loads no entry points, not even the core's simulated."""
    monkeypatch.setenv("BIDI_DISABLE_PLUGIN_AUTOLOAD", "1")
    registry = Registry()
    registry.register_plugin(plugin("inproc"), name="inproc")
    assert [info.name for info in registry.list_models()] == ["inproc"]


def test_autoload_finds_the_simulated_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the switch, a Registry() loads entry points (here: the core's simulated)."""
    monkeypatch.delenv("BIDI_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    assert "simulated" in [info.name for info in Registry().list_models()]


def test_default_registry_is_shared() -> None:
    """get_model()/list_models() use one lazily created default registry."""
    assert bidi_core.default_registry() is bidi_core.default_registry()


def test_module_level_get_model_builds_simulated() -> None:
    """bidi_core.get_model('simulated', ...) builds it from the default registry."""
    model = bidi_core.get_model("simulated", provider_config={"seed": 5})
    assert isinstance(model, SimulatedModel)
    assert model.config["provider_config"] == {"seed": 5}
