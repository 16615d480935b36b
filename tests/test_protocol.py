"""The model protocol, capabilities and the error hierarchy."""

from __future__ import annotations

import json
import pickle
from collections.abc import AsyncIterator
from typing import Any

import attrs
import pytest

import bidi_core
from bidi_core import (
    BidiConnectionError,
    BidiError,
    BidiModel,
    BidiModelStateError,
    BidiModelTimeoutError,
    ConfigError,
    DuplicateModelError,
    ModelCapabilities,
    PluginLoadError,
    ProviderError,
    ProviderProtocolError,
    SupportsTruncation,
    ToolError,
    UnknownModelError,
    UnsupportedInputError,
)
from bidi_core.simulated import SimulatedModel


class _Complete:
    """Implements the whole protocol without inheriting from anything bidi."""

    def __init__(self) -> None:
        self.config: dict[str, Any] = {}

    async def start(self, system_prompt=None, tools=None, messages=None, **kwargs):  # type: ignore[no-untyped-def]
        return None

    async def stop(self) -> None:
        return None

    async def receive(self) -> AsyncIterator[Any]:
        yield None

    async def send(self, content: Any) -> None:
        return None


class _NoStop(_Complete):
    stop = None  # type: ignore[assignment]


def test_simulated_model_is_a_bidi_model() -> None:
    """The simulated model satisfies the runtime-checkable BidiModel protocol."""
    assert isinstance(SimulatedModel(), BidiModel)


def test_any_object_with_the_methods_is_a_bidi_model() -> None:
    """Conformance is structural: no base class is needed."""
    assert isinstance(_Complete(), BidiModel)


@pytest.mark.parametrize("missing", ["start", "stop", "receive", "send"])
def test_object_missing_a_method_is_not_a_bidi_model(missing: str) -> None:
    """An object lacking any protocol method is not a BidiModel."""
    namespace = {
        name: getattr(_Complete, name)
        for name in ("start", "stop", "receive", "send")
        if name != missing
    }
    partial = type("Partial", (), {"config": {}, **namespace})()
    assert not isinstance(partial, BidiModel)


def test_non_callable_method_is_not_a_bidi_model() -> None:
    """A protocol member set to None does not count as the method."""
    assert not isinstance(_NoStop(), BidiModel)


def test_simulated_model_supports_truncation() -> None:
    """The simulated model implements the optional truncation protocol it advertises."""
    model = SimulatedModel()
    assert model.capabilities.output_truncation
    assert isinstance(model, SupportsTruncation)
    assert not isinstance(_Complete(), SupportsTruncation)


# ----------------------------------------------------------------- timeout error


def test_timeout_error_str_is_the_message() -> None:
    """str(err) is exactly the message, never a tuple of arguments."""
    err = BidiModelTimeoutError("m", handle="h")
    assert str(err) == "m"
    assert err.message == "m"
    assert err.restart_config == {"handle": "h"}


def test_timeout_error_without_restart_config() -> None:
    """restart_config is an empty dict when nothing is needed to restart."""
    assert BidiModelTimeoutError("limit").restart_config == {}


def test_timeout_error_pickles_with_its_restart_config() -> None:
    """A timeout error survives pickling (e.g. across processes) with message and config."""
    err = BidiModelTimeoutError("m", handle="h", turns=[1, 2])
    clone = pickle.loads(pickle.dumps(err))
    assert type(clone) is BidiModelTimeoutError
    assert str(clone) == "m"
    assert clone.restart_config == {"handle": "h", "turns": [1, 2]}


def test_timeout_error_is_a_bidi_error() -> None:
    """Catching BidiError catches a timeout too."""
    with pytest.raises(BidiError):
        raise BidiModelTimeoutError("m")


# ------------------------------------------------------------------- hierarchy


@pytest.mark.parametrize(
    ("error", "bases"),
    [
        (UnknownModelError, (BidiError, LookupError)),
        (DuplicateModelError, (BidiError,)),
        (PluginLoadError, (BidiError,)),
        (ConfigError, (BidiError, ValueError)),
        (BidiModelStateError, (BidiError, RuntimeError)),
        (UnsupportedInputError, (BidiError, ValueError)),
        (ProviderError, (BidiError,)),
        (BidiConnectionError, (ProviderError,)),
        (ProviderProtocolError, (ProviderError,)),
        (ToolError, (BidiError,)),
        (BidiModelTimeoutError, (BidiError,)),
    ],
    ids=lambda value: value.__name__ if isinstance(value, type) else None,
)
def test_error_hierarchy(error: type[Exception], bases: tuple[type[Exception], ...]) -> None:
    """Each error can be caught by its documented base classes."""
    assert issubclass(error, bases)


def test_unknown_model_error_str_is_not_quoted() -> None:
    """Unlike KeyError, UnknownModelError's message is shown as written."""
    err = UnknownModelError("Unknown model: 'x'.")
    assert str(err) == "Unknown model: 'x'."
    assert str(KeyError("Unknown model: 'x'.")) != str(err)  # the quoting it avoids


def test_every_error_is_exported_from_the_package() -> None:
    """Every BidiError subclass is reachable as bidi_core.<Name>."""

    def subclasses(cls: type) -> set[type]:
        found = set(cls.__subclasses__())
        for sub in list(found):
            found |= subclasses(sub)
        return found

    for cls in subclasses(BidiError):
        if cls.__module__.startswith("bidi_core._errors"):
            assert getattr(bidi_core, cls.__name__) is cls


def test_provider_error_repr_shows_every_field() -> None:
    """repr(ProviderError) shows message, provider, code and retryable (for logs)."""
    err = BidiConnectionError("dropped", provider="openai_realtime", code=1006, retryable=True)
    assert repr(err) == (
        "BidiConnectionError('dropped', provider='openai_realtime', code=1006, retryable=True)"
    )
    assert str(err) == "dropped"


@pytest.mark.parametrize("cls", [ProviderError, BidiConnectionError, ProviderProtocolError])
def test_provider_errors_pickle_with_their_fields(cls: type[ProviderError]) -> None:
    """Provider errors survive pickling with subclass and every field."""
    err = cls("boom", provider="p", code="c", retryable=True)
    clone = pickle.loads(pickle.dumps(err))
    assert type(clone) is cls
    assert (str(clone), clone.provider, clone.code, clone.retryable) == ("boom", "p", "c", True)


def test_provider_error_defaults() -> None:
    """Only the message is required; retryable defaults to False."""
    err = ProviderError("x")
    assert (err.provider, err.code, err.retryable) == (None, None, False)


# ---------------------------------------------------------------- capabilities


def test_capabilities_are_frozen() -> None:
    """Capabilities cannot be changed after creation (use attrs.evolve)."""
    caps = ModelCapabilities()
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        caps.tools = False  # type: ignore[misc]
    assert attrs.evolve(caps, tools=False).tools is False


def test_capabilities_sequences_become_tuples() -> None:
    """Lists passed for modalities and rates are stored as (hashable) tuples."""
    caps = ModelCapabilities(input_modalities=["text"], input_sample_rates=[16000, 24000])
    assert caps.input_modalities == ("text",)
    assert caps.input_sample_rates == (16000, 24000)
    assert hash(caps) == hash(
        ModelCapabilities(input_modalities=("text",), input_sample_rates=(16000, 24000))
    )


def test_capabilities_refuse_a_bare_string() -> None:
    """input_modalities='audio' is an error, not ('a', 'u', 'd', 'i', 'o')."""
    with pytest.raises(TypeError, match="wrap it"):
        ModelCapabilities(input_modalities="audio")  # type: ignore[arg-type]


def test_capabilities_to_dict_is_json_safe() -> None:
    """to_dict() has every field, with lists for sequences, and survives JSON unchanged."""
    caps = SimulatedModel(provider_config={"connection_limit_s": 60}).capabilities
    data = caps.to_dict()
    assert set(data) == {f.name for f in attrs.fields(ModelCapabilities)}
    assert json.loads(json.dumps(data)) == data
    assert data["input_modalities"] == ["text", "audio", "image"]
    assert data["connection_limit_s"] == 60
    assert ModelCapabilities(**data) == caps
