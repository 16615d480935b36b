"""The ``remote`` model: a ``bidi serve`` gateway used like any other model.

::

    model = get_model("remote", client_config={"url": "wss://gateway.example.com/v1/session",
                                               "token": "..."})
    await model.start()
    await model.send(BidiTextInputEvent(text="Hello"))
    async for event in model.receive():
        ...

It speaks the gateway's session protocol (``WS /v1/session``) with ``websockets``
(``pip install 'bidi-core[remote]'``). The gateway runs a ``BidiAgent`` per session:
its model, credentials, tools and system prompt are the operator's. So:

* tools run on the gateway: ``receive()`` yields their ``ToolUseStreamEvent`` and, like
  ``BidiAgent.receive()``, the ``ToolResultEvent`` the gateway sent; ``capabilities.tools``
  is False (a client cannot send tool results).
  Use the model directly: a ``BidiAgent`` around it would try to answer those calls.
* the gateway's agent restarts the provider connection at its time limits (you see
  ``BidiConnectionRestartEvent``); this model never raises ``BidiModelTimeoutError``.
* ``system_prompt``, ``tools`` and ``messages`` passed to ``start()`` cannot reach the
  gateway's agent (it has the operator's); they are not sent, with a logged warning.
* ``capabilities`` are the gateway model's once ``start()`` has connected (rates,
  modalities, truncation); before that, defaults. Audio at any rate is resampled
  to the gateway's input rate and sent as binary frames.
* a barge-in truncates at what was played: :meth:`RemoteModel.truncate` (called by
  ``BidiAgent`` or by you) sends the protocol's ``playback`` message.

``client_config`` keys: ``url`` (required; ``ws://`` or ``wss://``; plain ``ws://`` to
a non-loopback host is refused unless ``allow_insecure``), ``token`` (sent as
``Authorization: Bearer``), ``headers``, ``open_timeout`` (seconds, default 15),
``ssl`` (an ``ssl.SSLContext``), ``proxy`` (websockets' ``proxy``), ``allow_insecure``,
``max_message_size`` (default 16 MiB).
"""

from __future__ import annotations

import asyncio
import logging
import typing
from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import urlsplit

import attrs

from . import _fastcodec as codec
from ._base import BidiModelBase
from ._config import check_keys, copy_config, is_loopback
from ._errors import BidiConnectionError, ConfigError, MissingDependencyError
from ._input import InputPreparer
from ._protocol import ModelCapabilities
from ._remote_hooks import REMOTE_CAPABILITIES
from .events import (
    BidiAudioInputEvent,
    BidiAudioStreamEvent,
    BidiConnectionStartEvent,
    BidiErrorEvent,
    BidiInputEvent,
    BidiOutputEvent,
    BidiResponseStartEvent,
    EventDecodeError,
    ToolResultEvent,
    from_dict,
)
from .types import Messages, ToolSpec

try:
    from websockets.asyncio.client import ClientConnection, connect
    from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
except ModuleNotFoundError as exc:  # pragma: no cover - exercised without the extra
    msg = (
        "The remote model needs websockets, which is not installed. Install it with: "
        "pip install 'bidi-core[remote]'"
    )
    raise MissingDependencyError(msg) from exc

__all__ = ["DEFAULT_MODEL_ID", "RemoteModel"]

logger = logging.getLogger("bidi_core.remote")

DEFAULT_MODEL_ID = "remote"
CLIENT_KEYS = (
    "allow_insecure",
    "headers",
    "max_message_size",
    "open_timeout",
    "proxy",
    "ssl",
    "token",
    "url",
)
_CLOSE_HINTS = {
    1000: "the gateway ended the session",
    1001: "the gateway is going away (restarting or shutting down)",
    1008: "the gateway refused the session (policy)",
    1009: "a message was larger than the gateway accepts",
    1011: "the gateway's model failed",
    1012: "the gateway is restarting",
}


class RemoteModel(BidiModelBase):
    """A model served by a ``bidi serve`` gateway (see the module docs).

    Args:
        model_id: Free-form; reported in ``BidiConnectionStartEvent.model``.
        provider_config: Must be empty (the gateway's model is configured there).
        client_config: ``url`` and the transport keys of the module docs.

    Raises:
        ConfigError: An unknown key, a missing or insecure URL, a bad value.
    """

    provider: ClassVar[str] = "remote"
    capabilities = REMOTE_CAPABILITIES
    audio_replay_ms = 0  # the gateway's agent replays what its provider dropped

    def __init__(
        self,
        model_id: str = DEFAULT_MODEL_ID,
        provider_config: dict[str, Any] | None = None,
        client_config: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if kwargs:
            check_keys(
                kwargs, ["model_id", "provider_config", "client_config"], where="RemoteModel()"
            )
        provider_config = copy_config(provider_config or {})
        check_keys(provider_config, (), where="remote provider_config")
        client = dict(client_config or {})
        check_keys(client, CLIENT_KEYS, where="remote client_config")
        self._url = _check_url(client.get("url"), allow_insecure=client.get("allow_insecure"))
        token = client.get("token")
        if token is not None and (not isinstance(token, str) or not token):
            msg = "client_config['token'] must be a non-empty str."
            raise ConfigError(msg)
        self._token: str | None = token
        headers = client.get("headers") or {}
        if not isinstance(headers, Mapping):
            msg = f"client_config['headers'] must be a dict (got {type(headers).__name__})."
            raise ConfigError(msg)
        self._headers = {str(k): str(v) for k, v in headers.items()}
        timeout = client.get("open_timeout", 15.0)
        if not isinstance(timeout, int | float) or isinstance(timeout, bool) or timeout <= 0:
            msg = f"client_config['open_timeout'] must be seconds > 0 (got {timeout!r})."
            raise ConfigError(msg)
        self._ssl = client.get("ssl")
        self._proxy = client.get("proxy", True)
        self._max_size = client.get("max_message_size", 16 * 2**20)
        # The token stays out of config (and so out of repr and logs).
        safe = {k: v for k, v in client.items() if k not in ("token", "headers")}
        if token is not None:
            safe["token"] = "***"
        super().__init__(
            model_id=model_id,
            config={"provider_config": provider_config, "client_config": safe},
        )
        self.open_timeout = float(timeout)
        self.capabilities = REMOTE_CAPABILITIES
        self._ws: ClientConnection | None = None
        self._output_rate = REMOTE_CAPABILITIES.output_sample_rate
        self._response: str | None = None
        self._greeted = False
        self._fatal: str | None = None
        #: The gateway's ``session`` message of the current connection.
        self.session: dict[str, Any] = {}

    @property
    def url(self) -> str:
        """The gateway's session URL."""
        return self._url

    # ------------------------------------------------------------ connection

    async def _open(
        self,
        *,
        system_prompt: str | None,
        tools: list[ToolSpec],
        messages: Messages,
        restart_config: dict[str, Any],
    ) -> None:
        check_keys(restart_config, (), where="remote start() restart_config")
        ignored = [
            what
            for what, given in (
                ("system prompt", system_prompt is not None),
                ("tools", bool(tools)),
                ("history", bool(messages)),
            )
            if given
        ]
        if ignored:
            # Not sent, and said so: the gateway's agent has the operator's settings.
            logger.warning(
                "remote: the %s passed to start() cannot reach the gateway, whose agent has "
                "the operator's (bidi serve --system-prompt / --tool); not sent.",
                " and ".join(ignored),
            )
        headers = dict(self._headers)
        if self._token is not None:
            headers["Authorization"] = f"Bearer {self._token}"
        self._response = None
        self._greeted = False
        self._fatal = None
        try:
            ws = await connect(
                self._url,
                additional_headers=headers,
                compression=None,
                max_size=self._max_size,
                open_timeout=self.open_timeout,
                close_timeout=2.0,
                ssl=self._ssl,
                proxy=self._proxy,
                logger=_RedactingLogger(logging.getLogger("bidi_core.remote.ws"), self._token),
            )
        except InvalidStatus as exc:
            status = exc.response.status_code
            reason = exc.response.body.decode("utf-8", "replace").strip()[:300]
            hint = {401: " Check client_config['token'].", 503: " Retry later."}.get(status, "")
            msg = (
                f"The gateway at {self._url} refused the session: HTTP {status}"
                f"{': ' + reason if reason else ''}.{hint}"
            )
            raise BidiConnectionError(
                msg, provider=self.provider, code=status, retryable=status in (429, 503)
            ) from exc
        except (OSError, TimeoutError, InvalidHandshake) as exc:
            msg = f"Could not connect to the gateway at {self._url}: {exc}"
            raise BidiConnectionError(msg, provider=self.provider, retryable=True) from exc
        self._ws = ws
        try:
            hello = codec.loads(await ws.recv())
        except ConnectionClosed as exc:
            raise self._closed_error(exc) from exc
        except ValueError as exc:
            msg = f"The server at {self._url} did not greet with a session message: {exc}."
            raise BidiConnectionError(msg, provider=self.provider) from exc
        if not isinstance(hello, dict) or hello.get("type") != "session":
            msg = f"The server at {self._url} is not a bidi gateway (first message {hello!r:.200})."
            raise BidiConnectionError(msg, provider=self.provider)
        self._adopt(hello)

    def _adopt(self, hello: dict[str, Any]) -> None:
        """Take the gateway's rates and its model's capabilities."""
        self.session = hello
        try:
            in_rate = int(hello["input_sample_rate"])
            out_rate = int(hello["output_sample_rate"])
        except (KeyError, TypeError, ValueError) as exc:
            msg = f"The gateway's session message lacks its sample rates: {hello!r:.200}."
            raise BidiConnectionError(msg, provider=self.provider) from exc
        theirs = hello.get("capabilities")
        fields = {f.name for f in attrs.fields(ModelCapabilities)}
        known = {k: v for k, v in theirs.items() if k in fields} if isinstance(theirs, dict) else {}
        try:
            base = ModelCapabilities(**known)
        except (TypeError, ValueError):
            base = REMOTE_CAPABILITIES
        self.capabilities = attrs.evolve(
            base,
            tools=False,
            resumption=False,
            connection_limit_s=None,
            input_sample_rates=(in_rate,),
            output_sample_rate=out_rate,
            resamples_input=True,
        )
        self._output_rate = out_rate
        # start() built its input converter from the defaults; use the gateway's rate.
        self._inputs = InputPreparer(in_rate, (in_rate,))

    def input_sample_rate(self) -> int:
        return self.capabilities.input_sample_rates[0]

    def _closed_error(self, exc: ConnectionClosed) -> BidiConnectionError:
        rcvd = exc.rcvd
        if rcvd is None:
            return BidiConnectionError(
                f"The connection to the gateway at {self._url} dropped without a close frame.",
                provider=self.provider,
                code=1006,
                retryable=True,
            )
        hint = _CLOSE_HINTS.get(rcvd.code, "the gateway closed the connection")
        detail = f": {self._fatal}" if self._fatal else (f" ({rcvd.reason})" if rcvd.reason else "")
        return BidiConnectionError(
            f"The gateway session ended with code {rcvd.code}: {hint}{detail}",
            provider=self.provider,
            code=rcvd.code,
            retryable=rcvd.code in (1001, 1011, 1012, 1013),
        )

    async def _read(self) -> None:
        ws = self._ws
        assert ws is not None
        emit = self._emit
        rate = self._output_rate
        while True:
            try:
                frame = await ws.recv()
            except ConnectionClosed as exc:
                raise self._closed_error(exc) from exc
            if isinstance(frame, bytes):
                emit(
                    BidiAudioStreamEvent(audio=frame, sample_rate=rate, response_id=self._response)
                )
                continue
            self._text(frame)

    def _text(self, frame: str) -> None:
        try:
            data = codec.loads(frame)
            event = from_dict(data)
        except (ValueError, EventDecodeError) as exc:
            self._emit(
                BidiErrorEvent(
                    message=f"The gateway sent a frame that could not be read ({exc}); skipped.",
                    code="malformed_frame",
                    recoverable=True,
                )
            )
            return
        if isinstance(event, BidiConnectionStartEvent) and not self._greeted:
            self._greeted = True  # the same connection receive() already announced
            return
        if isinstance(event, BidiResponseStartEvent):
            self._response = event.response_id
        elif isinstance(event, BidiErrorEvent) and not event.recoverable:
            self._fatal = event.message
        # ToolResultEvent: the gateway ran a tool (as BidiAgent.receive() shows it).
        self._emit(typing.cast(BidiOutputEvent, event))

    async def _send(self, event: BidiInputEvent | ToolResultEvent) -> None:
        ws = self._ws
        if ws is None:
            msg = "The gateway connection is closed."
            raise BidiConnectionError(msg, provider=self.provider)
        frame: str | bytes
        if isinstance(event, BidiAudioInputEvent):
            frame = event.audio  # mono at the gateway's rate (checked by send())
        else:
            frame = codec.dumps(event.to_dict())
        try:
            await ws.send(frame)
        except ConnectionClosed as exc:
            raise self._closed_error(exc) from exc

    async def truncate(self, response_id: str, played_ms: int) -> None:
        """Tell the gateway only *played_ms* of *response_id* was heard (a ``playback`` message).

        The gateway's agent truncates its model's copy of the answer to it on barge-in.
        """
        self._require_open("report playback")
        ws = self._ws
        if ws is None:
            return
        message = {"type": "playback", "response_id": response_id, "played_ms": max(0, played_ms)}
        try:
            await ws.send(codec.dumps(message))
        except ConnectionClosed as exc:
            raise self._closed_error(exc) from exc

    async def _close(self, *, graceful: bool) -> None:
        ws = self._ws
        if ws is None:
            return
        if graceful:
            await ws.close()
            return
        self._ws = None
        transport = ws.transport
        if transport is not None and not transport.is_closing():
            transport.abort()
        await asyncio.sleep(0)


class _RedactingLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    """websockets logs request headers at DEBUG: this one never prints the token."""

    def __init__(self, base: logging.Logger, secret: str | None) -> None:
        super().__init__(base, {})
        self._secret = secret

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        if not self.isEnabledFor(level):
            return
        secret = self._secret
        if secret:
            msg = str(msg).replace(secret, "***")
            args = tuple(str(a).replace(secret, "***") if secret in str(a) else a for a in args)
        self.logger.log(level, msg, *args, **kwargs)


def _check_url(url: Any, *, allow_insecure: Any) -> str:
    if not isinstance(url, str) or not url:
        msg = (
            "The remote model needs client_config['url'], the gateway's session URL, e.g. "
            "'ws://127.0.0.1:8765/v1/session' or 'wss://gateway.example.com/v1/session'."
        )
        raise ConfigError(msg)
    if allow_insecure is not None and not isinstance(allow_insecure, bool):
        msg = f"client_config['allow_insecure'] must be a bool (got {allow_insecure!r})."
        raise ConfigError(msg)
    parts = urlsplit(url)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme.lower(), parts.scheme.lower())
    if scheme not in ("ws", "wss") or not parts.hostname:
        msg = f"client_config['url'] must be a ws:// or wss:// URL with a host, got {url!r}."
        raise ConfigError(msg)
    if scheme == "ws" and not allow_insecure and not is_loopback(parts.hostname):
        msg = (
            f"Refusing plain-text ws:// to the non-loopback host {parts.hostname!r}: the token "
            "and the conversation would travel unencrypted. Use wss://, or pass "
            "client_config={'allow_insecure': True} if you really mean it."
        )
        raise ConfigError(msg)
    if parts.query and "token=" in parts.query:
        msg = "Pass the token as client_config['token'], not in the URL (URLs end up in logs)."
        raise ConfigError(msg)
    return parts._replace(scheme=scheme).geturl()
