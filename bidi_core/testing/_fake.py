"""The contract every plugin's fake provider server follows, and how to load one.

A plugin ships ``bidi_<provider>.testing.serve``: an async context manager that
runs a wire-faithful fake of the provider on 127.0.0.1, driven by
:class:`~bidi_core.testing.ScriptedAssistant`, and yields a :class:`FakeServer`::

    from bidi_openai_realtime.testing import serve

    async with serve() as fake:
        model = get_model("openai_realtime", **fake.model_kwargs)

Every ``serve`` accepts ``assistant_config=`` (the :class:`AssistantConfig` of each
connection's assistant) and ``stall_handshake=True``: accept the TCP/TLS connection
but never complete the provider's handshake (no ``session.created``, no
``setupComplete``, no HTTP/2 response headers), for the fault matrix's
``stalled_handshake`` case (:mod:`bidi_core.testing.faults`). Mid-response faults go
through ``fake.assistants[-1].inject_fault(kind)``, which the fake maps to the
provider's wire signal like any other :class:`Fault`.

The plugin names it when registering (``register(..., fake="bidi_x.testing:serve")``)
so that ``bidi chat --fake`` and ``BidiAgent`` tests can reach any installed
provider's fake without knowing its details.
"""

from __future__ import annotations

import importlib
import typing
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol, runtime_checkable

from .._errors import PluginLoadError
from .._isolate import plugin_code
from .._plugins import install_hint
from ._assistant import AssistantConfig, ScriptedAssistant

__all__ = ["FakeServer", "ServeFake", "load_fake", "missing_test_extra"]


@runtime_checkable
class FakeServer(Protocol):
    """A running fake provider server.

    Attributes:
        model_kwargs: Keyword arguments for ``get_model(name, **model_kwargs)`` (or the
            model class) that connect to this fake: typically ``client_config`` with a
            loopback URL, fake credentials and the throwaway CA. Merge your own
            ``provider_config`` into it.
        assistants: One :class:`ScriptedAssistant` per accepted connection, in order;
            tests inspect ``assistants[-1].inputs`` to see what arrived.
        received: Every decoded client frame (provider JSON), in arrival order,
            across connections; tests check outbound wire frames with it.
    """

    model_kwargs: dict[str, Any]
    assistants: list[ScriptedAssistant]
    received: list[Any]


class ServeFake(Protocol):
    """The signature of ``bidi_<provider>.testing.serve``."""

    def __call__(
        self, *, assistant_config: AssistantConfig | None = None, **options: Any
    ) -> AbstractAsyncContextManager[FakeServer]:
        """Run the fake until the context exits; every connection gets a fresh assistant.

        Args:
            assistant_config: Behaviour of each connection's ScriptedAssistant.
            **options: Plugin-specific options, and ``stall_handshake`` (bool): accept
                connections but never complete the handshake.
        """


def missing_test_extra(what: str, distribution: str | None, exc: BaseException) -> str:
    """The message for a fake server whose plugin's ``test`` extra is not installed."""
    if distribution:
        fix = install_hint(distribution, "test")
        return f"The fake server {what!r} needs {distribution}'s test extra ({exc}); {fix}."
    return (
        f"The fake server {what!r} needs its plugin's test extra ({exc}); install the "
        "plugin with its [test] extra."
    )


def load_fake(spec: str, distribution: str | None = None) -> ServeFake:
    """Import a fake server factory from ``"module:attribute"``.

    Args:
        spec: e.g. ``"bidi_openai_realtime.testing:serve"`` (what plugins pass as
            ``register(..., fake=...)``).
        distribution: The plugin's distribution, named in the error when its test
            extra is missing (``ModelInfo.distribution``).

    Raises:
        PluginLoadError: The module or attribute cannot be loaded.
    """
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        msg = f"A fake server spec must look like 'module:attribute', got {spec!r}."
        raise PluginLoadError(msg)
    try:
        with plugin_code():  # the plugin's module code: its SystemExit must not end bidi
            module = importlib.import_module(module_name)
    except ImportError as exc:
        raise PluginLoadError(missing_test_extra(module_name, distribution, exc)) from exc
    except Exception as exc:
        msg = f"Importing fake server module {module_name!r} failed: {type(exc).__name__}: {exc}"
        raise PluginLoadError(msg) from exc
    factory: Callable[..., Any] | None = getattr(module, attr, None)
    if not callable(factory):
        msg = f"{module_name!r} has no callable {attr!r}; check the plugin's fake= spec."
        raise PluginLoadError(msg)
    return typing.cast(ServeFake, factory)
