"""One gateway session: a ``BidiAgent`` driven over a WebSocket (``WS /v1/session``).

The protocol (see the README's table): text frames are JSON, binary frames are raw
PCM16 mono audio. The server sends ``{"type": "session", ...}`` first, then every
event the agent yields as its ``to_dict()``, except audio at the advertised output
rate, which goes out as binary frames (they belong to the response of the latest
``bidi_response_start``). The client sends input events as ``to_dict()`` JSON
(``bidi_text_input``, ``bidi_image_input``, ``bidi_audio_input``), binary audio at
the advertised input rate, and ``{"type": "playback", "response_id", "played_ms"}``.

:class:`SessionBase` holds what the browser session and the Twilio bridge share:
sending through one lock, the agent's lifecycle, input limits and error events. It
knows nothing of Starlette: a :class:`Transport` moves the frames.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import math
import uuid
from typing import Any, Protocol

from .. import _fastcodec as codec
from .._base import cancel_and_wait
from .._errors import BidiModelStateError, UnsupportedInputError
from ..agent import AgentEvent, BidiAgent
from ..events import (
    BidiAudioInputEvent,
    BidiAudioStreamEvent,
    BidiErrorEvent,
    BidiInputEvent,
    BidiInterruptionEvent,
    BidiResponseCompleteEvent,
    BidiTextInputEvent,
    EventDecodeError,
    event_types,
    from_dict,
)
from ..io._protocol import BidiOutput
from ._config import ServeConfig
from ._limits import AudioRateLimiter

__all__ = ["ClientSession", "SessionBase", "Transport"]

logger = logging.getLogger("bidi_core.serve")

#: Seconds the model may take to start before the session gives up.
START_TIMEOUT = 30.0
#: Input event types a client may send as JSON.
CLIENT_INPUTS = ("bidi_text_input", "bidi_image_input", "bidi_audio_input")
#: Interrupted responses remembered (their late audio is not sent).
_KEEP_INTERRUPTED = 64


class Transport(Protocol):
    """Moves frames of one WebSocket; the Starlette endpoint and tests implement it."""

    async def receive(self) -> str | bytes | None:
        """The next frame; None once the client has gone."""

    async def send_text(self, text: str) -> None:
        """Send a text frame."""

    async def send_bytes(self, data: bytes) -> None:
        """Send a binary frame."""

    async def close(self, code: int, reason: str) -> None:
        """Close the socket (no-op if it is closed)."""


class SessionBase:
    """What every gateway session shares: the agent, sending, limits and errors.

    Args:
        transport: The client's socket.
        agent: This session's agent (unstarted).
        config: The server's configuration (limits).
        model: The registry name, for the client and the logs.
    """

    def __init__(
        self, transport: Transport, agent: BidiAgent, config: ServeConfig, *, model: str
    ) -> None:
        self.transport = transport
        self.agent = agent
        self.config = config
        self.model = model
        self.id = uuid.uuid4().hex[:12]
        self.gone = False
        self._send_lock = asyncio.Lock()
        self.limiter = AudioRateLimiter(config.audio_burst_ms)
        self._rate_warned_at = -math.inf

    # ---------------------------------------------------------------- sending

    async def send_text(self, text: str) -> None:
        """Send a text frame; a client that has gone is noted, not raised."""
        if self.gone:
            return
        async with self._send_lock:
            try:
                await self.transport.send_text(text)
            except Exception as exc:
                self._lost(exc)

    async def send_bytes(self, data: bytes) -> None:
        """Send a binary frame; a client that has gone is noted, not raised."""
        if self.gone:
            return
        async with self._send_lock:
            try:
                await self.transport.send_bytes(data)
            except Exception as exc:
                self._lost(exc)

    def _lost(self, exc: BaseException) -> None:
        if not self.gone:
            logger.debug("session %s: the client went away while sending: %r", self.id, exc)
        self.gone = True

    async def send_json(self, data: dict[str, Any]) -> None:
        """Send one JSON text frame."""
        await self.send_text(codec.dumps(data))

    async def error(self, message: str, code: str, *, recoverable: bool = True) -> None:
        """Tell the client something went wrong (a ``bidi_error`` event)."""
        event = BidiErrorEvent(message=message, code=code, recoverable=recoverable)
        await self.send_json(event.to_dict())

    async def close(self, code: int, reason: str) -> None:
        """Close the client's socket."""
        with contextlib.suppress(Exception):
            await self.transport.close(code, reason)
        self.gone = True

    # ------------------------------------------------------------------ input

    async def send_input(self, event: BidiInputEvent) -> None:
        """Hand one client input to the agent; refusals become error events."""
        try:
            await self.agent.send(event)
        except UnsupportedInputError as exc:
            await self.error(str(exc), "unsupported_input")
        except BidiModelStateError:
            pass  # the agent has stopped; the session is ending

    async def audio_in(self, pcm: bytes, sample_rate: int) -> None:
        """Check and forward one chunk of client audio (PCM16 mono at *sample_rate*)."""
        if len(pcm) % 2:
            await self.error(
                f"An audio frame of {len(pcm)} bytes is not whole PCM16 samples; send "
                "16-bit little-endian mono samples.",
                "bad_audio",
            )
            return
        if not pcm:
            return
        if not self.limiter.allow(len(pcm) / 2 / sample_rate * 1000.0):
            await self._rate_refused()
            return
        await self.send_input(BidiAudioInputEvent(audio=pcm, sample_rate=sample_rate))

    async def _rate_refused(self) -> None:
        loop = asyncio.get_running_loop()
        if loop.time() - self._rate_warned_at < 1.0:
            return  # one error event a second is enough
        self._rate_warned_at = loop.time()
        logger.info("session %s: refused audio sent faster than real time", self.id)
        await self.error(
            "Audio is arriving faster than real time; the excess was refused "
            f"({self.limiter.refused_ms:.0f} ms so far). Send audio as it is recorded.",
            "input_rate_exceeded",
        )

    async def receive_frame(self) -> tuple[str | bytes | None, tuple[int, str] | None]:
        """The next client frame, or a reason to close: idle too long, or too big."""
        idle = self.config.idle_timeout_s
        try:
            async with asyncio.timeout(idle):
                frame = await self.transport.receive()
        except TimeoutError:
            await self.error(
                f"The client sent nothing for {idle:g} s; the session is closed.",
                "idle_timeout",
                recoverable=False,
            )
            return None, (1000, "idle timeout")
        if frame is not None and len(frame) > self.config.max_message_bytes:
            return None, (1009, "message too big")
        return frame, None

    # -------------------------------------------------------------- lifecycle

    async def read_client(self) -> tuple[int, str] | None:
        """Read client frames until the client goes (None) or must be closed."""
        raise NotImplementedError

    async def converse(self, output: BidiOutput) -> None:
        """Start the agent, run it against *output* and the client, stop it.

        Ends when the client goes (the agent is stopped at once), when the session
        must be closed (idle, too big), or when the model ends or fails (the client
        gets a ``bidi_error`` and the socket closes with 1011).
        """
        agent = self.agent
        try:
            async with asyncio.timeout(START_TIMEOUT):
                await agent.start()
        except Exception as exc:
            # The provider's message may name the operator's endpoint: log it, do not send it.
            logger.warning("session %s: the %s model did not start: %r", self.id, self.model, exc)
            await self.error(
                f"The {self.model} model could not be started ({type(exc).__name__}); "
                "try again later.",
                "start_failed",
                recoverable=False,
            )
            await self.close(1011, "model unavailable")
            return
        runner = asyncio.create_task(agent.run(outputs=[output]), name="bidi-serve-agent")
        reader = asyncio.create_task(self.read_client(), name="bidi-serve-client")
        closing: tuple[int, str] | None = None
        try:
            await asyncio.wait({runner, reader}, return_when=asyncio.FIRST_COMPLETED)
            if reader.done():
                closing = reader.result()
                await agent.stop()
                await asyncio.wait([runner])
                if not runner.cancelled() and runner.exception() is not None:
                    logger.debug("session %s: agent ended with %r", self.id, runner.exception())
            else:
                failure = runner.exception()
                if failure is None:
                    closing = (1000, "the conversation ended")
                else:
                    logger.warning(
                        "session %s: the %s model failed: %r", self.id, self.model, failure
                    )
                    await self.error(
                        f"The {self.model} connection failed ({type(failure).__name__}); "
                        "the session is over.",
                        "model_failed",
                        recoverable=False,
                    )
                    closing = (1011, "model connection failed")
        finally:
            await cancel_and_wait(reader)
            await agent.stop()
            await cancel_and_wait(runner)
        if closing is not None and not self.gone:
            await self.close(*closing)


class ClientOutput:
    """Sends the agent's events to a ``/v1/session`` client, audio as binary frames.

    Also the agent's view of playback: :meth:`report` takes the client's
    ``playback`` messages, and :meth:`played_ms` answers with them on barge-in.
    """

    def __init__(self, session: SessionBase, output_rate: int) -> None:
        self._session = session
        self._rate = output_rate
        self._sent_ms: dict[str | None, float] = {}
        self._played_ms: dict[str, float] = {}
        self._interrupted: collections.deque[str] = collections.deque(maxlen=_KEEP_INTERRUPTED)
        #: Audio chunks of interrupted responses that were not sent (the user talked over them).
        self.dropped_chunks = 0

    async def handle(self, event: AgentEvent) -> None:
        session = self._session
        if isinstance(event, BidiAudioStreamEvent):
            rid = event.response_id
            if rid is not None and rid in self._interrupted:
                self.dropped_chunks += 1
                return
            self._sent_ms[rid] = self._sent_ms.get(rid, 0.0) + (
                len(event.audio) / 2 / event.channels / event.sample_rate * 1000.0
            )
            if event.sample_rate == self._rate and event.channels == 1 and event.format == "pcm":
                await session.send_bytes(event.audio)
                return
        elif isinstance(event, BidiInterruptionEvent) and event.response_id:
            self._interrupted.append(event.response_id)
        elif isinstance(event, BidiResponseCompleteEvent):
            self._sent_ms.pop(event.response_id, None)
            self._played_ms.pop(event.response_id, None)
        await session.send_json(event.to_dict())

    def report(self, response_id: str, played_ms: float) -> None:
        """The client says it has played *played_ms* of *response_id*'s audio."""
        if response_id in self._sent_ms:
            self._played_ms[response_id] = max(self._played_ms.get(response_id, 0.0), played_ms)

    def clear_audio(self) -> None:
        """Nothing is queued here: the client flushes its own queue on ``bidi_interruption``."""

    def played_ms(self, response_id: str) -> float | None:
        """What the client reported playing of *response_id*, at most what was sent."""
        played = self._played_ms.get(response_id)
        if played is None:
            return None
        return min(played, self._sent_ms.get(response_id, played))

    async def aclose(self) -> None:
        """Nothing to release."""


class ClientSession(SessionBase):
    """``WS /v1/session``: the JSON + binary protocol of browsers and the ``remote`` model."""

    async def run(self) -> None:
        """Greet the client, then converse until either side ends."""
        caps = self.agent.capabilities
        self.input_rate = caps.input_sample_rates[0] if caps.input_sample_rates else 16000
        self.output = ClientOutput(self, caps.output_sample_rate)
        await self.send_json(
            {
                "type": "session",
                "session_id": self.id,
                "model": self.model,
                "input_sample_rate": self.input_rate,
                "output_sample_rate": caps.output_sample_rate,
                "capabilities": caps.to_dict(),
                "max_message_bytes": self.config.max_message_bytes,
            }
        )
        await self.converse(self.output)

    async def read_client(self) -> tuple[int, str] | None:
        while True:
            frame, closing = await self.receive_frame()
            if closing is not None:
                return closing
            if frame is None:
                return None
            if isinstance(frame, bytes):
                await self.audio_in(frame, self.input_rate)
            else:
                await self._text_in(frame)

    async def _text_in(self, text: str) -> None:
        try:
            data = codec.loads(text)
        except ValueError as exc:
            await self.error(f"A text frame must be a JSON object: {exc}.", "bad_message")
            return
        if not isinstance(data, dict):
            await self.error(
                f"A text frame must be a JSON object with a 'type', got {type(data).__name__}.",
                "bad_message",
            )
            return
        kind = data.get("type")
        if kind == "playback":
            await self._playback(data)
        elif kind in CLIENT_INPUTS:
            await self._input_event(data)
        elif kind == "tool_result":
            await self.error(
                "Tool results are not the client's: the server runs its own tools "
                "(bidi serve --tool) and sends their results itself.",
                "not_allowed",
            )
        elif isinstance(kind, str) and kind in event_types():
            await self.error(
                f"{kind!r} is an output event; a client sends "
                f"{', '.join(CLIENT_INPUTS)}, playback, or binary audio frames.",
                "not_allowed",
            )
        else:
            await self.error(
                f"Unknown message type {kind!r}; a client sends {', '.join(CLIENT_INPUTS)}, "
                "playback, or binary audio frames.",
                "unknown_type",
            )

    async def _playback(self, data: dict[str, Any]) -> None:
        rid = data.get("response_id")
        played = data.get("played_ms")
        if (
            not isinstance(rid, str)
            or not isinstance(played, int | float)
            or isinstance(played, bool)
            or not math.isfinite(played)
            or played < 0
        ):
            await self.error(
                "A playback message needs 'response_id' (a string) and 'played_ms' "
                f"(a number >= 0), got {data!r}.",
                "bad_message",
            )
            return
        self.output.report(rid, float(played))

    async def _input_event(self, data: dict[str, Any]) -> None:
        try:
            event = from_dict(data)
        except EventDecodeError as exc:
            await self.error(str(exc), "bad_message")
            return
        if isinstance(event, BidiTextInputEvent) and event.role != "user":
            await self.error(
                f"Clients send text with role 'user' (got {event.role!r}); the "
                "instructions are the server's (bidi serve --system-prompt).",
                "not_allowed",
            )
            return
        if isinstance(event, BidiAudioInputEvent):
            rate = event.sample_rate
            ms = len(event.audio) / 2 / max(1, event.channels) / max(1, rate) * 1000.0
            if not self.limiter.allow(ms):
                await self._rate_refused()
                return
        await self.send_input(event)  # type: ignore[arg-type]
