"""The Bedrock client plumbing: awscrt HTTP/2 transport, TLS trust, credentials.

Pitfalls handled here (see the plugin README):

* The SDK's default transport (aiohttp) cannot do duplex streaming, so every
  connection uses :class:`NovaCRTHTTPClient`, a ``smithy_http.aio.crt.AWSCRTHTTPClient``
  that forces HTTP/2 (over cleartext or HTTP/1.1 the stream would hang silently).
* awscrt reads neither ``SSL_CERT_FILE`` nor a CA option; ``ca_bundle`` is applied
  with ``TlsContextOptions.override_default_trust_store_from_path``. The SDK
  deep-copies its config (and with it the transport), so ``__deepcopy__`` returns
  the same object instead of a plain client that would lose the trust store.
* When the service ends the HTTP/2 stream first, awscrt's request-body writer task
  fails with ``AWS_ERROR_HTTP_STREAM_HAS_COMPLETED`` after the client closes its
  input. That error is expected and retrieved here (never "Task exception was never
  retrieved"); any other writer error is logged.
* awscrt's body writer takes one chunk per round trip between its thread and the
  event loop (which waits for the GIL when the loop is busy); every event the SDK has
  queued by then goes out joined in one write (:class:`_BatchingBody`), and each take
  is reported (``on_take``) so the model knows which audio has really left.
* Credentials come from the boto3 session through :class:`SessionCredentialsResolver`,
  so no code path builds the SDK's default ``IdentityChain`` (which can probe the
  IMDS / container endpoints on 169.254.x).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from awscrt import io as crt_io  # type: ignore[import-untyped]
from awscrt.exceptions import AwsCrtError  # type: ignore[import-untyped]
from smithy_aws_core.identity import AWSCredentialsIdentity, AWSIdentityProperties
from smithy_http.aio.crt import AWSCRTHTTPClient, AWSCRTHTTPClientConfig, AWSCRTHTTPResponse

from bidi_core import AuthenticationError, MissingCredentialsError

from ._settings import CREDENTIAL_ENVS, REGION_ENVS

__all__ = [
    "AUTH_ERRORS",
    "NoCredentialsError",
    "NovaCRTHTTPClient",
    "SessionCredentialsResolver",
    "auth_error",
    "default_session",
    "harmless_crt_error",
    "missing_credentials",
]

logger = logging.getLogger("bidi_nova_sonic")

_lock = threading.Lock()
_event_loop: Any = None
_tls_contexts: dict[str | None, crt_io.ClientTlsContext] = {}
_SOCKET_OPTIONS = crt_io.SocketOptions()

#: awscrt errors that only say the HTTP/2 stream was already over.
_HARMLESS = frozenset(
    {"AWS_ERROR_HTTP_STREAM_HAS_COMPLETED", "AWS_ERROR_HTTP_STREAM_NOT_ACTIVATED"}
)


def missing_credentials(problem: str) -> MissingCredentialsError:
    """The error for credentials boto3 could not find (*problem*), naming what to set."""
    msg = (
        f"{problem} Nova Sonic signs with boto3's credential chain: set AWS_ACCESS_KEY_ID "
        "and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for temporary keys), or "
        "AWS_PROFILE for a profile in ~/.aws/config (run aws sso login for SSO), or pass "
        "client_config={'boto_session': boto3.Session(...)}; set AWS_REGION too."
    )
    return MissingCredentialsError(
        msg, env_vars=(*CREDENTIAL_ENVS, *REGION_ENVS), config_keys=("client_config.boto_session",)
    )


#: Bedrock's errors for credentials it rejects, and what to check for each.
AUTH_ERRORS = {
    "UnrecognizedClientException": (
        "AWS does not know the access key id: check AWS_ACCESS_KEY_ID (or your profile)"
    ),
    "InvalidSignatureException": (
        "the request signature does not match: check AWS_SECRET_ACCESS_KEY (or your profile)"
    ),
    "IncompleteSignatureException": "the request signature is incomplete: check your credentials",
    "ExpiredTokenException": (
        "the session token has expired: refresh your credentials (aws sso login, or new "
        "temporary keys in AWS_SESSION_TOKEN)"
    ),
    "AccessDeniedException": (
        "these credentials may not invoke the model: grant "
        "bedrock:InvokeModelWithBidirectionalStream and enable access to the model in the "
        "Bedrock console (in this region)"
    ),
}


def auth_error(cause: BaseException, provider: str) -> AuthenticationError | None:
    """An :class:`AuthenticationError` if *cause* is Bedrock rejecting the credentials."""
    said = str(getattr(cause, "message", "") or cause)
    kind = next((k for k in AUTH_ERRORS if k in said or k == type(cause).__name__), None)
    if kind is None:
        return None
    msg = f"Bedrock rejected the AWS credentials for Nova Sonic ({kind}): {AUTH_ERRORS[kind]}."
    return AuthenticationError(msg, provider=provider, code=kind)


class NoCredentialsError(Exception):
    """The boto3 session found no AWS credentials."""


#: What decides where a default boto3 session finds credentials and its region.
_SESSION_ENVS = (
    *CREDENTIAL_ENVS,
    *REGION_ENVS,
    "AWS_DEFAULT_PROFILE",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "HOME",
)
_default_sessions: dict[tuple[str | None, tuple[str | None, ...]], Any] = {}


def default_session(region: str | None) -> Any:
    """The boto3 session of models given no ``boto_session``: one per region and environment.

    A boto3 session holds ~100 KiB (botocore's loaders, event hooks and config); the
    models of a process that find their credentials the same way share one, as a
    server keeping one session for all its calls would. Credentials are still asked
    from it for every connection (it refreshes temporary ones). A change of the
    environment variables that decide the credentials gives a new session.
    """
    import boto3  # noqa: PLC0415 - the model module imports it already

    key = (region, tuple(os.environ.get(name) for name in _SESSION_ENVS))
    with _lock:
        session = _default_sessions.get(key)
        if session is None:
            session = _default_sessions[key] = boto3.Session(region_name=region)
        return session


def harmless_crt_error(exc: BaseException | None) -> bool:
    """Whether *exc* is awscrt's expected "stream has completed" error (or wraps it)."""
    while exc is not None:
        if isinstance(exc, AwsCrtError) and exc.name in _HARMLESS:
            return True
        if isinstance(exc, RuntimeError) and any(name in str(exc) for name in _HARMLESS):
            return True  # awscrt sometimes re-raises the same error code as RuntimeError
        exc = exc.__cause__ or exc.__context__
    return False


def _shared_event_loop() -> Any:
    """One awscrt event-loop thread for every connection of the process."""
    global _event_loop  # noqa: PLW0603 - a process-wide awscrt resource, created once
    with _lock:
        if _event_loop is None:
            from smithy_http.aio.crt import _AWSCRTEventLoop  # noqa: PLC0415

            _event_loop = _AWSCRTEventLoop()
        return _event_loop


def _tls_context(ca_bundle: str | None) -> crt_io.ClientTlsContext:
    with _lock:
        ctx = _tls_contexts.get(ca_bundle)
        if ctx is None:
            options = crt_io.TlsContextOptions()
            if ca_bundle is not None:
                options.override_default_trust_store_from_path(ca_filepath=ca_bundle)
            ctx = _tls_contexts[ca_bundle] = crt_io.ClientTlsContext(options)
        return ctx


def _retrieve_writer_error(task: asyncio.Future[Any]) -> None:
    if task.cancelled():
        return
    exc = task.exception()
    if exc is not None and not harmless_crt_error(exc):
        logger.debug("awscrt request body writer ended with %r", exc)


class _SharedConnection:
    """One HTTP/2 connection and the transports (sessions) whose streams it carries."""

    __slots__ = ("connection", "users")

    def __init__(self, connection: Any) -> None:
        self.connection = connection
        self.users: set[NovaCRTHTTPClient] = set()


#: HTTP/2 connections shared by the sessions of one event loop, per destination and CA.
_connections: dict[tuple[int, str, str, int | None, str | None], _SharedConnection] = {}
_connecting: dict[tuple[int, str, str, int | None, str | None], asyncio.Lock] = {}


class NovaCRTHTTPClient(AWSCRTHTTPClient):
    """The awscrt HTTP/2 transport for one Nova connection (one bidirectional stream).

    The sessions of one process share what they can: awscrt's event loop and client
    bootstrap (host resolver), the TLS context per CA bundle, and the HTTP/2
    connection per event loop, destination and CA bundle, which carries one stream
    per session as the SDK's own client does when one client serves every session.
    A session's stream failing (a service exception, a reset) stays that session's;
    a dropped connection ends the stream of each session on it, and each reconnects
    on its own (over a new connection). The connection is closed when the last
    session using it is released.

    Args:
        ca_bundle: PEM file of extra trusted CAs (replaces the system trust store,
            as awscrt's ``override_default_trust_store`` does).
    """

    def __init__(self, ca_bundle: str | None = None) -> None:
        # AWSCRTHTTPClient.__init__ minus what each instance would build for itself: a
        # TLS context (the system trust store, parsed again) and socket options.
        eventloop = _shared_event_loop()
        self._config = AWSCRTHTTPClientConfig(force_http_2=True)
        self._eventloop = eventloop
        self._client_bootstrap = eventloop.bootstrap
        self._tls_ctx = _tls_context(ca_bundle)
        self._socket_options = _SOCKET_OPTIONS
        self._connections = {}
        self._closed = False
        self._shared_key: tuple[int, str, str, int | None, str | None] | None = None
        self.ca_bundle = ca_bundle
        #: The awscrt stream of the request sent (one per connection).
        self.crt_stream: Any = None
        #: The request body (``AsyncBytesProvider``) the event publisher writes into.
        self.request_body: Any = None
        #: Called with the number of events each time awscrt's body writer takes the
        #: next chunk (the previous chunk's write has completed by then).
        self.on_take: Callable[[int], None] | None = None
        #: ``time.monotonic()`` when awscrt saw the HTTP/2 stream end (either side).
        self.finished_at: float | None = None

    async def _get_connection(self, url: Any) -> Any:
        """The shared HTTP/2 connection to *url* (opened by the first session that needs it)."""
        key = (id(asyncio.get_running_loop()), url.scheme, url.host, url.port, self.ca_bundle)
        lock = _connecting.setdefault(key, asyncio.Lock())
        async with lock:  # sessions opening together share the one they open
            shared = _connections.get(key)
            if shared is None or not shared.connection.is_open():
                shared = _connections[key] = _SharedConnection(await self._create_connection(url))
            shared.users.add(self)
            if self._shared_key is not None and self._shared_key != key:
                await self._release_connection()
            self._shared_key = key
            return shared.connection

    async def _release_connection(self) -> None:
        key, self._shared_key = self._shared_key, None
        shared = _connections.get(key) if key is not None else None
        if shared is None:
            return
        shared.users.discard(self)
        if not shared.users:
            del _connections[key]  # type: ignore[arg-type]
            _connecting.pop(key, None)  # type: ignore[arg-type]
            # As AWSCRTHTTPClient.close() does: the shutdown wait may end cancelled (awscrt
            # cancels it), which must not cut the caller's release short.
            await asyncio.gather(shared.connection.close(), return_exceptions=True)

    async def close(self) -> None:
        """Release this session's use of the shared connection (closed with its last user)."""
        self._closed = True
        await self._release_connection()

    async def send(self, request: Any, *, request_config: Any = None) -> AWSCRTHTTPResponse:
        """Send the request, remembering its body so a dead stream is never flushed into."""
        self.request_body = request.body
        return await super().send(request, request_config=request_config)

    def _create_body_generator(self, body: Any) -> Any:
        if hasattr(body, "__anext__"):
            body = _BatchingBody(body, self)
        return super()._create_body_generator(body)

    async def _await_response(self, stream: Any) -> AWSCRTHTTPResponse:
        self.crt_stream = stream
        writer = getattr(stream, "_writer", None)
        if writer is not None:
            writer.add_done_callback(_retrieve_writer_error)
        for name in ("_completion_future", "_remote_completion_future"):
            future = getattr(stream, name, None)
            if future is not None:
                future.add_done_callback(self._finished)  # runs on awscrt's thread
        return await super()._await_response(stream)

    def _finished(self, _: Any) -> None:
        if self.finished_at is None:
            self.finished_at = time.monotonic()

    @property
    def stream_finished(self) -> bool:
        """Whether the HTTP/2 stream has completed (or its body writer has stopped)."""
        stream = self.crt_stream
        if stream is None:
            return False
        writer = getattr(stream, "_writer", None)
        completion = getattr(stream, "_completion_future", None)
        return bool(
            (writer is not None and writer.done()) or (completion is not None and completion.done())
        )

    def stream_error(self) -> BaseException | None:
        """The awscrt error that ended the stream, if it ended with one."""
        completion = getattr(self.crt_stream, "_completion_future", None)
        if completion is None or not completion.done() or completion.cancelled():
            return None
        return completion.exception()  # type: ignore[no-any-return]

    async def wait_stream_done(self, limit_s: float) -> None:
        """Wait (bounded) until the stream has completed and its writer has stopped."""
        stream = self.crt_stream
        if stream is None:
            return
        waits: list[Any] = []
        completion = getattr(stream, "_completion_future", None)
        if completion is not None and not completion.done():
            waits.append(asyncio.wrap_future(completion))
        writer = getattr(stream, "_writer", None)
        if writer is not None and not writer.done():
            waits.append(writer)
        if not waits:
            return
        done, pending = await asyncio.wait(waits, timeout=limit_s)
        for fut in done:
            if not fut.cancelled():
                fut.exception()
        for fut in pending:
            if fut is not writer:
                fut.cancel()
                with contextlib.suppress(BaseException):
                    await fut

    def __deepcopy__(self, memo: Any) -> NovaCRTHTTPClient:
        return self


class _BatchingBody:
    """The request body as awscrt's writer iterates it: all queued events in one write.

    awscrt's writer takes one chunk per round trip between its thread and the event
    loop, so with one event per chunk a busy loop lets the SDK's 16-event buffer fill
    and input lag by seconds. Event-stream messages delimit themselves: every event
    queued when the writer comes back goes out joined in one write. Each take is told
    to the transport (``on_take``) with the number of events it took.
    """

    def __init__(self, body: Any, transport: NovaCRTHTTPClient) -> None:
        self._body = body
        self._transport = transport

    def __aiter__(self) -> _BatchingBody:
        return self

    async def __anext__(self) -> bytes:
        chunk: bytes = await self._body.__anext__()
        parts = [chunk]
        # smithy's AsyncBytesProvider has no "take all": its deque, under its lock.
        queued = getattr(self._body, "_data", None)
        condition = getattr(self._body, "_data_condition", None)
        if queued and condition is not None:
            async with condition:
                parts += queued
                queued.clear()
                condition.notify_all()  # writers waiting for room
        on_take = self._transport.on_take
        if on_take is not None:
            on_take(len(parts))
        return parts[0] if len(parts) == 1 else b"".join(parts)


class SessionCredentialsResolver:
    """Resolves AWS credentials from a boto3 session for one connection.

    The request of every new connection is signed with credentials asked fresh
    from ``session.get_credentials()`` (botocore refreshes temporary credentials
    there), never with a snapshot taken when the model was built. The SigV4
    event-signature chain of a connection is seeded by that request's signature
    and checked by the service with the same key, so the events of one
    connection keep the identity resolved for its request; botocore refreshes
    temporary credentials at least 10 minutes before they expire, which outlives
    Bedrock's 8-minute stream.

    Args:
        session: A ``boto3.Session`` (kept by reference).
    """

    def __init__(self, session: Any) -> None:
        self._session = session
        self._identity: AWSCredentialsIdentity | None = None
        self._lock = asyncio.Lock()
        #: Access key ids handed out, in order (for tests and debugging; never secrets).
        self.resolved_access_keys: list[str] = []

    def _resolve(self) -> AWSCredentialsIdentity:
        credentials = self._session.get_credentials()
        if credentials is None:
            msg = (
                "No AWS credentials were found by the boto3 session; configure them "
                "(environment variables, ~/.aws/credentials, SSO, a role) or pass "
                "client_config={'boto_session': boto3.Session(...)}."
            )
            raise NoCredentialsError(msg)
        frozen = credentials.get_frozen_credentials()
        return AWSCredentialsIdentity(
            access_key_id=frozen.access_key,
            secret_access_key=frozen.secret_key,
            session_token=frozen.token or None,
        )

    async def get_identity(self, *, properties: AWSIdentityProperties) -> AWSCredentialsIdentity:
        """Return the connection's identity, resolving it from the session the first time."""
        del properties
        async with self._lock:
            if self._identity is None:
                # get_credentials() may refresh over the network: keep it off the loop.
                self._identity = await asyncio.to_thread(self._resolve)
                self.resolved_access_keys.append(self._identity.access_key_id)
            return self._identity

    async def resolve(self) -> None:
        """Resolve the identity now (raises what the session raises), cached for the SDK."""
        await self.get_identity(properties=AWSIdentityProperties())

    async def invalidate(self) -> None:
        """Forget the identity so the next resolution asks the session again."""
        async with self._lock:
            self._identity = None
