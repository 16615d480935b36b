"""``NovaSonicModel``: Amazon Nova Sonic over Bedrock's bidirectional HTTP/2 event stream."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import re
import time
import uuid
from collections.abc import Callable
from typing import Any, ClassVar, Literal

import attrs
import botocore.exceptions
from aws_sdk_bedrock_runtime.client import (  # type: ignore[import-untyped]
    AsyncBedrockRuntimeClient,
)
from aws_sdk_bedrock_runtime.config import (  # type: ignore[import-untyped]
    AsyncBedrockRuntimeConfig,
)
from aws_sdk_bedrock_runtime.models import (  # type: ignore[import-untyped]
    BidirectionalInputPayloadPart,
    InternalServerException,
    InvokeModelWithBidirectionalStreamInputChunk,
    InvokeModelWithBidirectionalStreamOperationInput,
    InvokeModelWithBidirectionalStreamOutputChunk,
    ModelStreamErrorException,
    ModelTimeoutException,
    ServiceUnavailableException,
    ThrottlingException,
    ValidationException,
)
from smithy_core.exceptions import CallError, SmithyError

from bidi_core import (
    BidiConnectionError,
    BidiModelBase,
    ProviderError,
    ProviderProtocolError,
    UnsupportedInputError,
)
from bidi_core._config import check_keys, check_number, copy_config
from bidi_core.events import (
    BidiAudioInputEvent,
    BidiErrorEvent,
    BidiInputEvent,
    BidiOutputEvent,
    BidiResponseCompleteEvent,
    BidiTextInputEvent,
    BidiTranscriptStreamEvent,
    ToolResultEvent,
)
from bidi_core.types import Message, Messages, ToolSpec

from . import _wire as wire
from ._settings import (
    CLIENT_KEYS,
    DEFAULT_MODEL_ID,
    NovaSettings,
    capabilities_for,
    parse_settings,
    resolve_target,
)
from ._transport import (
    NoCredentialsError,
    NovaCRTHTTPClient,
    SessionCredentialsResolver,
    auth_error,
    default_session,
    harmless_crt_error,
    missing_credentials,
)

__all__ = ["NovaSonicModel"]

logger = logging.getLogger("bidi_nova_sonic")

#: ValidationException messages Bedrock uses for an idle stream (a timeout, not a bug).
_IDLE_RE = re.compile(r"timed out waiting for input|InternalErrorCode\s*=\s*531", re.IGNORECASE)
#: Stream exceptions after which a new stream with the conversation so far can continue.
_RECOVERABLE = (
    ValidationException,
    ModelStreamErrorException,
    InternalServerException,
    ServiceUnavailableException,
    ThrottlingException,
)
_BACKOFF = (ThrottlingException, ServiceUnavailableException)
_OPEN_TIMEOUT = 30.0
_CLOSE_WAIT = 2.0
#: Seconds audio is held for an ended stream whose reader has not seen the end yet.
_HOLD_LIMIT_S = 5.0
#: Seconds one input event may take to be taken by the stream before it counts as stalled.
_WRITE_STALL_S = 10.0


class _WriteStalled(Exception):  # noqa: N818 - internal control flow, not an error type
    """The request body took no input for ``_WRITE_STALL_S`` (HTTP/2 flow control stuck)."""


def _identity_secrets(resolver: SessionCredentialsResolver) -> list[str]:
    identity = getattr(resolver, "_identity", None)
    values = [
        getattr(identity, "secret_access_key", None),
        getattr(identity, "session_token", None),
    ]
    return [v for v in values if isinstance(v, str) and len(v) >= 8]


def _redact(text: str, secrets: Any) -> str:
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


class _RedactLogs(logging.Filter):
    """Redacts the secret key and session token of open streams from the SDK's logs.

    smithy logs each request (with the ``x-amz-security-token`` header) and raw
    stream events (whose exception messages may echo credentials) at DEBUG.
    """

    def __init__(self) -> None:
        super().__init__()
        self.resolvers: dict[SessionCredentialsResolver, None] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        secrets = [v for r in list(self.resolvers) for v in _identity_secrets(r)]
        if secrets:
            text = record.getMessage()
            clean = _redact(text, secrets)
            if clean != text:
                record.msg, record.args = clean, None
        return True


_LOG_FILTER = _RedactLogs()
_SDK_LOGGERS = (
    "smithy_core",
    "smithy_http",
    "smithy_aws_core",
    "smithy_aws_event_stream",
    "aws_sdk_bedrock_runtime",
    "aws_sdk_signers",
    "botocore",
)


def _sdk_loggers() -> list[logging.Logger]:
    """The SDK's loggers and their children (a filter does not reach child loggers)."""
    names = [
        name
        for name in list(logging.Logger.manager.loggerDict)
        if name.partition(".")[0] in _SDK_LOGGERS
    ]
    return [logging.getLogger(name) for name in {*names, *_SDK_LOGGERS}]


def _watch(resolver: SessionCredentialsResolver, on: bool) -> None:
    resolvers = _LOG_FILTER.resolvers
    if on:
        resolvers[resolver] = None
        for logger_ in _sdk_loggers():  # again each time: the SDK creates loggers lazily
            if _LOG_FILTER not in logger_.filters:
                logger_.addFilter(_LOG_FILTER)
    elif resolver in resolvers:
        del resolvers[resolver]
        if not resolvers:
            for logger_ in _sdk_loggers():
                logger_.removeFilter(_LOG_FILTER)


class _Stream:
    """One Bedrock bidirectional stream (one connection) and its bookkeeping."""

    def __init__(
        self,
        *,
        client: AsyncBedrockRuntimeClient,
        transport: NovaCRTHTTPClient,
        resolver: SessionCredentialsResolver,
        output_rate: int,
        on_written: Callable[[bytes], None],
    ) -> None:
        self.client = client
        self.transport = transport
        transport.on_take = self._taken
        self.on_written = on_written
        #: Per event handed to the publisher and not yet taken by awscrt's writer, in
        #: order: its audio (b"" for other events).
        self.in_flight: collections.deque[bytes] = collections.deque()
        #: The audio of the events the writer took last (their write may not be done).
        self.writing: list[bytes] = []
        #: Audio held back because the HTTP/2 stream had already ended.
        self.held: list[bytes] = []
        self.resolver = resolver
        self.duplex: Any = None
        self.receiver: Any = None
        self.prompt_name = str(uuid.uuid4())
        self.audio_content: str | None = None
        self.translator = wire.OutputTranslator(output_rate=output_rate)
        self.session_ended = False
        #: How the service ended the stream (a time limit, a recoverable error, or a
        #: failure), or None while it is live.
        self.ended_by: Literal["timeout", "recover", "failed"] | None = None
        self.end_message = ""
        #: Since when audio is held back (awscrt knows the stream ended before the
        #: reader has read the service's exception).
        self.held_since: float | None = None
        self.released = False

    @property
    def service_ended(self) -> bool:
        """Whether the service ended the stream with an exception.

        Bedrock ends the stream after one, and awscrt may never complete a write to a
        stream reset under it: nothing is written into it any more.
        """
        return self.ended_by is not None

    async def send(self, event: wire.NovaEvent, *, audio: bytes = b"") -> None:
        """Write one event; *audio* is the pcm it carries (told to ``on_written`` later)."""
        chunk = InvokeModelWithBidirectionalStreamInputChunk(
            value=BidirectionalInputPayloadPart(bytes_=wire.encode_chunk(event))
        )
        self.in_flight.append(audio)
        try:
            async with asyncio.timeout(_WRITE_STALL_S):
                await self.duplex.input_stream.send(chunk)
        except BaseException as exc:
            # The publisher writes last, after everything that can fail: not queued.
            self.in_flight.pop()
            if isinstance(exc, TimeoutError):
                raise _WriteStalled from exc
            raise

    def _taken(self, count: int) -> None:
        """awscrt's writer took *count* more events, so the ones it took before are written."""
        done = self.writing
        queue = self.in_flight
        self.writing = [queue.popleft() for _ in range(min(count, len(queue)))]
        if self.ended_by is None and not self.released:
            for pcm in done:
                if pcm:
                    self.on_written(pcm)

    def unsent(self) -> list[bytes]:
        """The audio no write of this stream completed for, oldest first."""
        return [pcm for pcm in (*self.writing, *self.in_flight, *self.held) if pcm]

    async def abandon_input(self) -> None:
        """Close the request body at once: a writer blocked on a full buffer fails now."""
        body = self.transport.request_body
        if body is not None and not getattr(body, "closed", True):
            with contextlib.suppress(Exception):
                await body.close(flush=False)

    async def release(self) -> None:
        """Close everything without waiting on the network (idempotent)."""
        if self.released:
            return
        self.released = True
        _watch(self.resolver, False)
        body = self.transport.request_body
        if body is not None and not getattr(body, "closed", True):
            with contextlib.suppress(Exception):
                await body.close(flush=False)  # unblocks writers of a dead stream
        with contextlib.suppress(Exception):
            await self.client.close()  # closes the HTTP/2 connection
        await self.transport.wait_stream_done(_CLOSE_WAIT)
        if self.receiver is not None:
            with contextlib.suppress(Exception):
                await self.receiver.close()


def _exception_name(exc: BaseException) -> str:
    return type(exc).__name__


class NovaSonicModel(BidiModelBase):
    """Amazon Nova Sonic (v1 and Nova 2 Sonic) through ``aws_sdk_bedrock_runtime``.

    Args:
        model_id: ``"amazon.nova-sonic-v1:0"`` (default) or ``"amazon.nova-2-sonic-v1:0"``
            (or an inference profile / ARN of either).
        provider_config: Model behaviour; see the plugin README (``audio``, ``inference``,
            ``turn_detection``, ``history``, ``connection_limit_s``,
            ``max_error_recoveries``, ``session``, ``prompt``).
        client_config: ``boto_session`` or ``region`` (not both), ``endpoint_uri``,
            ``ca_bundle``, ``open_timeout`` (seconds ``start()`` and a reconnection may
            take, default 30; None: no bound). The boto3 session is kept by reference;
            credentials are asked from it for every connection.

    Raises:
        ConfigError: An unknown keyword or config key, or an invalid value.
    """

    provider: ClassVar[str] = "nova_sonic"
    #: awscrt writes from the SDK's 16-event buffer: send() returning is not sent.
    remembers_written_audio: ClassVar[bool] = True

    def __init__(
        self,
        model_id: str = DEFAULT_MODEL_ID,
        provider_config: dict[str, Any] | None = None,
        client_config: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if kwargs:
            check_keys(
                kwargs, ["model_id", "provider_config", "client_config"], where="NovaSonicModel()"
            )
        provider = copy_config(provider_config if provider_config is not None else {})
        client = copy_config(client_config if client_config is not None else {})
        check_keys(client, (*CLIENT_KEYS, "open_timeout"), where="nova_sonic client_config")
        # open_timeout is the base class's bound on start() (the key every plugin takes).
        open_timeout = check_number(
            client.get("open_timeout", _OPEN_TIMEOUT),
            where="nova_sonic client_config['open_timeout']",
            above=0,
            optional=True,
            unit="seconds",
        )
        transport = {k: v for k, v in client.items() if k != "open_timeout"}
        self._settings: NovaSettings = parse_settings(model_id, provider, transport)
        self.capabilities = capabilities_for(
            input_rate=self._settings.input_rate, output_rate=self._settings.output_rate
        )
        super().__init__(
            model_id=model_id, config={"provider_config": provider, "client_config": client}
        )
        self.open_timeout = open_timeout
        self.audio_replay_ms = self._settings.replay_ms
        self._session: Any = self._settings.boto_session
        self._stream: _Stream | None = None
        self._ready = asyncio.Event()
        self._send_lock = asyncio.Lock()
        self._system_prompt: str | None = None
        self._tools: list[ToolSpec] = []
        self._conversation: Messages = []
        self._recoveries = 0
        self._closing = False
        self._read_done: asyncio.Event | None = None
        #: Access key ids used by each connection, in order (never secrets; for diagnostics).
        self.access_keys_used: list[str] = []
        self._resolvers: list[SessionCredentialsResolver] = []

    @property
    def settings(self) -> NovaSettings:
        """The validated configuration."""
        return self._settings

    @property
    def conversation(self) -> Messages:
        """The conversation this model has seen (replayed after a recovered stream error)."""
        return list(self._conversation)

    def connection_limit_s(self) -> float | None:
        return self._settings.connection_limit_s

    def input_sample_rate(self) -> int:
        return self._settings.input_rate

    # ---------------------------------------------------------------- connect

    def _boto_session(self) -> Any:
        if self._session is None:
            try:
                self._session = default_session(self._settings.region)
            except botocore.exceptions.BotoCoreError as exc:  # e.g. AWS_PROFILE not found
                problem = f"{exc}."
                raise missing_credentials(problem) from exc
        return self._session

    async def _prime(self, resolver: SessionCredentialsResolver) -> None:
        """Resolve the credentials before the stream opens.

        The SDK resolves them inside a task of its own and, when that fails, never
        hands the failure back: the open waited for ``open_timeout`` and blamed the
        network. Resolved here, the identity is cached for the SDK's request.
        """
        try:
            await resolver.resolve()
        except NoCredentialsError as exc:
            problem = "No AWS credentials were found."
            raise missing_credentials(problem) from exc
        except botocore.exceptions.BotoCoreError as exc:  # SSO expired, bad profile, ...
            msg = f"The AWS credentials could not be loaded ({type(exc).__name__}: {exc})."
            raise missing_credentials(msg) from exc

    async def _connect(self, messages: Messages) -> _Stream:
        settings = self._settings
        session = self._boto_session()
        target = resolve_target(settings, getattr(session, "region_name", None))
        resolver = SessionCredentialsResolver(session)
        self._resolvers.append(resolver)
        _watch(resolver, True)
        try:
            await self._prime(resolver)
        except BaseException:
            _watch(resolver, False)
            raise
        transport = NovaCRTHTTPClient(target.ca_bundle)
        try:
            config = await AsyncBedrockRuntimeConfig.resolve(
                endpoint_uri=target.endpoint,
                region=target.region,
                aws_credentials_identity_resolver=resolver,
                transport=transport,
            )
        except Exception as exc:
            _watch(resolver, False)
            with contextlib.suppress(Exception):
                await transport.close()
            msg = f"Could not configure the Bedrock client for Nova Sonic: {exc}"
            raise BidiConnectionError(msg, provider=self.provider) from exc
        stream = _Stream(
            client=AsyncBedrockRuntimeClient(config=config),
            transport=transport,
            resolver=resolver,
            output_rate=settings.output_rate,
            on_written=self._remember_audio,
        )
        try:
            await self._open_stream(stream, messages)
        except BaseException:
            await stream.release()
            raise
        self.access_keys_used.extend(resolver.resolved_access_keys)
        return stream

    async def _open_stream(self, stream: _Stream, messages: Messages) -> None:
        settings = self._settings
        try:
            stream.duplex = await stream.client.invoke_model_with_bidirectional_stream(
                InvokeModelWithBidirectionalStreamOperationInput(model_id=self.model_id)
            )
        except NoCredentialsError as exc:
            raise BidiConnectionError(str(exc), provider=self.provider) from exc
        except Exception as exc:
            raise self._connect_error(exc) from exc

        async def setup() -> None:
            await stream.send(wire.session_start(settings))
            await stream.send(wire.prompt_start(stream.prompt_name, settings, self._tools))
            if self._system_prompt:
                for event in wire.text_content(
                    stream.prompt_name,
                    str(uuid.uuid4()),
                    "SYSTEM",
                    self._system_prompt,
                    interactive=False,
                ):
                    await stream.send(event)
            for role, text in wire.trim_history(messages, settings.history):
                for event in wire.text_content(
                    stream.prompt_name, str(uuid.uuid4()), role, text, interactive=False
                ):
                    await stream.send(event)

        sender = asyncio.create_task(setup(), name="nova_sonic-setup")
        output = asyncio.create_task(stream.duplex.await_output(), name="nova_sonic-output")
        try:
            async with asyncio.timeout(self.open_timeout):
                done, _ = await asyncio.wait({sender, output}, return_when=asyncio.FIRST_EXCEPTION)
                if output in done and output.exception() is not None:
                    raise output.exception()  # type: ignore[misc]
                await sender
                _, stream.receiver = await output
        except TimeoutError as exc:
            msg = (
                f"Nova Sonic did not answer within {self.open_timeout:g} s (open_timeout; "
                f"{stream.transport!r}). Retry; if the network is slow, raise "
                "client_config['open_timeout']."
            )
            raise BidiConnectionError(msg, provider=self.provider, retryable=True) from exc
        except NoCredentialsError as exc:
            raise BidiConnectionError(str(exc), provider=self.provider) from exc
        except ProviderError:
            raise
        except Exception as exc:
            raise self._connect_error(exc) from exc
        finally:
            for task in (sender, output):
                if not task.done():
                    task.cancel()
                    with contextlib.suppress(BaseException):
                        await task
                elif not task.cancelled():
                    task.exception()

    def _connect_error(self, exc: BaseException) -> ProviderError:
        cause = exc.__cause__ if isinstance(exc, OSError) and exc.__cause__ else exc
        rejected = auth_error(cause, self.provider)
        if rejected is not None:
            return rejected
        code = _exception_name(cause) if isinstance(cause, CallError) else None
        retryable = not isinstance(cause, CallError) or bool(
            getattr(cause, "is_retry_safe", False) or isinstance(cause, _BACKOFF)
        )
        msg = f"Could not open the Nova Sonic stream ({_exception_name(cause)}: {cause})."
        return BidiConnectionError(msg, provider=self.provider, code=code, retryable=retryable)

    # -------------------------------------------------------------- lifecycle

    async def _open(
        self,
        *,
        system_prompt: str | None,
        tools: list[ToolSpec],
        messages: Messages,
        restart_config: dict[str, Any],
    ) -> None:
        check_keys(restart_config, (), where="nova_sonic start() restart_config")
        self._system_prompt = system_prompt
        self._tools = list(tools)
        self._conversation = list(messages)
        self._recoveries = 0
        self._closing = False
        self._ready.clear()
        self._read_done = asyncio.Event()
        try:
            self._stream = await self._connect(messages)
        except Exception as exc:
            self._scrub(exc)
            raise
        self._ready.set()

    async def _replay_on(self, stream: _Stream, replay: list[bytes]) -> None:
        """Send the audio the previous stream may have dropped, before any new input."""
        rate = self._settings.input_rate
        try:
            for pcm in self._replay_pieces(replay):
                await self._send_on(stream, BidiAudioInputEvent(audio=pcm, sample_rate=rate))
        except (OSError, SmithyError, _WriteStalled) as exc:
            await stream.release()
            raise self._connect_error(exc) from exc

    async def _service_ended(
        self, stream: _Stream, how: Literal["timeout", "recover", "failed"], message: str = ""
    ) -> None:
        """The service ended *stream*: keep its last audio, stop every writer, end the turn."""
        stream.ended_by = how
        stream.end_message = message
        if how != "failed":
            self._provider_ended(since=stream.transport.finished_at, unsent=stream.unsent())
        if how == "recover":
            self._ready.clear()  # senders wait for the new stream
        await stream.abandon_input()
        if how != "failed":
            self._end_response(stream)

    async def _read(self) -> None:
        done = self._read_done
        try:
            stream = self._stream
            # Read even if stop() began before this task first ran: its graceful close
            # waits for the service to end the response, which says every event written
            # before sessionEnd was taken (returning at once let stop() drop them).
            while stream is not None:
                try:
                    await self._pump(stream)
                    return
                except _Recover as recover:
                    await self._recover(stream, recover.error)
                if self._closing:
                    return
                stream = self._stream
        finally:
            self._ready.set()  # no new stream is coming: waiting senders must not hang
            if done is not None:
                done.set()

    async def _pump(self, stream: _Stream) -> None:
        receiver = stream.receiver
        while True:
            try:
                item = await receiver.receive()
            except ModelTimeoutException as exc:
                msg = f"Nova Sonic stream timed out: {exc.message}"
                await self._service_ended(stream, "timeout", msg)
                raise self._timeout_error(msg) from exc
            except ValidationException as exc:
                if _IDLE_RE.search(exc.message or ""):
                    msg = f"Nova Sonic closed the idle stream: {exc.message}"
                    await self._service_ended(stream, "timeout", msg)
                    raise self._timeout_error(msg) from exc
                await self._service_ended(stream, "recover")
                raise _Recover(exc) from exc
            except _RECOVERABLE as exc:
                await self._service_ended(stream, "recover")
                raise _Recover(exc) from exc
            except CallError as exc:
                await self._service_ended(stream, "failed")
                if self._closing:
                    return
                msg = f"Nova Sonic stream failed ({_exception_name(exc)}: {exc.message})."
                raise BidiConnectionError(
                    msg, provider=self.provider, code=_exception_name(exc)
                ) from exc
            except (SmithyError, OSError) as exc:
                if self._closing:
                    return
                crt_error = stream.transport.stream_error()
                if crt_error is not None and not harmless_crt_error(crt_error):
                    msg = f"The Nova Sonic connection broke ({crt_error})."
                    raise BidiConnectionError(msg, provider=self.provider, retryable=True) from exc
                msg = f"Nova Sonic sent an event stream frame that cannot be decoded ({exc})."
                raise ProviderProtocolError(
                    msg, provider=self.provider, code="malformed_frame"
                ) from exc
            if item is None:
                if self._closing or stream.session_ended:
                    return
                crt_error = stream.transport.stream_error()
                detail = f" ({crt_error})" if crt_error is not None else ""
                msg = f"The Nova Sonic stream ended unexpectedly{detail}."
                raise BidiConnectionError(msg, provider=self.provider, retryable=True)
            if not isinstance(item, InvokeModelWithBidirectionalStreamOutputChunk):
                logger.debug("Ignoring unknown Nova output variant %r.", item)
                continue
            try:
                event = wire.decode_chunk(item.value.bytes_ or b"")
            except ValueError as exc:
                self._emit(
                    BidiErrorEvent(
                        message=f"Nova Sonic sent a non-JSON output event, skipped ({exc}).",
                        code="malformed_event",
                        recoverable=True,
                    )
                )
                continue
            for out in stream.translator.translate(event):
                self._deliver(out)

    def _secret_values(self) -> list[str]:
        values = {v for r in self._resolvers for v in _identity_secrets(r)}
        return sorted(values, key=len, reverse=True)

    def _scrub(self, exc: BaseException | None) -> None:
        """Redact credentials an error (or its chained SDK cause) echoes, in place."""
        secrets = self._secret_values()
        seen: set[int] = set()
        while exc is not None and id(exc) not in seen and secrets:
            seen.add(id(exc))
            exc.args = tuple(_redact(a, secrets) if isinstance(a, str) else a for a in exc.args)
            message = getattr(exc, "message", None)
            if isinstance(message, str):
                with contextlib.suppress(AttributeError):
                    exc.message = _redact(message, secrets)  # type: ignore[attr-defined]
            exc = exc.__cause__ or exc.__context__

    def _emit(self, event: BidiOutputEvent) -> None:
        if isinstance(event, BidiErrorEvent):
            secrets = self._secret_values()
            clean = _redact(event.message, secrets)
            details = {
                k: _redact(v, secrets) if isinstance(v, str) else v
                for k, v in event.details.items()
            }
            if clean != event.message or details != event.details:
                event = attrs.evolve(event, message=clean, details=details)
        super()._emit(event)

    def _fail(self, error: BaseException) -> None:
        self._scrub(error)
        super()._fail(error)

    def _deliver(self, event: BidiOutputEvent) -> None:
        if isinstance(event, BidiTranscriptStreamEvent) and event.is_final and event.text:
            role = "assistant" if event.role == "assistant" else "user"
            self._remember(role, event.text)
        elif isinstance(event, BidiResponseCompleteEvent):
            self._recoveries = 0
        self._emit(event)

    def _remember(self, role: str, text: str) -> None:
        message: Message = {"role": role, "content": [{"text": text}]}  # type: ignore[typeddict-item]
        self._conversation.append(message)
        limit = self._settings.history.max_messages * 2
        if len(self._conversation) > limit:
            del self._conversation[: len(self._conversation) - limit]

    def _end_response(self, stream: _Stream) -> None:
        """A stream error cut a response short: complete it with ``stop_reason="error"``."""
        response_id = stream.translator.abort_response()
        if response_id is not None:
            self._emit(BidiResponseCompleteEvent(response_id=response_id, stop_reason="error"))

    async def _recover(self, stream: _Stream, error: CallError) -> None:
        name = _exception_name(error)
        if self._recoveries >= self._settings.max_error_recoveries:
            msg = (
                f"Nova Sonic stream failed ({name}: {error.message}); gave up after "
                f"{self._recoveries} reconnection(s)."
            )
            raise BidiConnectionError(
                msg, provider=self.provider, code=name, retryable=isinstance(error, _BACKOFF)
            ) from error
        self._recoveries += 1
        self._ready.clear()
        replay = self._take_replay()
        self._emit(
            BidiErrorEvent(
                message=(
                    f"Nova Sonic ended the stream with {name}: {error.message.rstrip('.')}. "
                    "Reconnecting with the conversation so far."
                ),
                code=name,
                recoverable=True,
                details={"exception": name, "reconnect": self._recoveries},
            )
        )
        await stream.release()
        if isinstance(error, _BACKOFF):
            await asyncio.sleep(0.5 * self._recoveries)
        async with self._send_lock:
            if self._closing:
                return
            try:
                new = await self._connect(self._conversation)
            except ProviderError as exc:
                msg = f"Nova Sonic could not reconnect after {name}: {exc.message}"
                raise BidiConnectionError(
                    msg, provider=self.provider, code=name, retryable=True
                ) from exc
            try:
                await self._replay_on(new, replay)
            except ProviderError as exc:
                msg = f"Nova Sonic could not reconnect after {name}: {exc.message}"
                raise BidiConnectionError(
                    msg, provider=self.provider, code=name, retryable=True
                ) from exc
            self._stream = new
            self._ready.set()

    # ------------------------------------------------------------------ input

    async def _send(self, event: BidiInputEvent | ToolResultEvent) -> None:
        if isinstance(event, BidiTextInputEvent) and event.role != "user":
            msg = (
                "Nova Sonic takes the system prompt in start(system_prompt=...); "
                f"mid-session text with role {event.role!r} is not supported."
            )
            raise UnsupportedInputError(msg)
        for attempt in range(2):
            await self._ready.wait()
            stream = self._stream
            if stream is None or self._closing:
                msg = "Cannot send an event: the Nova Sonic connection is closed."
                raise BidiConnectionError(msg, provider=self.provider)
            try:
                async with self._send_lock:
                    if stream is not self._stream:
                        continue
                    if stream.service_ended and self._dead_stream(stream, attempt, None):
                        continue
                    await self._send_on(stream, event)
            except _WriteStalled as exc:
                msg = (
                    f"Nova Sonic took no input for {_WRITE_STALL_S:g} s (the HTTP/2 stream "
                    "stalled); restart the stream to continue."
                )
                await self._service_ended(stream, "timeout", msg)
                error = self._timeout_error(msg)
                self._fail(error)  # receive() raises it too: the agent restarts
                raise error from exc
            except (OSError, SmithyError) as exc:
                if stream.service_ended and self._dead_stream(stream, attempt, exc):
                    continue
                if attempt == 0 and (stream is not self._stream or not self._ready.is_set()):
                    continue  # the stream is being replaced after an error: resend there
                msg = f"Cannot send to Nova Sonic: the stream is closed ({exc})."
                raise BidiConnectionError(msg, provider=self.provider, retryable=True) from exc
            if isinstance(event, BidiTextInputEvent):
                self._remember("user", event.text)
            return

    def _dead_stream(self, stream: _Stream, attempt: int, exc: BaseException | None) -> bool:
        """Input for a stream the service ended: resend on the next one (True) or raise.

        Nothing is written into such a stream (the service drops it). After a time
        limit the caller gets the timeout, so an agent buffers the input and sends it
        after the restart; after a recoverable error it waits for the new stream.
        """
        if stream.ended_by == "timeout":
            raise self._timeout_error(stream.end_message) from exc
        if stream.ended_by == "recover" and attempt == 0:
            return True
        msg = "Cannot send to Nova Sonic: the service ended the stream."
        raise BidiConnectionError(msg, provider=self.provider, retryable=True) from exc

    def _hold(self, stream: _Stream, pcm: bytes) -> None:
        """Hold audio for a stream that already ended until the reader learns why."""
        now = time.monotonic()
        if stream.held_since is None:
            stream.held_since = now
        elif now - stream.held_since > _HOLD_LIMIT_S:
            msg = (
                f"The Nova Sonic stream ended {_HOLD_LIMIT_S:g} s ago and the service has "
                "not said why; restart the model."
            )
            raise BidiConnectionError(msg, provider=self.provider, retryable=True)
        stream.held.append(pcm)

    async def _send_on(self, stream: _Stream, event: BidiInputEvent | ToolResultEvent) -> None:
        prompt = stream.prompt_name
        if isinstance(event, BidiAudioInputEvent):
            if self.audio_replay_ms and stream.transport.stream_finished:
                self._hold(stream, event.audio)
                return
            if stream.audio_content is None:
                name = str(uuid.uuid4())
                await stream.send(wire.audio_content_start(prompt, name, self._settings.input_rate))
                stream.audio_content = name
            await stream.send(
                wire.audio_input(prompt, stream.audio_content, event.audio), audio=event.audio
            )
        elif isinstance(event, BidiTextInputEvent):
            for item in wire.text_content(
                prompt, str(uuid.uuid4()), "USER", event.text, interactive=True
            ):
                await stream.send(item)
        elif isinstance(event, ToolResultEvent):
            for item in wire.tool_result_content(prompt, str(uuid.uuid4()), event.tool_result):
                await stream.send(item)
        else:  # pragma: no cover - images are refused by the capability check
            msg = f"Nova Sonic cannot send {type(event).__name__}."
            raise UnsupportedInputError(msg)

    # ------------------------------------------------------------------ close

    async def _close(self, *, graceful: bool) -> None:
        stream = self._stream
        if graceful:
            self._closing = True
            if stream is not None and stream.duplex is not None:
                await self._shutdown_sequence(stream)
            return
        self._closing = True
        self._ready.clear()
        if stream is not None:
            await stream.release()
        reader = self._reader
        if reader is not None and not reader.done():
            await asyncio.wait([reader], timeout=_CLOSE_WAIT)
        self._stream = None
        self._ready.set()  # wakes senders waiting for a new stream: they see it is closed

    async def _shutdown_sequence(self, stream: _Stream) -> None:
        """contentEnd (audio) -> promptEnd -> sessionEnd -> close the input stream."""
        if stream.service_ended or stream.transport.stream_finished or stream.released:
            return  # the service already ended the stream: nothing can be sent
        try:
            async with self._send_lock:
                prompt = stream.prompt_name
                if stream.audio_content is not None:
                    await stream.send(wire.content_end(prompt, stream.audio_content))
                    stream.audio_content = None
                await stream.send(wire.prompt_end(prompt))
                await stream.send(wire.session_end())
                stream.session_ended = True
                await stream.duplex.input_stream.close()
        except (OSError, SmithyError, _WriteStalled) as exc:
            logger.debug("Nova Sonic shutdown sequence cut short: %r", exc)
            return
        # Let the service finish the response stream so the reader ends by itself.
        done = self._read_done
        if done is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_CLOSE_WAIT):
                    await done.wait()


class _Recover(Exception):  # noqa: N818 - internal control flow, not an error type
    def __init__(self, error: CallError) -> None:
        super().__init__(str(error))
        self.error = error
