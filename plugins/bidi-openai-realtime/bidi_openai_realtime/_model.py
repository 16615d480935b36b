"""``OpenAIRealtimeModel``: OpenAI Realtime (GA) over a ``websockets`` connection."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Iterable
from typing import Any, ClassVar

import attrs
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.version import version as websockets_version

from bidi_core import BidiModelBase
from bidi_core._config import check_keys, copy_config
from bidi_core._errors import (
    AuthenticationError,
    BidiConnectionError,
    ConfigError,
    MissingCredentialsError,
    ProviderError,
)
from bidi_core.events import (
    BidiAudioInputEvent,
    BidiErrorEvent,
    BidiImageInputEvent,
    BidiInputEvent,
    BidiOutputEvent,
    BidiTextInputEvent,
    ToolResultEvent,
)
from bidi_core.types import Messages, ToolSpec

from . import _wire as wire
from ._hooks import CAPABILITIES
from ._settings import (
    API_KEY_ENV,
    DEFAULT_MODEL_ID,
    Settings,
    parse_settings,
    safe_client_config,
)
from ._version import __version__

__all__ = ["OpenAIRealtimeModel"]

logger = logging.getLogger("bidi_openai_realtime")

_ALREADY_ACTIVE = "conversation_already_has_active_response"


def _http_error_message(body: bytes | bytearray | None) -> str:
    """The ``error.message`` of an HTTP error body (``{"error": {"message": ...}}``), if any."""
    try:
        data = json.loads(body or b"")
    except ValueError:
        return ""
    error = data.get("error") if isinstance(data, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    return message.strip() if isinstance(message, str) else ""


class _RedactingLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    """Hands websockets a logger that never prints the API key (it logs headers at DEBUG)."""

    def __init__(self, base: logging.Logger, secrets: Iterable[str]) -> None:
        super().__init__(base, {})
        self._secrets = [s for s in secrets if s]

    def _redact(self, value: Any) -> Any:
        text = value if isinstance(value, str) else None
        if text is None:
            try:
                text = str(value)
            except Exception:  # pragma: no cover - defensive
                return value
            if not any(s in text for s in self._secrets):
                return value
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        if self.isEnabledFor(level):
            self.logger.log(level, self._redact(msg), *(self._redact(a) for a in args), **kwargs)


class OpenAIRealtimeModel(BidiModelBase):
    """OpenAI Realtime speech-to-speech over the GA WebSocket protocol.

    Args:
        model_id: The realtime model (``gpt-realtime`` by default).
        provider_config: Model behaviour: ``audio`` (``voice``, ``speed``; rates
            are 24 kHz), ``inference`` (any GA session field, deep-merged over the
            defaults; ``turn_detection``, ``transcription``, ``noise_reduction``,
            ``voice`` and ``speed`` may be given flat) and ``connection_limit_s``
            (proactive restart, default 3300 s; None turns it off).
        client_config: Authentication and transport: ``api_key`` (else
            ``OPENAI_API_KEY``), ``base_url`` (default ``wss://api.openai.com/v1``;
            ``http(s)`` maps to ``ws(s)``), ``organization``, ``project``,
            ``headers``, ``query``, ``auth_header`` (``"api-key"`` for Azure),
            ``allow_insecure``, ``ssl``, ``proxy``, ``open_timeout``,
            ``max_message_size``. See the README for every key and default.

    Raises:
        ConfigError: An unknown keyword or config key, or a bad value.
    """

    provider: ClassVar[str] = "openai_realtime"
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
                kwargs,
                ["model_id", "provider_config", "client_config"],
                where="OpenAIRealtimeModel()",
            )
        if not isinstance(model_id, str) or not model_id:
            msg = f"model_id must be a non-empty str (got {model_id!r})."
            raise ConfigError(msg)
        provider_config = copy_config(provider_config or {})
        client_config = safe_client_config(client_config or {})
        self._settings: Settings = parse_settings(model_id, provider_config, client_config)
        super().__init__(
            model_id=model_id,
            config={
                "model_id": model_id,
                "provider_config": provider_config,
                "client_config": client_config,
            },
        )
        # The base class bounds all of start() by it (a retryable BidiConnectionError).
        self.open_timeout = self._settings.open_timeout
        self._ws: ClientConnection | None = None
        self._key_in_use = ""
        self._early: list[str | bytes] = []
        self._decoder = wire.Decoder()
        self._gate = wire.ResponseGate()
        self._session: dict[str, Any] = {}

    # ------------------------------------------------------------ settings

    @property
    def url(self) -> str:
        """The socket URL this model connects to."""
        return self._settings.url

    @property
    def session(self) -> dict[str, Any]:
        """The GA session object sent by the last ``start()`` (a copy)."""
        session: dict[str, Any] = copy_config(self._session)
        return session

    def connection_limit_s(self) -> float | None:
        """Seconds until the proactive restart (``provider_config['connection_limit_s']``)."""
        return self._settings.connection_limit_s

    def _restart_config(self) -> dict[str, Any]:
        # OpenAI Realtime cannot resume a session: the agent replays history instead.
        return {}

    def _api_key(self) -> str:
        key = self._settings.api_key
        if key:
            return key.reveal()
        env = os.environ.get(API_KEY_ENV, "")
        if env:
            return env
        msg = (
            f"No OpenAI API key: set the {API_KEY_ENV} environment variable, or pass "
            "client_config={'api_key': ...}."
        )
        raise MissingCredentialsError(
            msg, env_vars=(API_KEY_ENV,), config_keys=("client_config.api_key",)
        )

    def _build_session(self, system_prompt: str | None, tools: list[ToolSpec]) -> dict[str, Any]:
        session: dict[str, Any] = copy_config(self._settings.session)
        if system_prompt is not None:
            session["instructions"] = system_prompt
        if tools:
            session["tools"] = [*session.get("tools", []), *(wire.tool_spec(t) for t in tools)]
        return session

    # ------------------------------------------------------------ connection

    async def _open(
        self,
        *,
        system_prompt: str | None,
        tools: list[ToolSpec],
        messages: Messages,
        restart_config: dict[str, Any],
    ) -> None:
        check_keys(restart_config, (), where="openai_realtime start() restart_config")
        settings = self._settings
        api_key = self._key_in_use = self._api_key()
        self._decoder = wire.Decoder()
        self._gate = wire.ResponseGate()
        self._early = []
        self._session = self._build_session(system_prompt, tools)
        # websockets refuses ssl=None for wss://: pass a context only when one was given.
        tls: dict[str, Any] = {} if settings.ssl is None else {"ssl": settings.ssl}
        try:
            ws = await connect(
                settings.url,
                additional_headers=settings.http_headers(api_key),
                user_agent_header=(
                    f"bidi-openai-realtime/{__version__} websockets/{websockets_version}"
                ),
                compression=None,
                max_size=settings.max_message_size,
                open_timeout=settings.open_timeout,
                close_timeout=2.0,
                proxy=settings.proxy,
                logger=_RedactingLogger(logging.getLogger("bidi_openai_realtime.ws"), [api_key]),
                **tls,
            )
        except InvalidStatus as exc:
            raise self._refused_error(exc) from exc
        except (OSError, TimeoutError, InvalidHandshake) as exc:
            msg = f"Could not connect to OpenAI Realtime at {settings.url}: {exc}"
            raise BidiConnectionError(msg, provider=self.provider, retryable=True) from exc
        self._ws = ws
        try:
            async with asyncio.timeout(settings.open_timeout):
                await self._handshake(ws)
        except TimeoutError as exc:
            msg = (
                f"OpenAI Realtime at {settings.url} did not confirm the session within "
                f"{settings.open_timeout:g} s."
            )
            raise BidiConnectionError(msg, provider=self.provider, retryable=True) from exc
        except ConnectionClosed as exc:
            raise self._closed_error(exc) from exc
        for item in wire.history_items(messages):
            await self._send_json(item)

    def _refused_error(self, exc: InvalidStatus) -> BidiConnectionError:
        """The error for an HTTP status instead of the WebSocket upgrade."""
        status = exc.response.status_code
        said = _http_error_message(exc.response.body)
        reason = f": {self._redact(said)}" if said else ""
        url = self._settings.url
        if status in (401, 403):
            where = (
                "client_config['api_key']"
                if self._settings.api_key
                else f"the {API_KEY_ENV} environment variable"
            )
            msg = (
                f"OpenAI Realtime rejected the API key (HTTP {status}{reason}). Check {where}: "
                "create or copy a key at https://platform.openai.com/api-keys."
            )
            return AuthenticationError(msg, provider=self.provider, code=status)
        msg = f"OpenAI Realtime refused the connection to {url}: HTTP {status}{reason}."
        return BidiConnectionError(
            msg, provider=self.provider, code=status, retryable=status == 429 or status >= 500
        )

    async def _handshake(self, ws: ClientConnection) -> None:
        """Wait for ``session.created``, send ``session.update``, wait for ``session.updated``."""
        created = False
        update_id = wire.event_id()
        while True:
            raw = await ws.recv()
            try:
                event = wire.decode_frame(raw)
            except ValueError:
                self._early.append(raw)
                continue
            kind = event["type"]
            if kind == "error":
                error = event.get("error") or {}
                if error.get("event_id") in (None, update_id):
                    code = error.get("code") or error.get("type")
                    reason = self._redact(str(error.get("message") or "no reason given"))
                    msg = (
                        f"OpenAI Realtime rejected the session: {reason} (code {code!r}, "
                        f"param {error.get('param')!r})."
                    )
                    raise ProviderError(msg, provider=self.provider, code=code)
                self._early.append(raw)
            elif kind == "session.created" and not created:
                created = True
                await self._send_json(wire.session_update(self._session, eid=update_id))
            elif kind == "session.updated" and created:
                return
            else:
                self._early.append(raw)

    def _redact(self, text: str) -> str:
        """*text* without the API key in use (the service may echo it)."""
        key = self._key_in_use
        return text.replace(key, "***") if key and len(key) >= 4 else text

    def _emit(self, event: BidiOutputEvent) -> None:
        if type(event) is BidiErrorEvent and self._key_in_use:
            details = {
                k: self._redact(v) if isinstance(v, str) else v for k, v in event.details.items()
            }
            event = attrs.evolve(event, message=self._redact(event.message), details=details)
        BidiModelBase._emit(self, event)  # not super(): ~50 events a second

    def _closed_error(self, exc: ConnectionClosed) -> Exception:
        rcvd = exc.rcvd
        if rcvd is None:
            return BidiConnectionError(
                "The OpenAI Realtime connection dropped without a close frame.",
                provider=self.provider,
                code=1006,
                retryable=True,
            )
        reason = f": {self._redact(rcvd.reason)}" if rcvd.reason else ""
        if rcvd.code == 1001:
            self._provider_ended()
            return self._timeout_error(
                f"OpenAI Realtime closed the session (1001 going away{reason}); "
                "restart to continue."
            )
        return BidiConnectionError(
            f"OpenAI Realtime closed the connection (code {rcvd.code}{reason}).",
            provider=self.provider,
            code=rcvd.code,
            retryable=rcvd.code in (1000, 1011, 1012, 1013, 1014),
        )

    async def _read(self) -> None:
        ws = self._ws
        assert ws is not None
        gate = self._gate
        early, self._early = self._early, []
        for raw in early:
            if self._handle(raw):
                return
            if gate.wanted:
                await self._flush()
        recv = ws.recv
        handle = self._handle
        while True:
            try:
                raw = await recv()
            except ConnectionClosed as exc:
                raise self._closed_error(exc) from exc
            if handle(raw):
                return
            if gate.wanted:  # only then can a response.create go out (no event id per frame)
                await self._flush()

    def _handle(self, raw: str | bytes) -> bool:
        """Translate one server frame; return True when the session expired."""
        decoded = self._decoder.feed_raw(raw, time.monotonic())
        if decoded.expired is not None:
            self._provider_ended()
            self._fail(self._timeout_error(decoded.expired))
            return True
        gate = self._gate
        if decoded.created is not None:
            gate.created(decoded.created)
        for response_id, call_id in decoded.tool_calls:
            gate.tool_call(response_id, call_id)
        if decoded.done is not None:
            gate.done(decoded.done)
        events = decoded.events
        if decoded.error_event_id is not None:
            retry = decoded.error_code == _ALREADY_ACTIVE
            if gate.failed(decoded.error_event_id, retry=retry) and retry:
                logger.debug("response.create collided with an active response; retrying later")
                events = [e for e in events if not isinstance(e, BidiErrorEvent)]
        emit = self._emit
        for event in events:
            emit(event)
        return False

    async def _flush(self) -> None:
        if not self._gate.wanted:
            return
        eid = wire.event_id()
        if self._gate.take(eid):
            await self._send_json(wire.response_create(eid))

    async def update_tools(self, tools: list[ToolSpec]) -> None:
        """Give the live session a new tool list (``session.update``); ``BidiAgent`` calls
        this when a tool provider's list changes (e.g. an MCP server's)."""
        if self._ws is None:
            return
        configured = list(self._settings.session.get("tools", []))
        session_tools = [*configured, *(wire.tool_spec(t) for t in tools)]
        self._session["tools"] = session_tools
        await self._send_json(wire.session_update({"type": "realtime", "tools": session_tools}))

    async def _send_json(self, event: dict[str, Any]) -> None:
        await self._send_frame(json.dumps(event, separators=(",", ":")))

    async def _send_frame(self, frame: str) -> None:
        ws = self._ws
        if ws is None:
            msg = "The OpenAI Realtime connection is closed."
            raise BidiConnectionError(msg, provider=self.provider)
        try:
            await ws.send(frame)
        except ConnectionClosed as exc:
            raise self._closed_error(exc) from exc

    async def _send(self, event: BidiInputEvent | ToolResultEvent) -> None:
        if isinstance(event, BidiAudioInputEvent):
            await self._send_frame(wire.audio_append_frame(event.audio))
        elif isinstance(event, BidiTextInputEvent):
            await self._send_json(wire.text_item(event.text, event.role))
            if event.role == "user":
                self._gate.want()
                await self._flush()
        elif isinstance(event, BidiImageInputEvent):
            await self._send_json(wire.image_item(event.raw_bytes(), event.mime_type))
        else:
            result = event.tool_result
            await self._send_json(wire.tool_output_item(result))
            self._gate.tool_result(result["toolUseId"])
            await self._flush()

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

    # ------------------------------------------------------------ extras

    async def truncate(self, response_id: str, played_ms: int) -> None:
        """Tell OpenAI only ``played_ms`` of ``response_id``'s audio was heard.

        Sends ``conversation.item.truncate`` for the response's audio item at
        ``played_ms`` clamped to the audio actually received, or
        ``conversation.item.delete`` when nothing (0 ms) was heard, so the model's
        memory matches what the user heard. A response without audio is left alone.

        Raises:
            BidiModelStateError: The model is not started.
        """
        self._require_open("truncate a response")
        plan = self._decoder.truncation(response_id, played_ms)
        if plan is None:
            logger.debug("truncate(%r): no audio item known for that response", response_id)
            return
        if plan.action == "delete":
            await self._send_json(wire.delete_item(plan.item_id))
            self._decoder.forget_audio(response_id)
        else:
            await self._send_json(
                wire.truncate_item(plan.item_id, plan.content_index, plan.audio_end_ms)
            )

    async def commit_audio(self) -> None:
        """Commit the input audio buffer as a user turn (for ``turn_detection: None``).

        With turn detection off the server never ends a user turn by itself;
        this sends ``input_audio_buffer.commit`` and asks for a response. With
        turn detection on it only commits (the server answers by itself).

        Raises:
            BidiModelStateError: The model is not started.
        """
        self._require_open("commit audio")
        await self._send_json(wire.audio_commit())
        audio_in = (self._session.get("audio") or {}).get("input") or {}
        if audio_in.get("turn_detection", {"type": "server_vad"}) is None:
            self._gate.want()
            await self._flush()

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} model_id={self.model_id!r} url={self._settings.url!r} "
            f"state={self.state.value}>"
        )
