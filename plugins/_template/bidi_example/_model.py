"""``ExampleModel``: the example service's client, built on :class:`bidi_core.BidiModelBase`.

The base class provides the lifecycle rules (state checks, ``receive()`` ending on
``stop()``, idempotent ``stop()``, typed errors, input checks and resampling, the
proactive time limit); this class only opens the connection and translates frames.
Note that the base uses some private names itself (``_conn``, ``_reader``, ``_state``,
``_inputs`` ...): give your own attributes distinct names, as ``_rx``/``_tx`` here.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import ssl
from typing import Any, ClassVar

import attrs

from bidi_core import (
    BidiConnectionError,
    BidiErrorEvent,
    BidiInputEvent,
    BidiModelBase,
    ConfigError,
    Messages,
    MissingCredentialsError,
    ProviderError,
    ProviderProtocolError,
    ToolResultEvent,
    ToolSpec,
)
from bidi_core._config import check_keys, check_model_id, check_number, copy_config

from . import _wire
from ._hooks import API_KEY_ENV, CAPABILITIES

__all__ = ["DEFAULT_MODEL_ID", "ExampleModel"]

#: The default ``model_id``.
DEFAULT_MODEL_ID = "example-v1"
DEFAULT_HOST = "realtime.example.com"
DEFAULT_PORT = 443
_PROVIDER_KEYS = ("voice", "connection_limit_s")
_CLIENT_KEYS = (
    "api_key",
    "host",
    "port",
    "ssl",
    "allow_insecure",
    "connect_timeout",
    "open_timeout",
)
_LINE_LIMIT = 16 * 1024 * 1024  # audio frames are long lines


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ExampleModel(BidiModelBase):
    """A realtime model of the (fictional) example service.

    Args:
        model_id: The service's model id.
        provider_config: Model behaviour: ``voice`` (str), ``connection_limit_s``
            (restart proactively after this many seconds; default: never).
        client_config: Connection: ``api_key`` (else ``$EXAMPLE_API_KEY``), ``host``,
            ``port``, ``ssl`` (True: verify with system CAs; an ``ssl.SSLContext``,
            kept by reference; False: plain text, loopback only unless
            ``allow_insecure=True``), ``connect_timeout`` (seconds per network step,
            default 10), ``open_timeout`` (seconds ``start()`` may take in all,
            default 30; None: no bound).

    Raises:
        ConfigError: A key is unknown (the message names the accepted keys) or a
            value is invalid.
    """

    provider: ClassVar[str] = "example"
    capabilities = CAPABILITIES

    def __init__(
        self,
        model_id: str = DEFAULT_MODEL_ID,
        provider_config: dict[str, Any] | None = None,
        client_config: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if kwargs:
            check_keys(
                kwargs, ["model_id", "provider_config", "client_config"], where="ExampleModel()"
            )
        # Check every setting here, before any I/O: get_model() fails at once, naming the key.
        check_model_id(model_id, where="example", example=DEFAULT_MODEL_ID)
        # copy_config() deep-copies plain data and keeps live objects (SSLContext) as they are.
        provider_config = copy_config(provider_config if provider_config is not None else {})
        client_config = copy_config(client_config if client_config is not None else {})
        check_keys(provider_config, _PROVIDER_KEYS, where="example provider_config")
        check_keys(client_config, _CLIENT_KEYS, where="example client_config")
        # check_number(): a finite number (never NaN, inf, a bool or a str) within bounds.
        limit = check_number(
            provider_config.get("connection_limit_s"),
            where="example provider_config['connection_limit_s']",
            above=0,
            optional=True,
            unit="seconds",
        )
        voice = provider_config.get("voice")
        if voice is not None and not isinstance(voice, str):
            msg = f"example provider_config['voice'] must be a str or None (got {voice!r})."
            raise ConfigError(msg)
        tls = client_config.get("ssl", True)
        if not isinstance(tls, bool | ssl.SSLContext):
            msg = f"'ssl' must be True, False or an ssl.SSLContext (got {tls!r})."
            raise ConfigError(msg)
        self._host = str(client_config.get("host", DEFAULT_HOST))
        self._port: int = check_number(
            client_config.get("port", DEFAULT_PORT),
            where="example client_config['port']",
            minimum=1,
            maximum=65535,
            integer=True,
        )
        if (
            tls is False
            and not _is_loopback(self._host)
            and not client_config.get("allow_insecure")
        ):
            msg = (
                f"Refusing plain-text TCP to {self._host!r}: only loopback hosts may go "
                "without TLS. Pass client_config={'allow_insecure': True} to opt in."
            )
            raise ConfigError(msg)
        self._ssl: ssl.SSLContext | bool = tls
        self._connect_timeout: float = check_number(
            client_config.get("connect_timeout", 10.0),
            where="example client_config['connect_timeout']",
            above=0,
            unit="seconds",
        )
        open_timeout = check_number(
            client_config.get("open_timeout", self.open_timeout),
            where="example client_config['open_timeout']",
            above=0,
            optional=True,
            unit="seconds",
        )
        if limit is not None:
            self.capabilities = attrs.evolve(CAPABILITIES, connection_limit_s=limit)
        super().__init__(
            model_id=model_id,
            config={"provider_config": provider_config, "client_config": client_config},
        )
        # The base class bounds all of start() by this (a retryable BidiConnectionError).
        self.open_timeout = open_timeout
        self._rx: asyncio.StreamReader | None = None
        self._tx: asyncio.StreamWriter | None = None
        self._handle: str | None = None

    @property
    def host(self) -> str:
        """The host the model connects to."""
        return self._host

    @property
    def port(self) -> int:
        """The TCP port the model connects to."""
        return int(self._port)

    # ------------------------------------------------------------ hooks

    def connection_limit_s(self) -> float | None:
        return self.capabilities.connection_limit_s

    def _restart_config(self) -> dict[str, Any]:
        return {"resume_handle": self._handle} if self._handle else {}

    async def _open(
        self,
        *,
        system_prompt: str | None,
        tools: list[ToolSpec],
        messages: Messages,
        restart_config: dict[str, Any],
    ) -> None:
        check_keys(restart_config, ("resume_handle",), where="example start() restart_config")
        client_config = self.config["client_config"]
        api_key = client_config.get("api_key") or os.environ.get(API_KEY_ENV)
        if not api_key:  # before any I/O, naming exactly what to set
            msg = (
                f"No API key for the example service: set {API_KEY_ENV}, or pass "
                "client_config={'api_key': ...}."
            )
            raise MissingCredentialsError(
                msg, env_vars=(API_KEY_ENV,), config_keys=("client_config.api_key",)
            )
        self._handle = restart_config.get("resume_handle")
        try:
            async with asyncio.timeout(self._connect_timeout):
                self._rx, self._tx = await asyncio.open_connection(
                    self._host, self._port, ssl=self._ssl or None, limit=_LINE_LIMIT
                )
        except (OSError, TimeoutError) as exc:
            msg = f"Cannot connect to the example service at {self._host}:{self._port}: {exc!r}."
            raise BidiConnectionError(msg, provider=self.provider, retryable=True) from exc
        await self._write(
            _wire.session_start(
                model_id=self.model_id,
                api_key=api_key,
                system_prompt=system_prompt,
                tools=tools,
                messages=messages,
                voice=self.config["provider_config"].get("voice"),
                resume_handle=self._handle,
            )
        )
        async with asyncio.timeout(self._connect_timeout):
            frame = _wire.decode(await self._rx.readline() or b"{}")
        if frame["type"] == "error":
            msg = f"The example service refused the session: {frame.get('message')}"
            raise BidiConnectionError(msg, provider=self.provider, code=frame.get("code"))
        if frame["type"] != "session.ready":
            msg = f"Expected 'session.ready' from the example service, got {frame['type']!r}."
            raise ProviderProtocolError(msg, provider=self.provider)

    async def _read(self) -> None:
        assert self._rx is not None
        while True:
            try:
                line = await self._rx.readline()
            except (OSError, ValueError) as exc:  # ValueError: a line over _LINE_LIMIT
                msg = f"The example connection broke: {exc!r}."
                raise BidiConnectionError(msg, provider=self.provider, retryable=True) from exc
            if not line:
                return  # end of stream: the base reports it unless stop() was called
            try:
                self._dispatch(_wire.decode(line))
            except ProviderProtocolError as exc:  # one bad frame: report it, keep reading
                self._emit(BidiErrorEvent(message=str(exc), code="malformed_frame"))

    def _dispatch(self, frame: dict[str, Any]) -> None:
        kind = frame["type"]
        if kind == "session.handle":
            self._handle = str(frame.get("handle"))
        elif kind == "session.expired":
            # The service dropped what was in flight: send its last audio again (base class).
            self._provider_ended()
            self._fail(self._timeout_error(f"example: {frame.get('message', 'session expired')}"))
        elif kind == "error" and frame.get("fatal"):
            msg = f"The example service failed the session: {frame.get('message')}"
            self._fail(ProviderError(msg, provider=self.provider, code=frame.get("code")))
        else:
            for event in _wire.from_server(frame):
                self._emit(event)

    async def _send(self, event: BidiInputEvent | ToolResultEvent) -> None:
        await self._write(_wire.to_server(event))

    async def _write(self, frame: dict[str, Any]) -> None:
        assert self._tx is not None
        try:
            self._tx.write(_wire.encode(frame))
            await self._tx.drain()
        except OSError as exc:
            msg = f"Cannot send to the example service: {exc!r}."
            raise BidiConnectionError(msg, provider=self.provider, retryable=True) from exc

    async def _close(self, *, graceful: bool) -> None:
        tx = self._tx
        if tx is None:
            return
        if graceful:
            if not tx.is_closing():
                tx.write(_wire.encode({"type": "session.end"}))
                await tx.drain()
                tx.close()
            await tx.wait_closed()
        else:  # release now, without waiting on the network
            tx.transport.abort()
            self._rx = self._tx = None
