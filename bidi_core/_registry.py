"""The model registry: pluggy + ``bidi`` entry points."""

from __future__ import annotations

import os
import threading
import typing
from collections.abc import Callable
from typing import Any

import attrs
import pluggy

from . import hookspecs
from ._entry_points import entry_points
from ._errors import DuplicateModelError, PluginLoadError, UnknownModelError
from ._plugins import unknown_model_message
from ._protocol import BidiModel, ModelCapabilities
from .hookspecs import ModelFactory

__all__ = [
    "ENTRY_POINT_GROUP",
    "ModelInfo",
    "Registry",
    "default_registry",
    "get_model",
    "list_models",
]


def _warn(message: str) -> None:
    """Log a plugin problem (logging is imported only then: it is not needed to list)."""
    import logging  # noqa: PLC0415

    logging.getLogger("bidi_core").warning("%s", message)


#: The entry-point group (and pluggy project name) plugins register under.
ENTRY_POINT_GROUP = "bidi"
#: Set to ``1`` to skip entry-point loading (only in-process plugins are used).
DISABLE_AUTOLOAD_ENV = "BIDI_DISABLE_PLUGIN_AUTOLOAD"


@attrs.frozen(kw_only=True)
class ModelInfo:
    """What ``list_models()`` reports about one registered model.

    Attributes:
        name: The registry name passed to ``get_model()``.
        plugin: The plugin that registered it (entry-point or plugin name).
        distribution: The installed distribution providing the plugin, if known.
        version: That distribution's version, if known.
        summary: One line about the model.
        capabilities: Its :class:`ModelCapabilities`, if the plugin declared them.
        factory: The factory ``get_model()`` calls.
        extra: Other keyword arguments the plugin passed to ``register``.
    """

    name: str
    plugin: str
    distribution: str | None = None
    version: str | None = None
    summary: str = ""
    capabilities: ModelCapabilities | None = None
    factory: ModelFactory = attrs.field(repr=False, eq=False)
    extra: dict[str, Any] = attrs.field(factory=dict, repr=False, eq=False, hash=False)


class Registry:
    """Maps model names to factories contributed by plugins.

    Plugins come from the ``bidi`` entry-point group (unless ``autoload`` is false or
    ``BIDI_DISABLE_PLUGIN_AUTOLOAD=1``) and from :meth:`register_plugin`. Loading
    happens lazily on first lookup, once.

    Args:
        autoload: Load entry-point plugins on first lookup.
    """

    def __init__(self, *, autoload: bool = True) -> None:
        self._pm = pluggy.PluginManager(ENTRY_POINT_GROUP)
        self._pm.add_hookspecs(hookspecs)
        self._autoload = autoload
        self._loaded = False
        self._lock = threading.Lock()
        self._models: dict[str, ModelInfo] = {}
        self._dists: dict[str, tuple[str | None, str | None]] = {}
        self._errors: dict[str, PluginLoadError] = {}

    # ------------------------------------------------------------- plugins

    def register_plugin(self, plugin: object, name: str | None = None) -> None:
        """Register an in-process plugin object (a module or class with hookimpls).

        Raises:
            PluginLoadError: The plugin is blocked, already registered, or has a
                hook pluggy rejects (unknown name or wrong arguments).
            DuplicateModelError: The registry is loaded and the plugin registers
                a name another plugin already has (the plugin is not kept).
        """
        try:
            plugin_name = self._pm.register(plugin, name=name)
        except (ValueError, pluggy.PluginValidationError) as exc:
            msg = f"Cannot register plugin {name or plugin!r}: {exc}"
            raise PluginLoadError(msg) from exc
        if plugin_name is None:
            msg = f"Plugin {name or plugin!r} is blocked and cannot be registered."
            raise PluginLoadError(msg)
        problem = self._hook_problem(plugin)
        if problem is not None:
            self._pm.unregister(plugin)
            msg = f"Plugin {plugin_name!r} {problem}"
            raise PluginLoadError(msg)
        if self._loaded:
            try:
                self._collect_from(plugin_name, plugin)
            except DuplicateModelError:
                self._pm.unregister(plugin)
                raise

    @property
    def plugin_errors(self) -> list[PluginLoadError]:
        """Plugins that failed to import or register (the others still work)."""
        self._ensure_loaded()
        return list(self._errors.values())

    def _ensure_loaded(self) -> None:
        with self._lock:
            if self._loaded:
                return
            if self._autoload and os.environ.get(DISABLE_AUTOLOAD_ENV, "") not in ("1", "true"):
                self._load_entry_points()
            # Rebuilt from scratch: an earlier attempt that raised left nothing behind.
            self._models = {}
            for plugin_name, plugin in self._pm.list_name_plugin():
                if plugin is not None:
                    self._collect_from(plugin_name, plugin)
            self._loaded = True

    def _hook_problem(self, plugin: object) -> str | None:
        """Say what is wrong with *plugin*'s hooks (the job of pluggy's check_pending)."""
        unknown = sorted(
            caller.name
            for caller in self._pm.get_hookcallers(plugin) or []
            if not caller.has_spec()
            and any(i.plugin is plugin and not i.optionalhook for i in caller.get_hookimpls())
        )
        if not unknown:
            return None
        return (
            f"implements unknown hook(s) {', '.join(map(repr, unknown))}; "
            "bidi plugins implement 'bidi_register_models'."
        )

    def _load_error(self, ep_name: str, dist_name: str | None, problem: str) -> None:
        fix = f"pip install --force-reinstall {dist_name}" if dist_name else "reinstall it"
        msg = (
            f"Error importing plugin {ep_name!r} from distribution {dist_name!r}: {problem}. "
            f"Its models are unavailable; reinstall it ({fix}) or uninstall it."
        )
        self._errors[ep_name] = PluginLoadError(msg)
        _warn(msg)

    def _load_entry_points(self) -> None:
        for ep in entry_points(ENTRY_POINT_GROUP):  # cached between processes
            if self._pm.has_plugin(ep.name) or ep.name in self._errors:
                continue
            dist = ep.dist
            dist_name = dist.name if dist is not None else None
            version = dist.version if dist is not None else None
            try:
                plugin = ep.load()
                self._pm.register(plugin, name=ep.name)
            except Exception as exc:
                self._load_error(ep.name, dist_name, f"{type(exc).__name__}: {exc}")
                self._errors[ep.name].__cause__ = exc
                continue
            problem = self._hook_problem(plugin)
            if problem is not None:
                self._pm.unregister(plugin)
                self._load_error(ep.name, dist_name, f"the plugin {problem}")
                continue
            self._dists[ep.name] = (dist_name, version)

    def _collect_from(self, plugin_name: str, plugin: object) -> None:
        """Add *plugin*'s models, all or none: a plugin that fails registers nothing."""
        dist, version = self._dists.get(plugin_name, (None, None))
        for impl in self._pm.hook.bidi_register_models.get_hookimpls():
            if impl.plugin is not plugin:
                continue
            staged: dict[str, ModelInfo] = {}
            register = self._make_register(plugin_name, dist, version, staged)
            try:
                impl.function(register=register)
            except DuplicateModelError:
                raise
            except Exception as exc:
                msg = (
                    f"Plugin {plugin_name!r} failed while registering its models: "
                    f"{type(exc).__name__}: {exc}."
                )
                err = PluginLoadError(msg)
                err.__cause__ = exc
                self._errors[plugin_name] = err
                _warn(msg)
            else:
                self._models.update(staged)

    def _make_register(
        self,
        plugin_name: str,
        dist: str | None,
        version: str | None,
        staged: dict[str, ModelInfo],
    ) -> Callable[..., None]:
        def register(
            name: str,
            factory: ModelFactory,
            *,
            capabilities: ModelCapabilities | None = None,
            summary: str = "",
            **extra: Any,
        ) -> None:
            if not isinstance(typing.cast(object, name), str) or not name:
                msg = (
                    f"Plugin {plugin_name!r} registered a model under the invalid name {name!r}; "
                    "a name is a non-empty str such as 'nova_sonic'."
                )
                raise PluginLoadError(msg)
            if not callable(typing.cast(object, factory)):
                msg = f"Plugin {plugin_name!r} registered {name!r} with a non-callable factory."
                raise PluginLoadError(msg)
            existing = self._models.get(name) or staged.get(name)
            if existing is not None:
                msg = (
                    f"Model name {name!r} from plugin {plugin_name!r} is already registered "
                    f"by plugin {existing.plugin!r}. Uninstall one of them."
                )
                raise DuplicateModelError(msg)
            staged[name] = ModelInfo(
                name=name,
                plugin=plugin_name,
                distribution=dist,
                version=version,
                summary=summary,
                capabilities=capabilities,
                factory=factory,
                extra=extra,
            )

        return register

    # ------------------------------------------------------------ lookups

    def list_models(self) -> list[ModelInfo]:
        """Return every registered model, sorted by name."""
        self._ensure_loaded()
        return [self._models[name] for name in sorted(self._models)]

    def model_info(self, name: str) -> ModelInfo:
        """Return the :class:`ModelInfo` of *name*.

        Raises:
            UnknownModelError: Nothing is registered under *name*.
            PluginLoadError: The plugin of that name failed to load.
        """
        self._ensure_loaded()
        info = self._models.get(name)
        if info is not None:
            return info
        if name in self._errors:
            raise self._errors[name]
        msg = unknown_model_message(str(name), sorted(self._models), sorted(self._errors))
        raise UnknownModelError(msg)

    def get_model(self, name: str, **config: Any) -> BidiModel:
        """Build the model registered as *name* with ``factory(**config)``.

        Args:
            name: A registry name such as ``"nova_sonic"``.
            **config: Passed to the factory (``model_id``, ``provider_config``,
                ``client_config``, ...).

        Raises:
            UnknownModelError: Nothing is registered under *name*.
        """
        return self.model_info(name).factory(**config)


_default: Registry | None = None
_default_lock = threading.Lock()


def default_registry() -> Registry:
    """Return the process-wide registry used by :func:`get_model` and :func:`list_models`."""
    global _default  # noqa: PLW0603 - one lazily created default, like pluggy/llm
    if _default is None:
        with _default_lock:
            if _default is None:
                _default = Registry()
    return _default


def get_model(name: str, **config: Any) -> BidiModel:
    """Build a model by registry name from the default registry.

    Example::

        model = get_model("nova_sonic", provider_config={"audio": {"voice": "tiffany"}})
    """
    return default_registry().get_model(name, **config)


def list_models() -> list[ModelInfo]:
    """List the installed models without importing any provider SDK."""
    return default_registry().list_models()
