"""The fault matrix: how a bidi model behaves when its provider misbehaves.

Every provider plugin (ours or a third party's) runs each case against its own
wire-faithful fake, in the style of the conformance suite::

    from bidi_core.testing.faults import FaultCase, fault_cases
    from bidi_x import CAPABILITIES, XModel
    from bidi_x.testing import serve

    @pytest.mark.parametrize("case", fault_cases(CAPABILITIES), ids=str)
    async def test_fault(case: FaultCase) -> None:
        await case.run(serve, lambda fake: XModel(**fake.model_kwargs))

``serve`` is the plugin's fake factory (:class:`~bidi_core.testing.ServeFake`); a case
calls it with its own ``assistant_config=`` and, for ``stalled_handshake``,
``stall_handshake=True`` (bind any other option with :func:`functools.partial`).
``make_model(fake)`` returns a fresh, unstarted model wired to that fake.

Each case checks one fault and its **defined outcome**:

========================  ====================================================
case                      outcome
========================  ====================================================
``disconnect``            TCP dropped mid-response: ``receive()`` raises a
                          :class:`~bidi_core.ProviderError`; a new connection works
``malformed_frame``       garbage mid-response: a :class:`~bidi_core.BidiErrorEvent`
                          and the talk goes on, or a ``ProviderError``
``provider_error``        a provider error mid-response: a recoverable
                          ``BidiErrorEvent``; the response still ends
                          (``BidiResponseCompleteEvent``) and the next turn is answered
``time_limit``            the connection limit mid-response:
                          :class:`~bidi_core.BidiModelTimeoutError`;
                          ``start(**err.restart_config)`` continues the talk
``slow_server``           every frame delayed: the turn completes intact
``slow_consumer``         the client stops reading while a long answer streams,
                          then resumes: nothing is lost, everything is in order
``stalled_handshake``     the server accepts the connection but never completes
                          the handshake: ``start()`` raises a retryable
                          :class:`~bidi_core.BidiConnectionError` within
                          ``model.open_timeout``
========================  ====================================================

Mid-response faults are triggered with
:meth:`ScriptedAssistant.inject_fault() <bidi_core.testing.ScriptedAssistant.inject_fault>`
on ``fake.assistants[-1]``, so each fake's existing
:class:`~bidi_core.testing.Fault` -> wire mapping is reused.

Every case is bounded (each step by :data:`STEP_TIMEOUT`), stops the model, and then
checks for leaks: once the model is stopped and the fake has exited, no task created
during the case may still be running, and collecting garbage must not emit a
``ResourceWarning`` (an unclosed socket or transport). A failure raises
:class:`FaultCaseError` (an ``AssertionError``).

Importing this module does not import pytest.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import AbstractAsyncContextManager
from typing import Any

import attrs

from .._errors import BidiConnectionError, BidiError, BidiModelTimeoutError, ProviderError
from .._protocol import BidiModel, ModelCapabilities
from ..events import (
    BidiAudioStreamEvent,
    BidiErrorEvent,
    BidiOutputEvent,
    BidiResponseCompleteEvent,
    BidiResponseStartEvent,
    BidiTextInputEvent,
    BidiTranscriptStreamEvent,
)
from ._assistant import AssistantConfig, FaultKind
from ._fake import FakeServer
from .speech import normalize, transcribe

__all__ = [
    "SLOW_CONSUMER_PAUSE",
    "STALL_OPEN_TIMEOUT",
    "STEP_TIMEOUT",
    "FaultCase",
    "FaultCaseError",
    "fault_cases",
]

#: Seconds any one step of a case may take before the case fails (no hangs).
STEP_TIMEOUT = 20.0
#: Seconds the slow consumer stops reading ``receive()`` while an answer streams.
SLOW_CONSUMER_PAUSE = 2.0
#: The ``open_timeout`` the ``stalled_handshake`` case gives the model.
STALL_OPEN_TIMEOUT = 0.5
#: Seconds tasks of a finished case get to wind down before they count as leaked.
LEAK_GRACE = 2.0

#: Serves a fake: the plugin's ``serve`` (``assistant_config=``, ``stall_handshake=``).
Serve = Callable[..., AbstractAsyncContextManager[Any]]
#: Builds a fresh, unstarted model wired to a running fake.
MakeModel = Callable[[Any], BidiModel]

# Short answers keep the matrix fast; a "story" streams for a second or so.
_STORY = AssistantConfig(story_seconds=4.0, story_pace=0.25)


class FaultCaseError(AssertionError):
    """A model did not reach the defined outcome of a fault (or leaked, or hung)."""


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise FaultCaseError(message)


@attrs.frozen(kw_only=True)
class FaultCase:
    """One fault and its defined outcome, runnable against a plugin's fake.

    Attributes:
        name: Short id, e.g. ``"disconnect"``.
        description: The fault and the outcome, one sentence.
        needs: Capability check; the case does not apply if it returns False.
    """

    name: str
    description: str
    func: Callable[[Serve, MakeModel], Awaitable[None]] = attrs.field(repr=False)
    needs: Callable[[ModelCapabilities], bool] = attrs.field(
        default=lambda caps: "text" in caps.input_modalities, repr=False
    )

    async def run(self, serve: Serve, make_model: MakeModel) -> None:
        """Run the case, then check that no task or socket outlived it.

        Args:
            serve: The plugin's fake factory, e.g. ``bidi_x.testing.serve``.
            make_model: Returns a fresh, unstarted model wired to the fake it is given.

        Raises:
            FaultCaseError: The outcome was not the defined one, a step hung, or a
                task or socket leaked.
        """
        before = asyncio.all_tasks()
        await self.func(serve, make_model)
        await _check_no_leaks(before, self.name)

    def __str__(self) -> str:
        return self.name


# ------------------------------------------------------------------ helpers


async def _check_no_leaks(before: set[asyncio.Task[Any]], name: str) -> None:
    me = asyncio.current_task()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + LEAK_GRACE
    while True:
        left = [t for t in asyncio.all_tasks() - before if t is not me and not t.done()]
        if not left or loop.time() >= deadline:
            break
        await asyncio.sleep(0.02)
    if left:
        names = sorted(f"{t.get_name()} ({t.get_coro()!r})" for t in left)
        msg = f"{name}: {len(left)} task(s) outlived stop() and the fake: {names[:5]}."
        raise FaultCaseError(msg)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        gc.collect()
    unclosed = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
    _check(not unclosed, f"{name}: resources were not closed: {unclosed[:3]}.")


@contextlib.asynccontextmanager
async def _running(
    serve: Serve, make_model: MakeModel, config: AssistantConfig = _STORY, **options: Any
) -> AsyncIterator[tuple[FakeServer, BidiModel]]:
    """Serve a fake, build a model wired to it and start it; always stop both."""
    async with serve(assistant_config=config, **options) as fake:
        model = make_model(fake)
        try:
            async with asyncio.timeout(STEP_TIMEOUT):
                await model.start()
            yield fake, model
        finally:
            try:
                async with asyncio.timeout(STEP_TIMEOUT):
                    await model.stop()
            except TimeoutError:
                msg = f"stop() did not return within {STEP_TIMEOUT:g} s."
                raise FaultCaseError(msg) from None


class _Events:
    """Reads a model's events, keeping them all, with every wait bounded."""

    def __init__(self, model: BidiModel) -> None:
        self.seen: list[BidiOutputEvent] = []
        self._iter = aiter(model.receive())

    async def next(self) -> BidiOutputEvent:
        async with asyncio.timeout(STEP_TIMEOUT):
            event = await anext(self._iter)
        self.seen.append(event)
        return event

    async def until(
        self, predicate: Callable[[BidiOutputEvent], bool], what: str
    ) -> list[BidiOutputEvent]:
        start = len(self.seen)
        try:
            while True:
                if predicate(await self.next()):
                    return self.seen[start:]
        except TimeoutError:
            kinds = [type(e).__name__ for e in self.seen[start:]][-12:]
            msg = f"No {what} within {STEP_TIMEOUT:g} s (a hang); last events: {kinds}."
            raise FaultCaseError(msg) from None
        except StopAsyncIteration:
            msg = f"receive() ended while waiting for {what}."
            raise FaultCaseError(msg) from None

    async def failure(self, what: str) -> BaseException:
        """Read until ``receive()`` raises; return the error."""
        try:
            await self.until(lambda e: False, what)
        except FaultCaseError as exc:
            msg = f"Expected {what}, but: {exc}"
            raise FaultCaseError(msg) from exc
        except Exception as exc:
            return exc
        msg = "unreachable"  # pragma: no cover - until() never returns here
        raise FaultCaseError(msg)

    async def aclose(self) -> None:
        closer = getattr(self._iter, "aclose", None)
        if closer is not None:
            with contextlib.suppress(Exception):
                await closer()


def _is(kind: type) -> Callable[[BidiOutputEvent], bool]:
    return lambda e: isinstance(e, kind)


def _streaming(event: BidiOutputEvent) -> bool:
    """The first sign of a response streaming: audio, or an assistant transcript delta."""
    return isinstance(event, BidiAudioStreamEvent) or (
        isinstance(event, BidiTranscriptStreamEvent) and event.role == "assistant"
    )


def _completed(
    stop_reason: str | None = None, response_id: str | None = None
) -> Callable[[BidiOutputEvent], bool]:
    return lambda e: (
        isinstance(e, BidiResponseCompleteEvent)
        and (stop_reason is None or e.stop_reason == stop_reason)
        and (response_id is None or e.response_id == response_id)
    )


async def _answered(events: _Events, model: BidiModel, text: str) -> None:
    """Send a text turn and wait until its answer completes and says *text*."""
    await model.send(BidiTextInputEvent(text=text))
    turn = await events.until(_completed("complete"), f"the answer to {text!r}")
    finals = [
        e.text
        for e in turn
        if isinstance(e, BidiTranscriptStreamEvent) and e.role == "assistant" and e.is_final
    ]
    _check(
        any(text in f for f in finals),
        f"The answer to {text!r} was lost or garbled: final transcripts {finals!r}.",
    )


def _assistant(fake: FakeServer) -> Any:
    _check(bool(fake.assistants), "The fake has no ScriptedAssistant for the connection.")
    return fake.assistants[-1]


async def _mid_response(events: _Events, model: BidiModel, fake: FakeServer, kind: str) -> str:
    """Start a long answer, inject a fault of *kind* while it streams; return its response id."""
    await model.send(BidiTextInputEvent(text="tell me a story"))
    turn = await events.until(_streaming, "the story to start streaming")
    starts = [e.response_id for e in turn if isinstance(e, BidiResponseStartEvent)]
    _check(bool(starts), "A response must begin with BidiResponseStartEvent.")
    fault: FaultKind = kind  # type: ignore[assignment]
    _assistant(fake).inject_fault(fault)
    return starts[-1]


# -------------------------------------------------------------------- cases


async def _disconnect(serve: Serve, make_model: MakeModel) -> None:
    async with _running(serve, make_model) as (fake, model):
        events = _Events(model)
        await _mid_response(events, model, fake, "disconnect")
        error = await events.failure("a ProviderError after the disconnect")
        _check(
            isinstance(error, ProviderError),
            f"An abrupt disconnect must raise a ProviderError from receive(), got {error!r}.",
        )
        try:
            await model.send(BidiTextInputEvent(text="anyone there"))
        except BidiError:
            pass
        else:
            msg = "send() after the connection dropped must raise a typed bidi error."
            raise FaultCaseError(msg)
        await events.aclose()
        await model.stop()
        # The same instance connects again.
        async with asyncio.timeout(STEP_TIMEOUT):
            await model.start()
        events = _Events(model)
        await _answered(events, model, "after the drop")
        await events.aclose()


async def _malformed(serve: Serve, make_model: MakeModel) -> None:
    async with _running(serve, make_model) as (fake, model):
        events = _Events(model)
        streaming = await _mid_response(events, model, fake, "malformed")
        try:
            await events.until(_is(BidiErrorEvent), "a BidiErrorEvent for the malformed frame")
        except FaultCaseError:
            raise
        except ProviderError:
            await events.aclose()
            return  # a typed error is a defined outcome too
        except Exception as exc:
            msg = f"A malformed frame must give a BidiErrorEvent or a ProviderError, not {exc!r}."
            raise FaultCaseError(msg) from exc
        error = next(e for e in events.seen if isinstance(e, BidiErrorEvent))
        _check(bool(error.message), "A BidiErrorEvent needs a message.")
        await events.until(
            _completed(response_id=streaming), "the story to end after the bad frame"
        )
        await _answered(events, model, "still listening")
        await events.aclose()


async def _provider_error(serve: Serve, make_model: MakeModel) -> None:
    async with _running(serve, make_model) as (fake, model):
        events = _Events(model)
        streaming = await _mid_response(events, model, fake, "error")
        begin = len(events.seen)
        ended = _completed(response_id=streaming)

        def both(_event: BidiOutputEvent) -> bool:
            # Either order: the error may explain the end, or the end come first (Nova).
            after = events.seen[begin:]
            return any(isinstance(e, BidiErrorEvent) for e in after) and any(map(ended, after))

        await events.until(both, "a BidiErrorEvent and the end of the story")
        error = next(e for e in events.seen[begin:] if isinstance(e, BidiErrorEvent))
        _check(bool(error.message), "A BidiErrorEvent needs a message.")
        _check(error.recoverable, "A provider error that keeps the talk going is recoverable.")
        await _answered(events, model, "carry on")
        await events.aclose()


async def _time_limit(serve: Serve, make_model: MakeModel) -> None:
    async with _running(serve, make_model) as (fake, model):
        events = _Events(model)
        await _answered(events, model, "remember the tulips")
        await _mid_response(events, model, fake, "time_limit")
        error = await events.failure("a BidiModelTimeoutError at the time limit")
        _check(
            isinstance(error, BidiModelTimeoutError),
            f"The connection time limit must raise BidiModelTimeoutError, got {error!r}.",
        )
        assert isinstance(error, BidiModelTimeoutError)
        _check(bool(str(error)), "A BidiModelTimeoutError needs a message.")
        restart = dict(error.restart_config)
        await events.aclose()
        await model.stop()
        history = [
            {"role": "user", "content": [{"text": "remember the tulips"}]},
            {"role": "assistant", "content": [{"text": "You said: remember the tulips."}]},
        ]
        async with asyncio.timeout(STEP_TIMEOUT):
            await model.start(messages=history, **restart)  # type: ignore[arg-type]
        events = _Events(model)
        await model.send(BidiTextInputEvent(text="recall"))
        turn = await events.until(_completed("complete"), "the answer after the restart")
        text = " ".join(
            e.text for e in turn if isinstance(e, BidiTranscriptStreamEvent) and e.is_final
        )
        _check("tulips" in text, f"After the restart the talk must go on; heard {text!r}.")
        await events.aclose()


def _check_turn(turn: list[BidiOutputEvent], rate: int | None, what: str) -> None:
    """One whole response, in order: start, deltas, final transcript, complete."""
    starts = [i for i, e in enumerate(turn) if isinstance(e, BidiResponseStartEvent)]
    _check(len(starts) == 1, f"{what}: expected one BidiResponseStartEvent, got {len(starts)}.")
    finals = [
        (i, e)
        for i, e in enumerate(turn)
        if isinstance(e, BidiTranscriptStreamEvent) and e.role == "assistant" and e.is_final
    ]
    _check(len(finals) == 1, f"{what}: expected one final transcript, got {len(finals)}.")
    final_at, final = finals[0]
    deltas = [
        e.text
        for e in turn[:final_at]
        if isinstance(e, BidiTranscriptStreamEvent) and e.role == "assistant" and not e.is_final
    ]
    _check(
        starts[0] < final_at < len(turn) - 1,
        f"{what}: events out of order: {[type(e).__name__ for e in turn][:20]}.",
    )
    _check(
        "".join(deltas).strip() == final.text.strip(),
        f"{what}: transcript deltas were lost or reordered: {''.join(deltas)!r} != {final.text!r}.",
    )
    if rate is not None:
        audio = b"".join(e.audio for e in turn if isinstance(e, BidiAudioStreamEvent))
        heard = transcribe(audio, rate)
        _check(
            heard == normalize(final.text),
            f"{what}: audio was lost or reordered: it says {heard[:60]!r}..., the "
            f"transcript {final.text[:60]!r}...",
        )


def _audio_rate(model: BidiModel) -> int | None:
    caps = getattr(model, "capabilities", None)
    if isinstance(caps, ModelCapabilities) and "audio" in caps.output_modalities:
        return caps.output_sample_rate
    return None


async def _slow_server(serve: Serve, make_model: MakeModel) -> None:
    config = AssistantConfig(action_delay_s=0.01)
    async with _running(serve, make_model, config) as (_fake, model):
        events = _Events(model)
        await model.send(BidiTextInputEvent(text="slow and steady"))
        turn = await events.until(_completed("complete"), "the slow server's answer")
        _check_turn(turn, _audio_rate(model), "slow server")
        await events.aclose()


async def _slow_consumer(serve: Serve, make_model: MakeModel) -> None:
    # Streams for about 1.5 x SLOW_CONSUMER_PAUSE: the pause falls in the middle.
    seconds = SLOW_CONSUMER_PAUSE * 6
    config = AssistantConfig(story_seconds=seconds, story_pace=0.25)
    async with _running(serve, make_model, config) as (_fake, model):
        events = _Events(model)
        await model.send(BidiTextInputEvent(text="tell me a story"))
        await events.until(_is(BidiResponseStartEvent), "the story to start")
        start = len(events.seen) - 1
        await events.until(_streaming, "the story to stream")
        await asyncio.sleep(SLOW_CONSUMER_PAUSE)  # the consumer is busy: nobody reads
        await events.until(_completed(), "the story to complete after the pause")
        turn = events.seen[start:]
        done = turn[-1]
        assert isinstance(done, BidiResponseCompleteEvent)
        _check(
            done.stop_reason == "complete",
            f"A slow consumer must not cut the answer short (stop_reason {done.stop_reason!r}).",
        )
        _check_turn(turn, _audio_rate(model), "slow consumer")
        await _answered(events, model, "are you still there")
        await events.aclose()


async def _stalled_handshake(serve: Serve, make_model: MakeModel) -> None:
    async with serve(assistant_config=_STORY, stall_handshake=True) as fake:
        model = make_model(fake)
        if hasattr(model, "open_timeout"):
            model.open_timeout = STALL_OPEN_TIMEOUT
        try:
            async with asyncio.timeout(STEP_TIMEOUT):
                await model.start()
        except TimeoutError:
            msg = (
                f"start() hung for {STEP_TIMEOUT:g} s against a server that never completes "
                "the handshake; bound it (BidiModelBase.open_timeout)."
            )
            raise FaultCaseError(msg) from None
        except BidiConnectionError as exc:
            _check(exc.retryable, f"A handshake that timed out is retryable: {exc!r}.")
            _check(len(str(exc)) > 30, f"The error must say what to do: {exc}")
        except Exception as exc:
            msg = f"A stalled handshake must raise BidiConnectionError, not {exc!r}."
            raise FaultCaseError(msg) from exc
        else:
            await model.stop()
            msg = "start() succeeded although the server never completed the handshake."
            raise FaultCaseError(msg)
        # Nothing is left half-open: stop() is a no-op and send() refuses.
        async with asyncio.timeout(STEP_TIMEOUT):
            await model.stop()
        try:
            await model.send(BidiTextInputEvent(text="hello?"))
        except RuntimeError:
            pass
        else:
            msg = "send() after a failed start() must raise a RuntimeError."
            raise FaultCaseError(msg)


_CASES = (
    FaultCase(
        name="disconnect",
        description="TCP dropped mid-response: receive() raises a ProviderError; reconnect works.",
        func=_disconnect,
    ),
    FaultCase(
        name="malformed_frame",
        description="Garbage mid-response: a BidiErrorEvent and the talk goes on, or a "
        "ProviderError.",
        func=_malformed,
    ),
    FaultCase(
        name="provider_error",
        description="A provider error mid-response: a recoverable BidiErrorEvent, the "
        "response ends, the next turn is answered.",
        func=_provider_error,
    ),
    FaultCase(
        name="time_limit",
        description="The connection limit mid-response raises BidiModelTimeoutError; "
        "start(**restart_config) continues.",
        func=_time_limit,
    ),
    FaultCase(
        name="slow_server",
        description="Every frame delayed: the turn completes intact.",
        func=_slow_server,
    ),
    FaultCase(
        name="slow_consumer",
        description="receive() not read for a while during a long answer: nothing lost, "
        "all in order.",
        func=_slow_consumer,
    ),
    FaultCase(
        name="stalled_handshake",
        description="A server that never completes the handshake: start() raises a retryable "
        "BidiConnectionError within open_timeout.",
        func=_stalled_handshake,
        needs=lambda caps: True,
    ),
)


def fault_cases(
    capabilities: ModelCapabilities | None = None, *, skip: Iterable[str] = ()
) -> list[FaultCase]:
    """Return the fault cases that apply to a model with *capabilities*.

    Args:
        capabilities: The model's capabilities; None returns every case.
        skip: Case names to leave out (say why in your test suite).

    Raises:
        ValueError: *skip* names an unknown case.
    """
    skipped = set(skip)
    unknown = skipped - {c.name for c in _CASES}
    if unknown:
        msg = f"Unknown fault case(s) {sorted(unknown)!r}; known: {[c.name for c in _CASES]}."
        raise ValueError(msg)
    return [
        case
        for case in _CASES
        if case.name not in skipped and (capabilities is None or case.needs(capabilities))
    ]
