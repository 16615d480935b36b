"""``BidiModelBase``: the lifecycle every bidi model shares, for plugins to build on.

A provider subclass implements four hooks and gets the DESIGN §2 lifecycle rules
(state checks, ``receive()`` that ends cleanly on ``stop()``, idempotent ``stop()``
that always releases, failures surfaced as typed errors, the proactive connection
time limit, input checking and resampling) for free::

    class MyModel(BidiModelBase):
        provider = "my_provider"

        async def _open(self, *, system_prompt, tools, messages, restart_config): ...
        async def _read(self) -> None: ...          # call self._emit(event) per event
        async def _send(self, event) -> None: ...
        async def _close(self, *, graceful: bool) -> None: ...
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import enum
import logging
import time
import uuid
from collections.abc import AsyncIterator, Iterable
from typing import Any, ClassVar, Self

from ._config import check_number
from ._errors import (
    BidiConnectionError,
    BidiError,
    BidiModelStateError,
    BidiModelTimeoutError,
)
from ._input import InputPreparer, check_input
from ._protocol import ModelCapabilities
from .events import (
    BidiAudioInputEvent,
    BidiConnectionStartEvent,
    BidiInputEvent,
    BidiOutputEvent,
    ToolResultEvent,
)
from .types import Messages, ToolSpec

__all__ = ["BidiModelBase", "ModelState", "cancel_and_wait"]

logger = logging.getLogger("bidi_core")

#: Replayed audio goes out in sends of at most this many milliseconds.
REPLAY_PIECE_MS = 200


class ModelState(enum.Enum):
    """Lifecycle states of a model connection."""

    IDLE = "idle"
    STARTING = "starting"
    OPEN = "open"
    STOPPING = "stopping"


class _Marker:
    """An item of a connection's queue that is not an event."""

    __slots__ = ()


class _End(_Marker):
    """Marks the end of a connection's event queue."""

    __slots__ = ()


_END = _End()


class _Failure(_Marker):
    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


class _Connection:
    """Per-connection state, so a restarted model never mixes two connections' events.

    The queue is a deque plus the one future a waiting ``receive()`` sleeps on (only
    one task may receive): ``_emit`` appends and wakes it, ``receive()`` takes what is
    there without awaiting. That is the whole of what ``asyncio.Queue`` did here,
    without its bookkeeping (``task_done`` counts, getter and putter lists) per event.
    """

    __slots__ = ("closed", "failure", "id", "queue", "receiver", "waiter")

    def __init__(self, connection_id: str) -> None:
        self.id = connection_id
        self.queue: collections.deque[BidiOutputEvent | _Marker] = collections.deque()
        self.waiter: asyncio.Future[None] | None = None
        self.closed = False
        self.failure: BaseException | None = None
        self.receiver: asyncio.Task[Any] | None = None

    def put(self, item: BidiOutputEvent | _Marker) -> None:
        """Queue *item* and wake a waiting ``receive()``."""
        self.queue.append(item)
        if self.waiter is not None:
            self.wake()

    def wake(self) -> None:
        """Wake the ``receive()`` waiting for an item, if any."""
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


async def cancel_and_wait(task: asyncio.Task[Any] | None) -> None:
    """Cancel *task* and wait until it has finished, without raising its result.

    If the caller itself is cancelled while waiting, the task is still cancelled
    and the caller's cancellation propagates.
    """
    if task is None or task.done():
        if task is not None and not task.cancelled():
            task.exception()  # mark retrieved
        return
    task.cancel()
    # If we are cancelled while waiting, the task's outcome is still retrieved later.
    task.add_done_callback(_retrieve)
    await asyncio.wait([task])  # raises only if the caller itself is cancelled


def _retrieve(task: asyncio.Task[Any]) -> None:
    if not task.cancelled():
        task.exception()  # mark retrieved: no "exception was never retrieved" warning


class BidiModelBase:
    """Base class implementing the shared lifecycle of :class:`bidi_core.BidiModel`.

    Subclasses set :attr:`provider` and :attr:`capabilities` and implement
    :meth:`_open`, :meth:`_read`, :meth:`_send` and :meth:`_close`.

    Attributes:
        config: The model's configuration (a private copy).
        model_id: The provider's model id.
        close_timeout: Seconds the graceful shutdown may take before resources
            are released forcibly.
        open_timeout: Seconds ``start()`` may take to open the connection (connect,
            handshake, setup) before it fails with a retryable
            :class:`BidiConnectionError`; None waits forever. Plugins set it from
            ``client_config["open_timeout"]``.
        audio_replay_ms: Milliseconds of sent audio kept to send again first on the next
            connection when the provider ends one (0: off). Providers drop what the
            client wrote after they ended a session, and the client learns of the end
            a round trip later; a plugin turns it on and calls :meth:`_provider_ended`
            where it sees such an end (default 500 ms). The replay rides on the timeout's
            ``restart_config`` (``{"replay_audio_ms": n}``), so only a restart that
            passes it on (as ``BidiAgent`` does) sends it; a plain ``start()`` does not.
        remembers_written_audio: False (the default): a chunk counts as sent when
            ``_send()`` returns. A plugin whose transport queues input after that (so
            the queue, not the network, holds the last chunks when the provider ends
            the session) sets it True, calls :meth:`_remember_audio` when its
            transport has written a chunk, and passes the chunks it never wrote to
            :meth:`_provider_ended` as *unsent*.
    """

    provider: ClassVar[str] = "model"
    capabilities: ModelCapabilities = ModelCapabilities()
    close_timeout: float = 5.0
    open_timeout: float | None = 30.0
    audio_replay_ms: int = 500
    remembers_written_audio: ClassVar[bool] = False

    def __init__(self, *, model_id: str, config: dict[str, Any]) -> None:
        self.model_id = model_id
        self.config = config
        self._state = ModelState.IDLE
        self._conn: _Connection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._limit_timer: asyncio.TimerHandle | None = None
        self._stopped: asyncio.Event | None = None
        self._start_done: asyncio.Event | None = None
        # Built per connection in start(): subclasses may set capabilities after this
        # __init__, and resampler state must not leak from one connection into the next.
        self._inputs: InputPreparer | None = None
        #: ``(monotonic time, pcm at the provider's rate)`` of the last audio_replay_ms.
        self._recent_audio: collections.deque[tuple[float, bytes]] = collections.deque()
        self._replay: list[bytes] = []

    # ------------------------------------------------------------------ hooks

    async def _open(
        self,
        *,
        system_prompt: str | None,
        tools: list[ToolSpec],
        messages: Messages,
        restart_config: dict[str, Any],
    ) -> None:
        """Open the provider connection and send system prompt, tools and history."""
        raise NotImplementedError

    async def _read(self) -> None:
        """Read provider frames until the connection ends, calling :meth:`_emit` per event.

        Raise a typed error (chained to the provider's exception) if the
        connection breaks; return only when the provider closed it cleanly.
        """
        raise NotImplementedError

    async def _send(self, event: BidiInputEvent | ToolResultEvent) -> None:
        """Send one checked input event (audio already mono at an accepted rate)."""
        raise NotImplementedError

    async def _close(self, *, graceful: bool) -> None:
        """Close the connection.

        Called with ``graceful=True`` first (send the provider's shutdown sequence;
        bounded by :attr:`close_timeout`), then always with ``graceful=False``
        (release sockets; must not wait on the network).
        """
        raise NotImplementedError

    def _restart_config(self) -> dict[str, Any]:
        """Return the ``restart_config`` for a timeout (e.g. a resumption handle)."""
        return {}

    def _new_connection_id(self) -> str:
        """Return the id of a new connection (``BidiConnectionStartEvent.connection_id``).

        Defaults to a random UUID; override it to use the provider's session id or,
        in deterministic test models, an id derived from a seed.
        """
        return uuid.uuid4().hex

    def connection_limit_s(self) -> float | None:
        """Seconds after which ``receive()`` raises a proactive timeout, or None."""
        return None

    def input_sample_rate(self) -> int:
        """The PCM rate audio is sent to the provider at."""
        return self.capabilities.input_sample_rates[0]

    # ---------------------------------------------------------------- helpers

    @property
    def state(self) -> ModelState:
        """The lifecycle state."""
        return self._state

    @property
    def connection_id(self) -> str | None:
        """The id of the open connection, or None."""
        return self._conn.id if self._conn is not None else None

    def _emit(self, event: BidiOutputEvent) -> None:
        """Queue an output event for ``receive()``."""
        conn = self._conn
        if conn is not None and not conn.closed:
            conn.queue.append(event)  # conn.put(), inlined: ~50 events a second per session
            if conn.waiter is not None:
                conn.wake()

    def _fail(self, error: BaseException) -> None:
        """End ``receive()`` of the current connection by raising *error*."""
        conn = self._conn
        if conn is not None and not conn.closed and conn.failure is None:
            conn.failure = error
            conn.put(_Failure(error))

    def _timeout_error(self, message: str) -> BidiModelTimeoutError:
        config = self._restart_config()
        if self._replay:
            rate = self.input_sample_rate()
            config["replay_audio_ms"] = round(sum(map(len, self._replay)) / 2 / rate * 1000)
        return BidiModelTimeoutError(message, **config)

    def _provider_ended(self, *, since: float | None = None, unsent: Iterable[bytes] = ()) -> None:
        """The provider ended the connection: keep its last audio for the next one.

        Args:
            since: ``time.monotonic()`` when the connection was known to be over, if
                earlier than now (audio sent after it counts as unsent, all of it).
            unsent: Chunks the plugin's transport never wrote (oldest first), kept
                whole after the recent ones, however old (see
                :attr:`remembers_written_audio`).
        """
        if not self.audio_replay_ms:
            return
        horizon = (time.monotonic() if since is None else since) - self.audio_replay_ms / 1000
        # Seen from the reader and from a failed send: both add, neither drops.
        self._replay += [pcm for sent, pcm in self._recent_audio if sent >= horizon]
        self._replay += unsent
        self._recent_audio.clear()

    def _take_replay(self) -> list[bytes]:
        """Return (and forget) the audio :meth:`_provider_ended` kept."""
        replay, self._replay = self._replay, []
        return replay

    def _remember_audio(self, pcm: bytes) -> None:
        """Count *pcm* as sent now (the base class calls it, or the plugin: see
        :attr:`remembers_written_audio`)."""
        if not self.audio_replay_ms:
            return
        now = time.monotonic()
        recent = self._recent_audio
        recent.append((now, pcm))
        horizon = now - self.audio_replay_ms / 1000
        while recent[0][0] < horizon:
            recent.popleft()

    def _replay_pieces(self, replay: list[bytes]) -> list[bytes]:
        """Join the kept chunks into few sends (each event costs the provider a frame)."""
        limit = self.input_sample_rate() * 2 * REPLAY_PIECE_MS // 1000
        pieces: list[bytes] = []
        for pcm in replay:
            if pieces and len(pieces[-1]) + len(pcm) <= limit:
                pieces[-1] += pcm
            else:
                pieces.append(pcm)
        return pieces

    async def _send_replay(self, replay: list[bytes]) -> None:
        if not replay:
            return
        rate = self.input_sample_rate()
        for pcm in self._replay_pieces(replay):
            await self._send(BidiAudioInputEvent(audio=pcm, sample_rate=rate))
            if not self.remembers_written_audio:
                self._remember_audio(pcm)
        logger.debug("%s: sent %d audio chunks again", self.provider, len(replay))

    def _open_timeout_error(self) -> BidiConnectionError:
        msg = (
            f"The {self.provider} connection did not open within {self.open_timeout:g} s "
            "(open_timeout): the server accepted no session in time. Retry; if the network "
            "is slow, raise client_config['open_timeout']."
        )
        return BidiConnectionError(msg, provider=self.provider, retryable=True)

    def _on_time_limit(self) -> None:
        limit = self.connection_limit_s()
        self._fail(
            self._timeout_error(
                f"{self.provider} connection reached the configured limit of {limit:g} s; "
                "restart it to continue."
            )
        )

    # -------------------------------------------------------------- lifecycle

    async def start(
        self,
        system_prompt: str | None = None,
        tools: list[ToolSpec] | None = None,
        messages: Messages | None = None,
        **kwargs: Any,
    ) -> None:
        """Open the connection and send system prompt, tools and history.

        Args:
            system_prompt: Instructions for the model.
            tools: Tool specs the model may call.
            messages: Conversation history to seed.
            **kwargs: ``restart_config`` from a :class:`BidiModelTimeoutError`.

        Raises:
            BidiModelStateError: The model is already started.
            BidiConnectionError: The connection could not be opened (retryable when
                it did not open within :attr:`open_timeout`).
        """
        if self._state is not ModelState.IDLE:
            msg = (
                f"Cannot start {self.provider} model: it is {self._state.value}. "
                "Call stop() before starting it again."
            )
            raise BidiModelStateError(msg)
        # Plugins check their config in the constructor; a NaN bound here would never fire.
        where = f"{type(self).__name__}."
        check_number(self.open_timeout, where=f"{where}open_timeout", above=0, optional=True)
        check_number(self.close_timeout, where=f"{where}close_timeout", above=0)
        inputs = InputPreparer(
            self.input_sample_rate(), tuple(self.capabilities.input_sample_rates)
        )
        # Only a restart after the provider ended a connection replays its last audio.
        replay = self._take_replay() if kwargs.pop("replay_audio_ms", None) else []
        self._replay = []
        self._recent_audio.clear()
        self._state = ModelState.STARTING
        self._inputs = inputs
        self._stopped = asyncio.Event()
        start_done = self._start_done = asyncio.Event()
        conn = self._conn = _Connection(self._new_connection_id())
        # First in the queue, even before events _open() emits (e.g. a session-created frame).
        conn.put(BidiConnectionStartEvent(connection_id=conn.id, model=self.model_id))
        try:
            bound = asyncio.timeout(self.open_timeout)
            try:
                async with bound:
                    await self._open(
                        system_prompt=system_prompt,
                        tools=list(tools or []),
                        messages=list(messages or []),
                        restart_config=dict(kwargs),
                    )
                    await self._send_replay(replay)
            except TimeoutError as exc:
                if bound.expired():
                    raise self._open_timeout_error() from exc
                # A plugin's own step timeout escaped raw: keep the promise of typed errors.
                msg = (
                    f"Opening the {self.provider} connection timed out. Retry; if the network "
                    "is slow, raise the plugin's connect timeout."
                )
                raise BidiConnectionError(msg, provider=self.provider, retryable=True) from exc
        except BaseException:
            conn.closed = True
            with contextlib.suppress(Exception):
                await self._close(graceful=False)
            self._conn = None
            self._state = ModelState.IDLE
            self._stopped.set()
            raise
        finally:
            # A stop() that arrived while opening waits for this, then stops normally.
            start_done.set()
        self._state = ModelState.OPEN
        self._reader = asyncio.create_task(self._run_reader(conn), name=f"{self.provider}-reader")
        limit = self.connection_limit_s()
        if limit is not None:
            self._limit_timer = asyncio.get_running_loop().call_later(limit, self._on_time_limit)

    async def _run_reader(self, conn: _Connection) -> None:
        try:
            await self._read()
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # surfaced through receive(), never lost
            if conn.closed:
                logger.debug("%s reader ended after stop: %r", self.provider, exc)
                return
            if isinstance(exc, Exception) and not isinstance(exc, BidiError):
                # Keep the promise of typed errors even when a plugin lets a raw one escape.
                wrapped = BidiConnectionError(
                    f"The {self.provider} connection failed: {type(exc).__name__}: {exc}",
                    provider=self.provider,
                    retryable=True,
                )
                wrapped.__cause__ = exc
                exc = wrapped
            self._fail(exc)
        else:
            if not conn.closed:
                self._fail(
                    BidiConnectionError(
                        f"The {self.provider} connection was closed by the provider.",
                        provider=self.provider,
                        retryable=True,
                    )
                )

    def _require_open(self, action: str) -> _Connection:
        conn = self._conn
        if self._state is not ModelState.OPEN or conn is None:
            when = (
                "before start() has been called"
                if self._state is ModelState.IDLE
                else (f"while the model is {self._state.value}")
            )
            msg = f"Cannot {action} {when}."
            raise BidiModelStateError(msg)
        return conn

    async def receive(self) -> AsyncIterator[BidiOutputEvent]:
        """Yield output events: :class:`BidiConnectionStartEvent` first, until ``stop()``.

        Raises:
            BidiModelStateError: Not started, or another task is receiving.
            BidiModelTimeoutError: The connection limit was reached; restart with
                ``err.restart_config``.
            ProviderError: The connection failed.
        """
        conn = self._require_open("receive events")
        me = asyncio.current_task()
        other = conn.receiver
        if other is not None and other is not me and not other.done():
            msg = "Cannot receive: another task is currently receiving on this connection."
            raise BidiModelStateError(msg)
        conn.receiver = me
        try:
            queue = conn.queue
            loop = asyncio.get_running_loop()
            while not conn.closed:
                if not queue:
                    waiter = conn.waiter = loop.create_future()
                    try:
                        await waiter
                    finally:
                        if conn.waiter is waiter:
                            conn.waiter = None
                    continue
                item = queue.popleft()
                if isinstance(item, _Marker):
                    if isinstance(item, _Failure):
                        queue.append(item)  # sticky: a later receive() raises it too
                        raise item.error
                    return
                yield item
        finally:
            if conn.receiver is me:
                conn.receiver = None

    async def send(self, content: BidiInputEvent | ToolResultEvent) -> None:
        """Send one input event.

        Raises:
            BidiModelStateError: Not started.
            UnsupportedInputError: The model's capabilities exclude this input.
            BidiModelTimeoutError: The connection hit its limit; restart first.
            ProviderError: The connection failed.
        """
        conn = self._require_open("send an event")
        event = check_input(content, self.capabilities, model=self.provider)
        if conn.failure is not None:
            if isinstance(conn.failure, BidiModelTimeoutError):
                raise self._timeout_error(conn.failure.message)
            msg = f"Cannot send an event: the {self.provider} connection failed ({conn.failure})."
            raise BidiConnectionError(msg, provider=self.provider) from conn.failure
        if isinstance(event, BidiAudioInputEvent):
            assert self._inputs is not None  # set by start()
            event = self._inputs.audio(event)
            if not event.audio:
                return
            await self._send(event)
            if not self.remembers_written_audio:
                self._remember_audio(event.audio)
            return
        await self._send(event)

    async def stop(self) -> None:
        """Close the connection and release every socket and task; idempotent.

        The graceful shutdown sequence is bounded by :attr:`close_timeout`; if it
        fails, resources are released anyway.
        """
        while self._state is ModelState.STARTING and self._start_done is not None:
            # Let start() finish opening, so that whatever it opened is released below.
            await self._start_done.wait()
        if self._state is ModelState.IDLE:
            return
        if self._state is ModelState.STOPPING:
            if self._stopped is not None:
                await self._stopped.wait()
            return
        was_open = self._state is ModelState.OPEN
        self._state = ModelState.STOPPING
        conn = self._conn
        if conn is not None:
            conn.closed = True
            conn.put(_END)
        if self._limit_timer is not None:
            self._limit_timer.cancel()
            self._limit_timer = None
        try:
            if was_open:
                try:
                    async with asyncio.timeout(self.close_timeout):
                        await self._close(graceful=True)
                except Exception as exc:
                    logger.debug("%s graceful close failed: %r", self.provider, exc)
        finally:
            try:
                with contextlib.suppress(Exception):
                    await self._close(graceful=False)
            finally:
                reader, self._reader = self._reader, None
                try:
                    await cancel_and_wait(reader)
                finally:
                    # Reached even if stop() itself is cancelled: never stuck in STOPPING.
                    self._conn = None
                    self._state = ModelState.IDLE
                    if self._stopped is not None:
                        self._stopped.set()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} model_id={self.model_id!r} state={self._state.value}>"
