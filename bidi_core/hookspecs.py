"""The plugin hook specification of bidi (pluggy project ``bidi``).

A plugin is a module (or object) with ``@bidi_core.hookimpl`` functions, exposed
through the ``bidi`` entry-point group::

    [project.entry-points.bidi]
    my_model = "bidi_my_model._hooks"
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

import pluggy

if TYPE_CHECKING:
    from ._protocol import BidiModel, ModelCapabilities

__all__ = ["ModelFactory", "RegisterModel", "bidi_register_models", "hookimpl", "hookspec"]

#: Marks hook specifications (used by bidi itself).
hookspec = pluggy.HookspecMarker("bidi")
#: Marks hook implementations in plugins: ``@bidi_core.hookimpl``.
hookimpl = pluggy.HookimplMarker("bidi")

#: Builds a model from ``get_model(name, **config)``'s config; imports SDKs lazily.
ModelFactory = Callable[..., "BidiModel"]


class RegisterModel(Protocol):
    """The ``register`` callback passed to :func:`bidi_register_models`."""

    def __call__(
        self,
        name: str,
        factory: ModelFactory,
        *,
        capabilities: ModelCapabilities | None = None,
        summary: str = "",
        **extra: Any,
    ) -> None:
        """Register *factory* under *name*."""


@hookspec
def bidi_register_models(register: RegisterModel) -> None:
    """Register bidirectional streaming model factories.

    Called once per plugin when the registry loads. Call ``register(name, factory,
    capabilities=..., summary=...)`` once per model. ``factory(**config)`` is called
    by ``get_model(name, **config)`` and must return a :class:`bidi_core.BidiModel`;
    import provider SDKs *inside* the factory, so that ``list_models()`` stays cheap
    and a broken SDK only breaks its own model.

    What ``register`` checks (a bad value fails this plugin with a
    :class:`bidi_core.PluginLoadError`; other plugins still load):

    * *name*: lower-case letters, digits and ``_``, starting with a letter, at most
      64 characters (``nova_sonic``), so nothing printed from it can spoof output.
    * *capabilities*: a :class:`bidi_core.ModelCapabilities`, or None.
    * *summary*: a ``str`` (``bidi models`` prints control characters escaped).
    * Extra keyword arguments, kept in :attr:`bidi_core.ModelInfo.extra`; the core
      reads these: ``credentials=`` (a zero-argument callable: were credentials
      found? env and files only, no network), ``env_vars=`` (the environment
      variables the model reads, a str or a list of str, listed by ``bidi models``),
      ``fake="module:serve"`` (its fake server, for ``bidi chat --fake``) and
      ``check="module:func"`` or the function itself (``func(model)`` returns a
      :class:`bidi_core.diagnostics.CheckInfo` for ``bidi check``). Any other key:
      JSON data or a callable.

    Two plugins registering the same *name* make it unavailable: ``get_model(name)``
    raises :class:`bidi_core.DuplicateModelError` naming both (the core does not
    guess which one was meant), it is listed once in ``Registry.plugin_errors``,
    and every other model of both plugins works. ``factory(**config)`` runs when
    ``get_model`` is called; what it returns must be a :class:`bidi_core.BidiModel`
    (else :class:`bidi_core.PluginError`).

    Args:
        register: Adds *factory* under *name*.

    Example::

        @bidi_core.hookimpl
        def bidi_register_models(register):
            register("echo", _create_echo, capabilities=ModelCapabilities(), summary="Echoes.")

    .. versionadded:: 0.1
    """
