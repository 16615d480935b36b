"""The bidi exception hierarchy.

::

    BidiError
    ├── UnknownModelError (also LookupError)   no model registered under that name
    ├── PluginError                             a plugin misbehaved (the others still work)
    │   ├── DuplicateModelError                 two plugins registered the same name
    │   └── PluginLoadError                     a plugin failed to import or to register
    ├── ConfigError (also ValueError)           unknown or invalid config key / keyword
    │   └── MissingCredentialsError             no credentials found: names what to set
    ├── BidiModelStateError (also RuntimeError) misuse: send before start, double start, ...
    ├── UnsupportedInputError (also ValueError) input the model's capabilities exclude
    ├── ProviderError                           the provider failed the connection
    │   ├── BidiConnectionError                 could not connect, or the connection broke
    │   │   └── AuthenticationError             the provider rejected the credentials
    │   └── ProviderProtocolError               the provider sent something unreadable
    ├── ToolError                               a tool could not be built or run
    ├── MissingDependencyError (also ImportError) an optional extra is not installed
    ├── AudioFormatError (also ValueError)      an audio file cannot be read
    ├── AudioDeviceError (also OSError)         a microphone or speaker failed
    └── BidiModelTimeoutError                   connection limit reached: restart
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AudioDeviceError",
    "AuthenticationError",
    "AudioFormatError",
    "BidiConnectionError",
    "BidiError",
    "BidiModelStateError",
    "BidiModelTimeoutError",
    "ConfigError",
    "DuplicateModelError",
    "MissingCredentialsError",
    "MissingDependencyError",
    "PluginError",
    "PluginLoadError",
    "ProviderError",
    "ProviderProtocolError",
    "ToolError",
    "UnknownModelError",
    "UnsupportedInputError",
]


class BidiError(Exception):
    """Base class of every error raised by bidi."""


class UnknownModelError(BidiError, LookupError):
    """No installed plugin registered a model under the requested name."""

    def __str__(self) -> str:  # LookupError would otherwise quote the message like KeyError
        return str(self.args[0]) if self.args else ""


class PluginError(BidiError):
    """A plugin misbehaved: it failed to load, clashed with another, or its factory
    returned something that is not a model. The message names the plugin (and its
    distribution); other plugins keep working."""


class DuplicateModelError(PluginError):
    """Two plugins registered the same model name (the message names both)."""


class PluginLoadError(PluginError):
    """A plugin could not be imported or failed while registering its models."""


class ConfigError(BidiError, ValueError):
    """An unknown or invalid configuration key or keyword argument."""


class MissingCredentialsError(ConfigError):
    """No credentials were found; raised before any network I/O where possible.

    The message names exactly what to set (environment variables or config keys).

    Attributes:
        env_vars: The environment variables the model reads for credentials (and
            region, where it needs one), in the order it reads them.
        config_keys: The config keys that take them instead, dotted (as
            ``bidi chat --set`` takes them), e.g. ``("client_config.api_key",)``.
    """

    def __init__(
        self,
        message: str,
        *,
        env_vars: tuple[str, ...] = (),
        config_keys: tuple[str, ...] = (),
    ) -> None:
        super().__init__(message)
        self.env_vars = env_vars
        self.config_keys = config_keys


class BidiModelStateError(BidiError, RuntimeError):
    """A model was used in the wrong lifecycle state (e.g. ``send()`` before ``start()``)."""


class UnsupportedInputError(BidiError, ValueError):
    """The model's capabilities exclude this input (modality, format, rate or channels)."""


class ProviderError(BidiError):
    """The provider failed the connection.

    Attributes:
        provider: Registry name of the model, e.g. ``"openai_realtime"``.
        code: The provider's error or close code, if any.
        retryable: Whether starting a new connection may succeed.
    """

    def __init__(
        self,
        message: str,
        *,
        provider: str | None = None,
        code: str | int | None = None,
        retryable: bool = False,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.provider = provider
        self.code = code
        self.retryable = retryable

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.message!r}, provider={self.provider!r}, "
            f"code={self.code!r}, retryable={self.retryable!r})"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_provider_error, (type(self), self.message, self.__dict__))


def _rebuild_provider_error(
    cls: type[ProviderError], message: str, state: dict[str, Any]
) -> ProviderError:
    err = cls.__new__(cls)
    Exception.__init__(err, message)
    err.__dict__.update(state)
    return err


class BidiConnectionError(ProviderError):
    """The connection could not be opened, or it broke."""


class AuthenticationError(BidiConnectionError):
    """The provider rejected the credentials (a bad or expired key, an unknown access key).

    Never retryable: the same credentials fail again. The message says what to check.
    """


class ProviderProtocolError(ProviderError):
    """The provider sent a frame that could not be understood."""


class ToolError(BidiError):
    """A tool could not be described or executed."""


class MissingDependencyError(BidiError, ImportError):
    """An optional package is not installed; the message names the extra to install."""


class AudioFormatError(BidiError, ValueError):
    """An audio file cannot be read: not a WAV, not 16-bit PCM, or damaged."""


class AudioDeviceError(BidiError, OSError):
    """A microphone or speaker could not be opened or failed while streaming."""


class BidiModelTimeoutError(BidiError):
    """The provider's connection limit was reached (or is about to be).

    The agent answers it by restarting the model with ``**restart_config``
    (e.g. a session resumption handle). ``str(err)`` is the message.

    Args:
        message: What happened.
        **restart_config: Keyword arguments for the next ``start()``.
    """

    def __init__(self, message: str, **restart_config: Any) -> None:
        super().__init__(message)
        self.message = message
        self.restart_config: dict[str, Any] = restart_config

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_timeout, (self.message, self.restart_config))


def _rebuild_timeout(message: str, restart_config: dict[str, Any]) -> BidiModelTimeoutError:
    return BidiModelTimeoutError(message, **restart_config)
