"""The model registry: pluggy + ``bidi`` entry points."""

from __future__ import annotations

import os
import re
import threading
import typing
from collections.abc import Callable
from typing import Any

import attrs
import pluggy

from . import hookspecs
from ._entry_points import entry_points
from ._errors import DuplicateModelError, PluginError, PluginLoadError, UnknownModelError
from ._isolate import PluginExit, plugin_code
from ._json import json_problem, short_repr
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
#: What a model name may be: it is typed by users and printed by ``bidi models``, so
#: nothing in it can spoof a line or a terminal escape.
MODEL_NAME_RE = re.compile(r"[a-z][a-z0-9_]{0,63}")
#: ``fake=``/``check=`` in ``register()``: ``"module:attribute"``.
_SPEC_RE = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*")
#: ``env_vars=``: names printed by ``bidi models`` (nothing that could spoof output).
_ENV_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")


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
        #: Model names registered by more than one plugin: every claimant, and the error.
        self._clashes: dict[str, tuple[list[ModelInfo], DuplicateModelError]] = {}

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
            with plugin_code():
                plugin_name = self._pm.register(plugin, name=name)
        except (ValueError, pluggy.PluginValidationError, PluginExit) as exc:
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
                self._collect_from(plugin_name, plugin, late=True)
            except DuplicateModelError:
                self._pm.unregister(plugin)
                raise

    @property
    def plugin_errors(self) -> list[PluginError]:
        """Plugins that failed to import or register, and model names two plugins claim.

        The other plugins and models still work.
        """
        self._ensure_loaded()
        return [*self._errors.values(), *(error for _, error in self._clashes.values())]

    def _ensure_loaded(self) -> None:
        with self._lock:
            if self._loaded:
                return
            if self._autoload and os.environ.get(DISABLE_AUTOLOAD_ENV, "") not in ("1", "true"):
                self._load_entry_points()
            # Rebuilt from scratch: an earlier attempt that raised left nothing behind.
            self._models = {}
            self._clashes = {}
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
            dist = ep.dist
            dist_name = dist.name if dist is not None else None
            version = dist.version if dist is not None else None
            if self._pm.has_plugin(ep.name) or ep.name in self._errors:
                self._same_plugin_name(ep.name, dist_name)
                continue
            try:
                with plugin_code():  # its import runs the plugin's module code
                    plugin = ep.load()
                    self._pm.register(plugin, name=ep.name)
            except Exception as exc:
                self._load_error(ep.name, dist_name, _describe(exc))
                self._errors[ep.name].__cause__ = exc
                continue
            problem = self._hook_problem(plugin)
            if problem is not None:
                self._pm.unregister(plugin)
                self._load_error(ep.name, dist_name, f"the plugin {problem}")
                continue
            self._dists[ep.name] = (dist_name, version)

    def _same_plugin_name(self, ep_name: str, dist_name: str | None) -> None:
        """Report a second distribution whose plugin name is taken (it is not loaded)."""
        first, _ = self._dists.get(ep_name, (None, None))
        key = f"{ep_name} ({dist_name})"
        if first is None or first == dist_name or key in self._errors:
            return  # an in-process plugin of that name, or the same distribution again
        msg = (
            f"Plugin name {ep_name!r} from distribution {dist_name!r} is already taken by "
            f"distribution {first!r}, so {dist_name!r} is not loaded. Uninstall one of them "
            f"(pip uninstall {dist_name})."
        )
        self._errors[key] = PluginLoadError(msg)
        _warn(msg)

    def _collect_from(self, plugin_name: str, plugin: object, *, late: bool = False) -> None:
        """Add *plugin*'s models, all or none: a plugin that fails registers nothing.

        A name another plugin also registered is set aside (see :meth:`_add`); *late*
        (a plugin registered after loading) refuses the newcomer instead.
        """
        dist, version = self._dists.get(plugin_name, (None, None))
        for impl in self._pm.hook.bidi_register_models.get_hookimpls():
            if impl.plugin is not plugin:
                continue
            staged: dict[str, ModelInfo] = {}
            register = self._make_register(plugin_name, dist, version, staged)
            try:
                with plugin_code():
                    impl.function(register=register)
            except Exception as exc:
                msg = (
                    f"Plugin {plugin_name!r} failed while registering its models: {_describe(exc)}."
                )
                err = PluginLoadError(msg)
                err.__cause__ = exc
                self._errors[plugin_name] = err
                _warn(msg)
                continue
            if late:
                for name in staged:
                    existing = self._models.get(name)
                    if existing is None and name in self._clashes:
                        existing = self._clashes[name][0][0]
                    if existing is not None:
                        msg = (
                            f"Model name {name!r} from plugin {plugin_name!r} is already "
                            f"registered by plugin {existing.plugin!r}. Uninstall one of them."
                        )
                        raise DuplicateModelError(msg)
            for info in staged.values():
                self._add(info)

    def _add(self, info: ModelInfo) -> None:
        """Register *info*; a name two plugins claim is usable from neither (no guessing)."""
        name = info.name
        claimants = [*self._clashes.pop(name, ([], None))[0]]
        first = self._models.pop(name, None)
        if first is None and not claimants:
            self._models[name] = info
            return
        claimants = [*([first] if first is not None else []), *claimants, info]
        described = " and ".join(_origin(c) for c in claimants)
        uninstall = " or ".join(
            f"pip uninstall {c.distribution}" for c in claimants if c.distribution
        )
        msg = (
            f"Model name {name!r} is registered by more than one plugin: {described}. "
            f"get_model({name!r}) refuses to pick one; uninstall all but one of them"
            f"{f' ({uninstall})' if uninstall else ''}. Their other models still work."
        )
        self._clashes[name] = (claimants, DuplicateModelError(msg))
        _warn(msg)

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
            if not isinstance(typing.cast(object, name), str) or not MODEL_NAME_RE.fullmatch(name):
                msg = (
                    f"Plugin {plugin_name!r} registered a model under the invalid name "
                    f"{short_repr(name)}; a name is lower-case letters, digits and '_', "
                    "starting with a letter, at most 64 characters, such as 'nova_sonic'."
                )
                raise PluginLoadError(msg)
            if not callable(typing.cast(object, factory)):
                msg = f"Plugin {plugin_name!r} registered {name!r} with a non-callable factory."
                raise PluginLoadError(msg)
            if name in staged:
                msg = f"Plugin {plugin_name!r} registered the model name {name!r} twice."
                raise PluginLoadError(msg)
            _check_registration(plugin_name, name, capabilities, summary, extra)
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
        if not isinstance(typing.cast(object, name), str):
            msg = f"A model name is a str such as 'simulated' (got {short_repr(name)})."
            raise TypeError(msg)
        self._ensure_loaded()
        info = self._models.get(name)
        if info is not None:
            return info
        if name in self._clashes:
            raise self._clashes[name][1]
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
            DuplicateModelError: Two plugins registered *name*: neither is used.
            PluginLoadError: The plugin of that name failed to load.
            PluginError: The factory returned something that is not a model, or
                tried to end the program (``SystemExit``).
            TypeError: *name* is not a ``str``.
        """
        info = self.model_info(name)
        try:
            with plugin_code():
                model = info.factory(**config)
        except PluginExit as exc:
            msg = f"{_origin(info)} ended while building {name!r}: {exc}. Report it to its authors."
            raise PluginError(msg) from exc
        if not isinstance(typing.cast(object, model), BidiModel):
            msg = (
                f"{_origin(info)} built {short_repr(model)} (a {type(model).__name__}) for "
                f"{name!r}, not a BidiModel (start/send/receive/stop and config). "
                "Report it to the plugin's authors."
            )
            raise PluginError(msg)
        return model


def _origin(info: ModelInfo) -> str:
    """``Plugin 'x' (distribution 'bidi-x' 1.0)`` for messages."""
    if info.distribution is None:
        return f"Plugin {info.plugin!r}"
    version = f" {info.version}" if info.version else ""
    return f"Plugin {info.plugin!r} (distribution {info.distribution!r}{version})"


def _describe(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, PluginExit) else f"{type(exc).__name__}: {exc}"


#: ``register()`` keyword arguments the core reads, and what each must be.
_KNOWN_EXTRA = {
    "credentials": "a zero-argument callable returning whether credentials were found",
    "fake": "a 'module:attribute' string naming the plugin's fake server",
    "check": "the plugin's bidi check function, or a 'module:attribute' string naming it",
    "env_vars": "the names of the environment variables the model reads (str or list of str)",
}


def _env_names(value: Any) -> bool:
    names = [value] if isinstance(value, str) else value
    return isinstance(names, list | tuple) and all(
        isinstance(name, str) and _ENV_RE.fullmatch(name) for name in names
    )


def _check_registration(
    plugin: str, name: str, capabilities: Any, summary: Any, extra: dict[str, Any]
) -> None:
    """Refuse registration values that would break ``list_models()`` or ``bidi models`` later."""
    problem = None
    if capabilities is not None and not isinstance(capabilities, ModelCapabilities):
        problem = (
            f"capabilities={short_repr(capabilities)}; pass a bidi_core.ModelCapabilities "
            "(or leave it out)"
        )
    elif not isinstance(summary, str):
        problem = f"summary={short_repr(summary)}; a summary is one line of str"
    for key, value in extra.items():
        if problem is not None:
            break
        if key == "credentials" and not callable(value):
            problem = f"credentials={short_repr(value)}; it must be {_KNOWN_EXTRA[key]}"
        elif key in ("fake", "check") and not (
            (isinstance(value, str) and _SPEC_RE.fullmatch(value))
            or (key == "check" and callable(value))
        ):
            problem = f"{key}={short_repr(value)}; it must be {_KNOWN_EXTRA[key]}"
        elif key == "env_vars" and not _env_names(value):
            problem = f"env_vars={short_repr(value)}; it must be {_KNOWN_EXTRA[key]}"
        elif key not in _KNOWN_EXTRA and not callable(value) and json_problem(value) is not None:
            problem = (
                f"{key}={short_repr(value)}, which has {json_problem(value)}; extra values "
                "must be JSON data (or callables)"
            )
    if problem is not None:
        msg = f"Plugin {plugin!r} registered {name!r} with {problem}."
        raise PluginLoadError(msg)


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
