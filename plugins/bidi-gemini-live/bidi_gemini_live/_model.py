"""``GeminiLiveModel``: Gemini Live through ``google-genai``'s ``client.aio.live.connect``."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import logging
import os
import ssl
from contextlib import AbstractAsyncContextManager
from typing import Any, ClassVar, Literal
from urllib.parse import urlparse

import attrs
from google import genai
from google.genai import errors as genai_errors
from google.genai import types
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from bidi_core import (
    BidiAudioInputEvent,
    BidiConnectionError,
    BidiErrorEvent,
    BidiImageInputEvent,
    BidiInputEvent,
    BidiModelBase,
    BidiTextInputEvent,
    ConfigError,
    ProviderError,
    ToolResultEvent,
    UnsupportedInputError,
)
from bidi_core._config import (
    check_json,
    check_keys,
    check_model_id,
    check_number,
    check_sample_rate,
    copy_config,
)
from bidi_core.types import Messages, ToolSpec

from . import _clients
from ._credentials import missing_vertex, require_credentials, uses_vertex
from ._hooks import CAPABILITIES, DEFAULT_MODEL_ID
from ._wire import (
    DEFAULT_INPUT_SAMPLE_RATE,
    DEFAULT_OUTPUT_SAMPLE_RATE,
    PROVIDER,
    ServerTranslator,
    audio_mime,
    error_from_close,
    function_declarations,
    function_response,
    history_turns,
    non_blocking_tools,
    redact,
)

__all__ = ["GeminiLiveModel"]

logger = logging.getLogger("bidi_gemini_live")

HistoryMode = Literal["initial_history", "client_content"]

_PROVIDER_KEYS = (
    "allow_insecure_transport",
    "audio",
    "connection_limit_s",
    "context_window_compression",
    "go_away_margin_s",
    "history",
    "inference",
    "input_transcription",
    "open_timeout_s",
    "output_transcription",
    "realtime_input_config",
    "response_modalities",
    "resumption",
)
_AUDIO_KEYS = ("input_sample_rate", "language_code", "output_sample_rate", "voice")
#: ``LiveConnectConfig`` fields the model sets itself from start() arguments or dedicated keys.
_MANAGED_FIELDS = {
    "http_options": "client_config['http_options']",
    "system_instruction": "start(system_prompt=...)",
    "session_resumption": "provider_config['resumption']",
    "response_modalities": "provider_config['response_modalities']",
    "input_audio_transcription": "provider_config['input_transcription']",
    "output_audio_transcription": "provider_config['output_transcription']",
    "realtime_input_config": "provider_config['realtime_input_config']",
    "context_window_compression": "provider_config['context_window_compression']",
    "generation_config": "the top-level inference fields (generation_config is deprecated)",
}
_RESTART_KEYS = ("resumption_handle",)
#: Default proactive limit: restart 30 s before Gemini's ~10 minute connection limit.
DEFAULT_CONNECTION_LIMIT_S = 570.0


def _client_keys() -> list[str]:
    params = inspect.signature(genai.Client.__init__).parameters
    return [name for name in params if name != "self"]


_LOOPBACK = ("127.0.0.1", "localhost", "::1")


class _Key(str):
    """An API key that is itself (for the SDK) but shows as ``'***'`` in any repr."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "'***'"


class _RedactLogs(logging.Filter):
    """Redacts the API keys of open models from the SDK's websockets client logs.

    websockets logs the handshake headers (``x-goog-api-key``) and close reasons at
    DEBUG; google-genai opens the socket itself, so no logger of ours can be handed in.
    """

    def __init__(self) -> None:
        super().__init__()
        self.secrets: dict[str, int] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            text = record.getMessage()
            clean = redact(text, list(self.secrets))
            if clean != text:
                record.msg, record.args = clean, None
        return True


_LOG_FILTER = _RedactLogs()
_WS_LOGGERS = ("websockets.client", "websockets.protocol")


def _check_transport(client_config: dict[str, Any], allow_insecure: bool) -> None:
    """Refuse a plain-text URL to a non-loopback host (Vertex AI API-gateway mode).

    The SDK rewrites every ``base_url`` to ``wss://``, except with ``vertexai=True``, a
    custom ``base_url`` and no project/location, where it uses ``base_url`` verbatim.
    """
    options = client_config.get("http_options")
    base_url = (
        options.get("base_url") if isinstance(options, dict) else getattr(options, "base_url", None)
    )
    if not base_url or not client_config.get("vertexai"):
        return
    if client_config.get("project") and client_config.get("location"):
        return
    parsed = urlparse(str(base_url))
    if parsed.scheme in ("ws", "http") and parsed.hostname not in _LOOPBACK and not allow_insecure:
        msg = (
            f"Refusing the plain-text URL {parsed.scheme}://{parsed.hostname}...: it would send "
            "credentials unencrypted. Use wss:// or https://, or set "
            "provider_config['allow_insecure_transport']=True."
        )
        raise ConfigError(msg)


@functools.cache
def _default_tls(cafile: str | None, capath: str | None) -> ssl.SSLContext:
    """The TLS context google-genai would build for every client, built once.

    Each ``genai.Client`` otherwise loads certifi's CA bundle into fresh contexts
    for httpx and for the websocket (~0.8 MB per live session).
    """
    import certifi  # noqa: PLC0415 - google-genai's own dependency, needed only here

    return ssl.create_default_context(cafile=cafile or certifi.where(), capath=capath)


def _share_tls(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Give the client a process-wide default TLS context where the user set none."""
    options = kwargs.get("http_options")
    if kwargs.get("vertexai") or not isinstance(options, dict | None):
        return kwargs  # Vertex may use a client certificate; HttpOptions objects stay as given
    options = dict(options or {})
    sync_args = dict(options.get("client_args") or {})
    async_args = dict(options.get("async_client_args") or {})
    shared = _default_tls(os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))
    if not sync_args.get("verify") and not async_args.get("verify"):
        sync_args["verify"] = shared  # the SDK uses it for both httpx clients
    async_args.setdefault("ssl", shared)  # the websocket's (and aiohttp's) context
    options["client_args"] = sync_args
    options["async_client_args"] = async_args
    return {**kwargs, "http_options": options}


def _redacted(value: Any, secrets: list[str | None]) -> Any:
    return redact(value, secrets) if isinstance(value, str) else value


def _transcription(value: Any, key: str) -> dict[str, Any] | None:
    if value is True:
        return {}
    if value is False or value is None:
        return None
    if isinstance(value, dict):
        return value
    msg = f"provider_config[{key!r}] must be True, False or a dict, got {value!r}."
    raise ConfigError(msg)


class GeminiLiveModel(BidiModelBase):
    """A Gemini Live connection (``BidiGenerateContent``) as a :class:`bidi_core.BidiModel`.

    Args:
        model_id: The Gemini Live model, e.g. ``"gemini-2.5-flash-native-audio-preview-09-2025"``.
        provider_config: Model behaviour; see the plugin README for every key.
        client_config: Keyword arguments for ``google.genai.Client`` (``api_key``,
            ``vertexai``, ``project``, ``location``, ``credentials``, ``http_options``
            incl. ``base_url`` and ``async_client_args={"ssl": ctx}``), plus
            ``open_timeout`` (seconds ``start()`` may take, default 30; not passed to
            the SDK). Without ``api_key`` the SDK reads ``GOOGLE_API_KEY`` /
            ``GEMINI_API_KEY``.

    Raises:
        ConfigError: An unknown keyword, config key or invalid live-config value.
    """

    provider: ClassVar[str] = PROVIDER

    def __init__(
        self,
        model_id: str = DEFAULT_MODEL_ID,
        provider_config: dict[str, Any] | None = None,
        client_config: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if kwargs:
            check_keys(
                kwargs, ["model_id", "provider_config", "client_config"], where="GeminiLiveModel()"
            )
        check_model_id(model_id, where="gemini_live", example=DEFAULT_MODEL_ID)
        provider_config = copy_config(provider_config if provider_config is not None else {})
        client_config = copy_config(client_config if client_config is not None else {})
        check_keys(provider_config, _PROVIDER_KEYS, where="gemini_live provider_config")
        check_keys(
            client_config, [*_client_keys(), "open_timeout"], where="gemini_live client_config"
        )
        if isinstance(client_config.get("api_key"), str):
            client_config["api_key"] = _Key(client_config["api_key"])
        insecure = provider_config.get("allow_insecure_transport", False)
        if not isinstance(insecure, bool):
            msg = f"provider_config['allow_insecure_transport'] must be a bool (got {insecure!r})."
            raise ConfigError(msg)
        _check_transport(client_config, insecure)
        audio = provider_config.get("audio") or {}
        check_keys(audio, _AUDIO_KEYS, where="gemini_live provider_config['audio']")
        in_rate = check_sample_rate(
            audio.get("input_sample_rate", DEFAULT_INPUT_SAMPLE_RATE),
            where="gemini_live provider_config['audio']['input_sample_rate']",
        )
        out_rate = check_sample_rate(
            audio.get("output_sample_rate", DEFAULT_OUTPUT_SAMPLE_RATE),
            where="gemini_live provider_config['audio']['output_sample_rate']",
        )
        if out_rate != DEFAULT_OUTPUT_SAMPLE_RATE:
            msg = (
                f"'output_sample_rate' must be 24000: Gemini Live speaks 24 kHz (got {out_rate!r})."
            )
            raise ConfigError(msg)
        given = provider_config.get("response_modalities", ["AUDIO"])
        modalities = [str(m).upper() for m in given] if isinstance(given, list | tuple) else []
        if modalities not in (["AUDIO"], ["TEXT"]):
            msg = (
                "'response_modalities' must be ['AUDIO'] or ['TEXT'] (Gemini Live answers in "
                f"one modality), got {provider_config.get('response_modalities')!r}."
            )
            raise ConfigError(msg)
        self._modality = modalities[0]
        self._input_transcription = _transcription(
            provider_config.get("input_transcription", True), "input_transcription"
        )
        self._output_transcription = _transcription(
            provider_config.get("output_transcription", True), "output_transcription"
        )
        history = provider_config.get("history", "initial_history")
        if history not in ("initial_history", "client_content"):
            msg = f"'history' must be 'initial_history' or 'client_content', got {history!r}."
            raise ConfigError(msg)
        self._history_mode: HistoryMode = history
        resumption = provider_config.get("resumption", True)
        if resumption is True:
            resumption = {}
        if resumption is not False and not isinstance(resumption, dict):
            msg = f"'resumption' must be True, False or a dict, got {resumption!r}."
            raise ConfigError(msg)
        if isinstance(resumption, dict):
            check_keys(
                resumption, ("transparent",), where="gemini_live provider_config['resumption']"
            )
        self._resumption: dict[str, Any] | None = resumption if resumption is not False else None
        inference = provider_config.get("inference") or {}
        for key in inference:
            if key in _MANAGED_FIELDS:
                msg = (
                    f"Set {key!r} with {_MANAGED_FIELDS[key]}, not in provider_config['inference']."
                )
                raise ConfigError(msg)
        fields = [f for f in types.LiveConnectConfig.model_fields if f not in _MANAGED_FIELDS]
        check_keys(inference, fields, where="gemini_live provider_config['inference']")
        # NaN would reach the wire (JSON has none); SDK objects are the SDK's to check.
        for key in ("inference", "realtime_input_config", "context_window_compression"):
            check_json(
                provider_config.get(key),
                where=f"gemini_live provider_config[{key!r}]",
                objects_ok=True,
            )
        self._inference: dict[str, Any] = inference
        self._audio = audio
        self._limit: float | None = check_number(
            provider_config.get("connection_limit_s", DEFAULT_CONNECTION_LIMIT_S),
            where="gemini_live provider_config['connection_limit_s']",
            above=0,
            optional=True,
            unit="seconds",
        )
        # client_config['open_timeout'] (shared by every plugin) or the older open_timeout_s.
        self._open_timeout: float | None = check_number(
            client_config.get("open_timeout", provider_config.get("open_timeout_s", 30.0)),
            where="gemini_live client_config['open_timeout']",
            above=0,
            optional=True,
            unit="seconds",
        )
        # How long before a goAway's timeLeft the connection is restarted (0-600 s).
        self._go_away_margin: float = check_number(
            provider_config.get("go_away_margin_s", 2.0),
            where="gemini_live provider_config['go_away_margin_s']",
            minimum=0,
            maximum=600,
            unit="seconds",
        )
        output_modalities: tuple[Any, ...] = (
            ("text",)
            if self._modality == "TEXT"
            else (("text", "audio") if self._output_transcription is not None else ("audio",))
        )
        self.capabilities = attrs.evolve(
            CAPABILITIES,
            input_sample_rates=(in_rate,),
            output_modalities=output_modalities,
        )
        super().__init__(
            model_id=model_id,
            config={"provider_config": provider_config, "client_config": client_config},
        )
        # The base class bounds all of start() by it (a retryable BidiConnectionError).
        self.open_timeout = self._open_timeout
        # Validate the live config now (no I/O), so a bad value fails here, not at start().
        try:
            types.LiveConnectConfig.model_validate(self._live_config(None, [], None, False))
        except ValueError as exc:
            msg = f"Invalid gemini_live provider_config: {exc}"
            raise ConfigError(msg) from exc
        self._client: genai.Client | None = None
        self._connect_cm: AbstractAsyncContextManager[Any] | None = None
        self._session: Any = None
        self._translator: ServerTranslator | None = None
        self._handle: str | None = None
        #: Scheduling of each non-blocking tool of the current connection, by name.
        self._non_blocking: dict[str, str] = {}
        self._go_away_timer: asyncio.TimerHandle | None = None
        self._go_away_left: float | None = None

    # ------------------------------------------------------------- settings

    def connection_limit_s(self) -> float | None:
        """Seconds before ``receive()`` raises a proactive timeout (``goAway`` may come first)."""
        return None if self._limit is None else float(self._limit)

    def input_sample_rate(self) -> int:
        """The PCM rate audio is sent at (stated in the mime type)."""
        return self.capabilities.input_sample_rates[0]

    def _restart_config(self) -> dict[str, Any]:
        handle = self._handle
        return {"resumption_handle": handle} if handle else {}

    def _secrets(self) -> list[str | None]:
        key = self.config["client_config"].get("api_key")
        return [key if isinstance(key, str) else None]

    def _live_config(
        self,
        system_prompt: str | None,
        tools: list[ToolSpec],
        handle: str | None,
        initial_history: bool,
    ) -> dict[str, Any]:
        """Return the ``LiveConnectConfig`` fields (snake_case) for one connection."""
        cfg: dict[str, Any] = copy_config(self._inference)
        cfg["response_modalities"] = [self._modality]
        voice = self._audio.get("voice")
        language = self._audio.get("language_code")
        if voice or language:
            speech: dict[str, Any] = dict(cfg.get("speech_config") or {})
            if voice:
                speech["voice_config"] = {"prebuilt_voice_config": {"voice_name": voice}}
            if language:
                speech["language_code"] = language
            cfg["speech_config"] = speech
        if self._input_transcription is not None:
            cfg["input_audio_transcription"] = dict(self._input_transcription)
        if self._output_transcription is not None and self._modality == "AUDIO":
            cfg["output_audio_transcription"] = dict(self._output_transcription)
        provider_config = self.config["provider_config"]
        for key in ("realtime_input_config", "context_window_compression"):
            if provider_config.get(key) is not None:
                cfg[key] = copy_config(provider_config[key])
        if system_prompt:
            cfg["system_instruction"] = system_prompt
        declarations = function_declarations(tools)
        extra_tools = list(cfg.pop("tools", None) or [])
        all_tools = (
            [{"function_declarations": declarations}] if declarations else []
        ) + extra_tools
        if all_tools:
            cfg["tools"] = all_tools
        if self._resumption is not None:
            # Never ``handle: null``: no handle key at all on a first connection.
            cfg["session_resumption"] = {
                **self._resumption,
                **({"handle": handle} if handle else {}),
            }
        if initial_history:
            cfg["history_config"] = {"initial_history_in_client_content": True}
        return cfg

    def _client_kwargs(self) -> dict[str, Any]:
        # A shallow copy: live objects (SSLContext, credentials) stay shared.
        kwargs = dict(self.config["client_config"])
        kwargs.pop("open_timeout", None)  # ours, not google.genai.Client's
        if isinstance(kwargs.get("api_key"), str):
            kwargs["api_key"] = str.__str__(kwargs["api_key"])  # a plain str for the SDK
        return _share_tls(kwargs)

    # ---------------------------------------------------------------- errors

    def _scrub(self, exc: BaseException) -> None:
        """Redact the API key from an SDK exception we chain (tracebacks print it)."""
        secrets = self._secrets()
        exc.args = tuple(redact(a, secrets) if isinstance(a, str) else a for a in exc.args)
        for name in ("message", "details"):
            value = getattr(exc, name, None)
            if isinstance(value, str):
                setattr(exc, name, redact(value, secrets))
            elif isinstance(value, dict):
                setattr(exc, name, {k: _redacted(v, secrets) for k, v in value.items()})

    def _api_error(self, exc: genai_errors.APIError) -> ProviderError:
        self._scrub(exc)
        reason = exc.details if isinstance(exc.details, str) else (exc.message or "")
        err = error_from_close(exc.code, redact(str(reason), self._secrets()))
        return err

    def _closed_error(self, exc: ConnectionClosed) -> ProviderError:
        frame = exc.rcvd
        if frame is None:
            return error_from_close(1006, None)
        return error_from_close(frame.code, redact(frame.reason, self._secrets()))

    # ------------------------------------------------------------- lifecycle

    async def _open(
        self,
        *,
        system_prompt: str | None,
        tools: list[ToolSpec],
        messages: Messages,
        restart_config: dict[str, Any],
    ) -> None:
        check_keys(restart_config, _RESTART_KEYS, where="gemini_live start() restart_config")
        handle = restart_config.get("resumption_handle") if self._resumption is not None else None
        if handle is not None and not isinstance(handle, str):
            msg = f"'resumption_handle' must be a string, got {type(handle).__name__}."
            raise ConfigError(msg)
        # With a handle the server restores the session: no history. Without one, re-seed text.
        turns = [] if handle else history_turns(messages)
        initial_history = bool(turns) and self._history_mode == "initial_history"
        config = types.LiveConnectConfig.model_validate(
            self._live_config(system_prompt, tools, handle, initial_history)
        )
        self._handle = handle
        self._go_away_left = None
        self._non_blocking = non_blocking_tools(tools)
        self._translator = ServerTranslator(
            output_sample_rate=self.capabilities.output_sample_rate,
            text_transcript=self._modality == "TEXT" or self._output_transcription is None,
        )
        require_credentials(self.config["client_config"])
        self._watch_logs(True)
        try:
            self._client = _clients.acquire(self._client_kwargs())
        except ValueError as exc:  # e.g. Vertex AI without a project
            msg = redact(f"Cannot create the google-genai client: {exc}", self._secrets())
            if "Project or API key" in str(exc):
                raise missing_vertex(msg) from exc
            raise ConfigError(msg) from exc
        except Exception as exc:
            if type(exc).__name__ == "DefaultCredentialsError":  # google.auth, for Vertex AI
                problem = f"No Google Cloud credentials for Vertex AI: {exc}"
                raise missing_vertex(problem) from exc
            raise
        cm = self._client.aio.live.connect(model=self.model_id, config=config)
        try:
            async with asyncio.timeout(self._open_timeout):
                self._session = await cm.__aenter__()
        except genai_errors.APIError as exc:
            raise self._api_error(exc) from exc
        except ConnectionClosed as exc:  # closed during the setup (e.g. a rejected key)
            raise self._closed_error(exc) from exc
        except ValueError as exc:  # the SDK refused the config (e.g. a Vertex-only field)
            msg = redact(f"google-genai refused the live config: {exc}", self._secrets())
            raise ConfigError(msg) from exc
        except TimeoutError as exc:
            msg = (
                f"Gemini Live did not complete the setup within {self._open_timeout:g} s "
                "(open_timeout). Retry; if the network is slow, raise "
                "client_config['open_timeout']."
            )
            raise BidiConnectionError(msg, provider=PROVIDER, retryable=True) from exc
        except (OSError, InvalidHandshake) as exc:
            msg = redact(f"Cannot connect to Gemini Live: {exc}", self._secrets())
            raise BidiConnectionError(msg, provider=PROVIDER, retryable=True) from exc
        self._connect_cm = cm
        if turns:
            try:
                await self._session.send_client_content(
                    turns=turns, turn_complete=self._history_mode == "initial_history"
                )
            except ConnectionClosed as exc:
                raise self._closed_error(exc) from exc

    async def _read(self) -> None:
        session = self._session
        translator = self._translator
        assert session is not None
        assert translator is not None
        while True:
            try:
                # receive() ends at every turnComplete: loop it for the connection's life.
                async for message in session.receive():
                    for event in translator.feed(message):
                        self._emit(event)
                    if translator.handle:
                        self._handle = translator.handle
                    if self._after_message(translator):
                        return
            except genai_errors.APIError as exc:
                if not isinstance(exc.details, dict):
                    raise self._api_error(exc) from exc
                # A JSON error status frame: the socket is still open, the talk goes on.
                self._scrub(exc)
                details = {k: v for k, v in exc.details.items() if isinstance(v, str | int)}
                self._emit(
                    BidiErrorEvent(
                        message=redact(str(exc.message or exc), self._secrets()),
                        code=str(exc.status or exc.code),
                        recoverable=True,
                        details=details,
                    )
                )
            except (ValueError, TypeError, AttributeError) as exc:
                # Not JSON, or not a LiveServerMessage (the SDK raises TypeError or
                # AttributeError for JSON that is not an object): skip the frame.
                text = redact(str(exc), self._secrets())
                self._emit(
                    BidiErrorEvent(
                        message="Gemini Live sent a frame that could not be read; it was skipped.",
                        code="malformed_frame",
                        recoverable=True,
                        details={"error": text[:300]},
                    )
                )

    def _after_message(self, translator: ServerTranslator) -> bool:
        """Handle ``goAway``; return True once the proactive timeout was raised."""
        if translator.go_away is None:
            return False
        if self._go_away_left is None:
            self._go_away_left = translator.go_away
            if translator.response_active:
                # Let the current answer finish (and a fresher handle arrive) if time allows.
                delay = max(0.0, translator.go_away - self._go_away_margin)
                self._go_away_timer = asyncio.get_running_loop().call_later(
                    delay, self._raise_go_away
                )
                return False
        elif translator.response_active:
            return False
        self._raise_go_away()
        return True

    def _raise_go_away(self) -> None:
        if self._go_away_timer is not None:
            self._go_away_timer.cancel()
            self._go_away_timer = None
        left = self._go_away_left or 0.0
        how = "with its session resumption handle" if self._handle else "with the history"
        self._fail(
            self._timeout_error(
                f"Gemini Live is ending the connection (goAway, {left:g} s left); "
                f"restart {how} to continue."
            )
        )

    async def _send(self, event: BidiInputEvent | ToolResultEvent) -> None:
        session = self._session
        translator = self._translator
        assert session is not None
        assert translator is not None
        try:
            if isinstance(event, BidiTextInputEvent):
                # Mid-session text goes as realtime input (clientContent is for history only).
                await session.send_realtime_input(text=event.text)
            elif isinstance(event, BidiAudioInputEvent):
                blob = types.Blob(data=event.audio, mime_type=audio_mime(event.sample_rate))
                await session.send_realtime_input(audio=blob)
            elif isinstance(event, BidiImageInputEvent):
                blob = types.Blob(data=event.raw_bytes(), mime_type=event.mime_type)
                await session.send_realtime_input(video=blob)
            else:
                await self._send_tool_result(event, session, translator)
        except ConnectionClosed as exc:
            raise self._closed_error(exc) from exc

    async def _send_tool_result(
        self, event: ToolResultEvent, session: Any, translator: ServerTranslator
    ) -> None:
        result = event.tool_result
        call_id = result["toolUseId"]
        if call_id in translator.cancelled:
            logger.debug("Dropping the result of cancelled Gemini tool call %s", call_id)
            return
        progress = bool(result.get("progress"))
        names = translator.tool_names
        name = names.get(call_id) if progress else names.pop(call_id, None)
        if name is None:
            msg = (
                f"gemini_live has no pending tool call with toolUseId {call_id!r} on this "
                "connection (results of calls from an earlier connection cannot be sent)."
            )
            raise UnsupportedInputError(msg)
        scheduling = self._non_blocking.get(name)
        if progress and (
            scheduling is None or uses_vertex(self.config["client_config"].get("vertexai"))
        ):
            # Blocking calls take one response; Vertex AI refuses will_continue.
            logger.debug("Dropping a progress update of Gemini tool call %s", call_id)
            return
        response = types.FunctionResponse(**function_response(result, name, scheduling=scheduling))
        await session.send_tool_response(function_responses=[response])

    def _watch_logs(self, on: bool) -> None:
        key = self.config["client_config"].get("api_key")
        if not isinstance(key, str) or not key:
            return
        key = str.__str__(key)
        counts = _LOG_FILTER.secrets
        if on:
            if not counts:
                for name in _WS_LOGGERS:
                    logging.getLogger(name).addFilter(_LOG_FILTER)
            counts[key] = counts.get(key, 0) + 1
            self._logs_watched = True
        elif getattr(self, "_logs_watched", False):
            self._logs_watched = False
            counts[key] -= 1
            if counts[key] <= 0:
                del counts[key]
            if not counts:
                for name in _WS_LOGGERS:
                    logging.getLogger(name).removeFilter(_LOG_FILTER)

    async def _close(self, *, graceful: bool) -> None:
        if not graceful:
            self._watch_logs(False)
        if self._go_away_timer is not None:
            self._go_away_timer.cancel()
            self._go_away_timer = None
        session = self._session
        if graceful:
            if session is not None:
                await session.close()
            return
        if session is not None:
            ws = getattr(session, "_ws", None)  # the SDK's websockets connection
            transport = getattr(ws, "transport", None)
            if transport is not None and ws is not None and ws.close_code is None:
                transport.abort()  # release now: never wait on the network here
        cm, self._connect_cm, self._session = self._connect_cm, None, None
        if cm is not None:
            with contextlib.suppress(Exception):
                await cm.__aexit__(None, None, None)
        client, self._client = self._client, None
        if client is not None:
            await _clients.release(client)
