"""The configuration of ``bidi serve``: what every session runs, and the server's limits.

Pure data and checks (no Starlette, no uvicorn), so the CLI can refuse a bad setup
before it imports the server stack.
"""

from __future__ import annotations

import hmac
import json
import os
from collections.abc import Mapping
from typing import Any

import attrs

from .._config import copy_config, is_loopback
from .._errors import ConfigError

__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "TOKEN_ENV",
    "ServeConfig",
    "Token",
    "is_loopback",
]

#: Loopback by default: nothing outside this machine can spend the operator's credit.
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
#: The environment variable ``bidi serve`` reads the token from (``--token`` wins).
TOKEN_ENV = "BIDI_SERVE_TOKEN"
#: Where ``--workers`` hands the configuration to uvicorn's worker processes.
CONFIG_ENV = "BIDI_SERVE_CONFIG"


class Token:
    """The shared secret clients present; never shown by ``repr``/``str``.

    Args:
        value: The token.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not value:
            msg = "The server token must not be empty; leave it unset for no token."
            raise ConfigError(msg)
        self._value = value

    def matches(self, given: str | None) -> bool:
        """Compare *given* with the token in constant time (no timing side channel)."""
        if given is None:
            return False
        return hmac.compare_digest(given.encode("utf-8"), self._value.encode("utf-8"))

    def reveal(self) -> str:
        """Return the token itself (only to hand it to a worker process)."""
        return self._value

    def __repr__(self) -> str:
        return "Token('***')"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        msg = "A Token cannot be pickled."
        raise TypeError(msg)


def _positive(value: Any, name: str, *, integer: bool = False) -> Any:
    kinds = (int,) if integer else (int, float)
    if not isinstance(value, kinds) or isinstance(value, bool) or value <= 0:
        kind = "an int" if integer else "a number"
        msg = f"{name} must be {kind} > 0 (got {value!r})."
        raise ConfigError(msg)
    return value


def _token(value: Token | str | None) -> Token | None:
    if value is None or isinstance(value, Token):
        return value
    return Token(value)


@attrs.frozen(kw_only=True)
class ServeConfig:
    """What ``bidi serve`` runs: one ``BidiAgent`` per connection, all alike.

    A client never chooses the model, its credentials, its endpoint or the tools: they
    are the operator's, set here.

    Attributes:
        model: Registry name of the model every session talks to.
        model_kwargs: Keyword arguments for ``get_model()`` (``provider_config``,
            ``client_config``, ``model_id``), as ``--set`` builds them.
        tools: ``module:function`` specs of the tools every session's agent may call.
        system_prompt: Every session's instructions.
        host: The address to bind; anything but loopback needs a token.
        port: The TCP port.
        workers: uvicorn worker processes (each has its own sessions and limits).
        token: The shared secret clients send (``Authorization: Bearer`` or a
            ``token`` query parameter); None: no token (loopback only).
        allow_origins: Browser origins allowed to open sessions besides the server's own
            (``"*"``: any). Clients that send no ``Origin`` (programs) are not browsers.
        max_sessions: Concurrent sessions per worker; more are refused with HTTP 503.
        max_message_bytes: Largest WebSocket message; a larger one closes with 1009.
        idle_timeout_s: A session the client sent nothing to for this long is closed.
        audio_burst_ms: Audio a client may send ahead of real time (network jitter);
            beyond it, audio faster than real time is refused with an error event.
    """

    model: str = "simulated"
    model_kwargs: dict[str, Any] = attrs.field(factory=dict, converter=copy_config)
    tools: tuple[str, ...] = attrs.field(default=(), converter=tuple)
    system_prompt: str | None = None
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    workers: int = 1
    token: Token | None = attrs.field(default=None, converter=_token)
    allow_origins: tuple[str, ...] = attrs.field(default=(), converter=tuple)
    max_sessions: int = 100
    max_message_bytes: int = 2**20
    idle_timeout_s: float = 120.0
    audio_burst_ms: float = 2000.0

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.model, str) or not self.model:
            msg = f"The model must be a registry name such as 'simulated' (got {self.model!r})."
            raise ConfigError(msg)
        if (
            not isinstance(self.port, int)
            or isinstance(self.port, bool)
            or not (0 <= self.port <= 65535)
        ):
            msg = f"The port must be an int from 0 to 65535 (got {self.port!r})."
            raise ConfigError(msg)
        _positive(self.workers, "--workers", integer=True)
        _positive(self.max_sessions, "--max-sessions", integer=True)
        _positive(self.max_message_bytes, "--max-message-bytes", integer=True)
        _positive(self.idle_timeout_s, "--idle-timeout")
        _positive(self.audio_burst_ms, "audio_burst_ms")
        if self.max_message_bytes < 4096:
            msg = (
                f"--max-message-bytes must be at least 4096 (got {self.max_message_bytes}): "
                "a 100 ms audio frame at 24 kHz is 4,800 bytes."
            )
            raise ConfigError(msg)
        for origin in self.allow_origins:
            if origin != "*" and "://" not in origin:
                msg = (
                    f"--allow-origin takes an origin such as 'https://app.example.com' "
                    f"(scheme://host[:port]) or '*', got {origin!r}."
                )
                raise ConfigError(msg)
        self.check_bind()

    def check_bind(self) -> None:
        """Refuse a non-loopback address without a token.

        Raises:
            ConfigError: ``host`` is reachable from other machines and no token is set.
        """
        if self.token is None and not is_loopback(self.host):
            msg = (
                f"Refusing to bind {self.host!r} without a token: anyone who can reach it "
                "could spend your provider credit. Set --token (or the "
                f"{TOKEN_ENV} environment variable), or bind 127.0.0.1."
            )
            raise ConfigError(msg)

    def origin_allowed(self, origin: str | None, host_header: str | None) -> bool:
        """Whether a browser page from *origin* may open a session.

        No ``Origin`` header: not a browser (or a same-origin request some servers
        strip), allowed. Otherwise the server's own origin (same host and port as the
        request's ``Host``) or one of :attr:`allow_origins`.
        """
        if origin is None:
            return True
        if "*" in self.allow_origins or origin in self.allow_origins:
            return True
        if host_header is None:
            return False
        netloc = origin.partition("://")[2].rstrip("/")
        return netloc.lower() == host_header.lower()

    def to_env(self) -> dict[str, str]:
        """The environment a ``--workers`` child rebuilds this configuration from."""
        data = {
            "model": self.model,
            "model_kwargs": self.model_kwargs,
            "tools": list(self.tools),
            "system_prompt": self.system_prompt,
            "host": self.host,
            "port": self.port,
            "workers": self.workers,
            "allow_origins": list(self.allow_origins),
            "max_sessions": self.max_sessions,
            "max_message_bytes": self.max_message_bytes,
            "idle_timeout_s": self.idle_timeout_s,
            "audio_burst_ms": self.audio_burst_ms,
        }
        env = {CONFIG_ENV: json.dumps(data)}
        if self.token is not None:
            env[TOKEN_ENV] = self.token.reveal()
        return env

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ServeConfig:
        """Rebuild the configuration :meth:`to_env` handed to this process.

        Raises:
            ConfigError: The environment holds no configuration.
        """
        environ = os.environ if environ is None else environ
        raw = environ.get(CONFIG_ENV)
        if not raw:
            msg = (
                f"{CONFIG_ENV} is not set: the worker factory is meant to be started by "
                "'bidi serve --workers N', not on its own."
            )
            raise ConfigError(msg)
        data = json.loads(raw)
        return cls(token=environ.get(TOKEN_ENV) or None, **data)
