"""The conformance suite every bidi model runs against its fake server.

Any plugin (ours or a third party's) proves it follows DESIGN §2-3 with::

    from bidi_core.testing import conformance_cases

    @pytest.mark.parametrize("case", conformance_cases(MyModel.capabilities), ids=str)
    async def test_conformance(case, fake_server):
        await case.run(lambda: MyModel(**fake_server.model_kwargs))

or, without pytest, ``await check_model(factory)``. ``factory`` returns a fresh,
unstarted model wired to a running fake driven by
:class:`~bidi_core.testing.ScriptedAssistant`; the cases reach faults through the
assistant's magic phrases (``[fault:error]`` ...), so the fake must turn each
:class:`~bidi_core.testing.Fault` into the provider's real wire signal.

Importing this module does not import pytest.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any

import attrs

from .._errors import (
    BidiError,
    BidiModelStateError,
    BidiModelTimeoutError,
    ProviderError,
    UnsupportedInputError,
)
from .._protocol import BidiModel, ModelCapabilities
from ..events import (
    BidiAudioInputEvent,
    BidiAudioStreamEvent,
    BidiConnectionStartEvent,
    BidiErrorEvent,
    BidiEvent,
    BidiInterruptionEvent,
    BidiOutputEvent,
    BidiResponseCompleteEvent,
    BidiResponseStartEvent,
    BidiTextInputEvent,
    BidiTranscriptStreamEvent,
    BidiUsageEvent,
    ToolResultEvent,
    ToolUseStreamEvent,
    from_dict,
)
from ..types import ToolSpec
from .speech import normalize, speak, transcribe

__all__ = [
    "ConformanceCase",
    "ConformanceError",
    "check_model",
    "conformance_cases",
]

ModelFactory = Callable[[], BidiModel]

#: Seconds any one step of a case may take before the case fails (no hangs).
STEP_TIMEOUT = 20.0

ECHO_TOOL: ToolSpec = {
    "name": "conformance_echo",
    "description": "Echo a value back.",
    "inputSchema": {
        "json": {
            "type": "object",
            "properties": {"value": {"type": "integer"}},
            "required": ["value"],
        }
    },
}


class ConformanceError(AssertionError):
    """A model broke a rule of the bidi model contract."""


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ConformanceError(message)


@attrs.frozen(kw_only=True)
class ConformanceCase:
    """One rule of the contract, runnable against a model factory.

    Attributes:
        name: Short id, e.g. ``"text_turn"``.
        description: The rule, one sentence.
        needs: Capability check; the case does not apply if it returns False.
    """

    name: str
    description: str
    func: Callable[[ModelFactory], Awaitable[None]] = attrs.field(repr=False)
    needs: Callable[[ModelCapabilities], bool] = attrs.field(default=lambda caps: True, repr=False)

    async def run(self, factory: ModelFactory) -> None:
        """Run the case; raises :class:`ConformanceError` (an AssertionError) on failure."""
        await self.func(factory)

    def __str__(self) -> str:
        return self.name


# ------------------------------------------------------------------ helpers


@contextlib.asynccontextmanager
async def _started(factory: ModelFactory, **start: Any) -> AsyncIterator[BidiModel]:
    model = factory()
    async with asyncio.timeout(STEP_TIMEOUT):
        await model.start(**start)
    try:
        yield model
    finally:
        async with asyncio.timeout(STEP_TIMEOUT):
            await model.stop()


class _Events:
    """Reads a model's events, keeping them all, until a condition holds."""

    def __init__(self, model: BidiModel) -> None:
        self.model = model
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
                event = await self.next()
                if predicate(event):
                    return self.seen[start:]
        except TimeoutError:
            kinds = [type(e).__name__ for e in self.seen[start:]][-12:]
            msg = f"Timed out after {STEP_TIMEOUT:g} s waiting for {what}; last events: {kinds}."
            raise ConformanceError(msg) from None
        except StopAsyncIteration:
            msg = f"receive() ended while waiting for {what}."
            raise ConformanceError(msg) from None

    async def aclose(self) -> None:
        closer = getattr(self._iter, "aclose", None)
        if closer is not None:
            with contextlib.suppress(Exception):
                await closer()


def _final(role: str) -> Callable[[BidiOutputEvent], bool]:
    return lambda e: isinstance(e, BidiTranscriptStreamEvent) and e.role == role and e.is_final


def _complete(event: BidiOutputEvent) -> bool:
    return isinstance(event, BidiResponseCompleteEvent)


async def _text_turn(events: _Events, text: str) -> list[BidiOutputEvent]:
    await events.model.send(BidiTextInputEvent(text=text))
    return await events.until(
        lambda e: _complete(e) and getattr(e, "stop_reason", "") == "complete",
        f"the answer to {text!r}",
    )


def _answer_text(turn: list[BidiOutputEvent]) -> str:
    finals = [
        e.text
        for e in turn
        if isinstance(e, BidiTranscriptStreamEvent) and e.role == "assistant" and e.is_final
    ]
    _check(len(finals) == 1, f"Expected one final assistant transcript per turn, got {finals!r}.")
    return finals[0]


def _silence(rate: int, ms: int) -> bytes:
    return bytes(rate * ms // 1000 * 2)


async def _send_speech(model: BidiModel, text: str, rate: int = 16000, tail_ms: int = 600) -> None:
    pcm = speak(text, rate) + _silence(rate, tail_ms)
    step = rate * 20 // 1000 * 2
    for offset in range(0, len(pcm), step):
        await model.send(BidiAudioInputEvent(audio=pcm[offset : offset + step], sample_rate=rate))


def _caps(model: BidiModel) -> ModelCapabilities:
    caps = getattr(model, "capabilities", None)
    _check(
        isinstance(caps, ModelCapabilities),
        f"{type(model).__name__}.capabilities must be a bidi_core.ModelCapabilities.",
    )
    return caps  # type: ignore[return-value]


# -------------------------------------------------------------------- cases


async def _lifecycle(factory: ModelFactory) -> None:
    model = factory()
    _check(isinstance(model, BidiModel), "The factory must return a bidi_core.BidiModel.")
    _check(isinstance(getattr(model, "config", None), dict), "model.config must be a dict.")
    try:
        await model.send(BidiTextInputEvent(text="too early"))
    except BidiModelStateError:
        pass
    else:
        msg = "send() before start() must raise BidiModelStateError."
        raise ConformanceError(msg)
    try:
        await anext(aiter(model.receive()))
    except RuntimeError:
        pass
    else:
        msg = "receive() before start() must raise a RuntimeError."
        raise ConformanceError(msg)
    await model.stop()  # stop before start is a no-op
    await model.start()
    try:
        try:
            await model.start()
        except RuntimeError:
            pass
        else:
            msg = "A second start() before stop() must raise RuntimeError."
            raise ConformanceError(msg)
    finally:
        await model.stop()
    await model.stop()  # idempotent
    async with _started(factory) as again:
        events = _Events(again)
        first = await events.next()
        _check(
            isinstance(first, BidiConnectionStartEvent),
            f"receive() must yield BidiConnectionStartEvent first, got {first!r}.",
        )
        await events.aclose()
    # The same instance can be started again after stop().
    await model.start()
    try:
        events = _Events(model)
        first = await events.next()
        _check(isinstance(first, BidiConnectionStartEvent), "Restarted model must say so first.")
        await events.aclose()
    finally:
        await model.stop()


async def _text_turn_case(factory: ModelFactory) -> None:
    async with _started(factory, system_prompt="You are a test.") as model:
        caps = _caps(model)
        events = _Events(model)
        turn = await _text_turn(events, "hello conformance")
        starts = [e for e in turn if isinstance(e, BidiResponseStartEvent)]
        _check(len(starts) == 1, f"Expected one BidiResponseStartEvent, got {len(starts)}.")
        answer = _answer_text(turn)
        _check("hello conformance" in answer, f"Unexpected answer {answer!r}.")
        deltas = [e for e in turn if isinstance(e, BidiTranscriptStreamEvent) and not e.is_final]
        _check(bool(deltas), "Expected transcript deltas before the final transcript.")
        if "audio" in caps.output_modalities:
            audio = [e for e in turn if isinstance(e, BidiAudioStreamEvent)]
            _check(bool(audio), "Expected BidiAudioStreamEvent for an audio model.")
            rates = {e.sample_rate for e in audio}
            _check(
                rates == {caps.output_sample_rate},
                f"Audio rate {rates} differs from capabilities.output_sample_rate.",
            )
            heard = transcribe(b"".join(e.audio for e in audio), caps.output_sample_rate)
            _check(
                heard == normalize(answer), f"The audio says {heard!r}, the transcript {answer!r}."
            )
        usage = [e for e in turn if isinstance(e, BidiUsageEvent)]
        _check(bool(usage), "Expected a BidiUsageEvent for the turn.")
        await events.aclose()


async def _usage_incremental(factory: ModelFactory) -> None:
    async with _started(factory) as model:
        events = _Events(model)
        usages = []
        for _ in range(2):
            turn = await _text_turn(events, "count me")
            usages.append(
                [(e.input_tokens, e.output_tokens) for e in turn if isinstance(e, BidiUsageEvent)]
            )
        _check(
            sum(o for _, o in usages[0]) == sum(o for _, o in usages[1]),
            f"Usage must be incremental: identical turns reported {usages[0]} then {usages[1]}.",
        )
        await events.aclose()


async def _audio_turn(factory: ModelFactory) -> None:
    async with _started(factory) as model:
        events = _Events(model)
        await _send_speech(model, "hello audio")
        await events.until(_final("user"), "the user's final transcript")
        user = [e for e in events.seen if _final("user")(e)][-1]
        _check(
            getattr(user, "text", "").strip() == "hello audio",
            f"User transcript {getattr(user, 'text', None)!r} != 'hello audio'.",
        )
        turn = await events.until(_complete, "the answer to speech")
        _check("hello audio" in _answer_text(turn), "The answer must follow the spoken question.")
        await events.aclose()


async def _tool_round_trip(factory: ModelFactory) -> None:
    async with _started(factory, tools=[ECHO_TOOL]) as model:
        events = _Events(model)
        await model.send(BidiTextInputEvent(text='please call conformance_echo {"value": 42}'))
        await events.until(lambda e: isinstance(e, ToolUseStreamEvent), "a tool call")
        use = next(e for e in events.seen if isinstance(e, ToolUseStreamEvent)).tool_use
        _check(use["name"] == "conformance_echo", f"Wrong tool name {use['name']!r}.")
        _check(use["input"] == {"value": 42}, f"Wrong tool input {use['input']!r}.")
        _check(bool(use["toolUseId"]), "A tool use needs a toolUseId.")
        await events.until(_complete, "the tool-use response to complete")
        done = [e for e in events.seen if isinstance(e, BidiResponseCompleteEvent)][-1]
        _check(done.stop_reason == "tool_use", f"stop_reason {done.stop_reason!r} != 'tool_use'.")
        await model.send(
            ToolResultEvent(
                tool_result={
                    "toolUseId": use["toolUseId"],
                    "status": "success",
                    "content": [{"text": "forty-two"}],
                }
            )
        )
        turn = await events.until(
            lambda e: _complete(e) and getattr(e, "stop_reason", "") == "complete",
            "the answer after the tool result",
        )
        answer = _answer_text(turn)
        _check(
            "conformance_echo returned forty-two" in answer,
            f"The tool result did not reach the model: {answer!r}.",
        )
        await events.aclose()


async def _barge_in(factory: ModelFactory) -> None:
    async with _started(factory) as model:
        events = _Events(model)
        await model.send(BidiTextInputEvent(text="tell me a story"))
        await events.until(lambda e: isinstance(e, BidiAudioStreamEvent), "story audio")
        await _send_speech(model, "stop")
        turn = await events.until(
            lambda e: _complete(e) and getattr(e, "stop_reason", "") == "interrupted",
            "the interrupted response",
        )
        interruptions = [e for e in events.seen if isinstance(e, BidiInterruptionEvent)]
        _check(
            len(interruptions) == 1,
            f"Expected exactly one BidiInterruptionEvent, got {len(interruptions)}.",
        )
        _check(
            bool([e for e in turn if isinstance(e, BidiInterruptionEvent)]),
            "The interruption must come before the interrupted response completes.",
        )
        answer = await events.until(
            lambda e: _complete(e) and getattr(e, "stop_reason", "") == "complete",
            "the answer to the barge-in",
        )
        _check("stop" in _answer_text(answer), "The barge-in utterance must be answered.")
        await events.aclose()


async def _time_limit_restart(factory: ModelFactory) -> None:
    model = factory()
    await model.start()
    try:
        events = _Events(model)
        await _text_turn(events, "remember the tulips")
        await model.send(BidiTextInputEvent(text="[fault:time_limit]"))
        try:
            await events.until(lambda e: False, "the time limit")
        except BidiModelTimeoutError as err:
            restart = err.restart_config
            _check(str(err) == err.message, "str(BidiModelTimeoutError) must be its message.")
        else:  # pragma: no cover - until() never returns here
            msg = "unreachable"
            raise ConformanceError(msg)
        await events.aclose()
        await model.stop()
        history = [
            {"role": "user", "content": [{"text": "remember the tulips"}]},
            {"role": "assistant", "content": [{"text": "You said: remember the tulips."}]},
        ]
        await model.start(messages=history, **restart)  # type: ignore[arg-type]
        events = _Events(model)
        turn = await _text_turn(events, "recall")
        answer = _answer_text(turn)
        _check(
            "remember the tulips" in answer,
            f"After a restart the conversation must continue; answer was {answer!r}.",
        )
        await events.aclose()
    except ConformanceError:
        raise
    except BidiError as exc:
        msg = f"Restart after a time limit failed: {exc!r}."
        raise ConformanceError(msg) from exc
    finally:
        await model.stop()


async def _error_event(factory: ModelFactory) -> None:
    async with _started(factory) as model:
        events = _Events(model)
        await model.send(BidiTextInputEvent(text="[fault:error]"))
        await events.until(lambda e: isinstance(e, BidiErrorEvent), "a BidiErrorEvent")
        error = next(e for e in events.seen if isinstance(e, BidiErrorEvent))
        _check(bool(error.message), "A BidiErrorEvent needs a message.")
        _check(
            error.recoverable, "A provider error frame that keeps the connection is recoverable."
        )
        turn = await _text_turn(events, "still there")
        _check("still there" in _answer_text(turn), "The connection must stay usable.")
        await events.aclose()


async def _disconnect(factory: ModelFactory) -> None:
    async with _started(factory) as model:
        events = _Events(model)
        await model.send(BidiTextInputEvent(text="[fault:disconnect]"))
        try:
            await events.until(lambda e: False, "the disconnect")
        except ProviderError:
            pass
        except ConformanceError as exc:
            msg = f"An abrupt disconnect must raise a ProviderError from receive(): {exc}"
            raise ConformanceError(msg) from exc
        await events.aclose()
    # A new connection works after the failure.
    async with _started(factory) as model:
        events = _Events(model)
        await _text_turn(events, "after the drop")
        await events.aclose()


async def _malformed_frame(factory: ModelFactory) -> None:
    async with _started(factory) as model:
        events = _Events(model)
        await model.send(BidiTextInputEvent(text="[fault:malformed]"))
        try:
            await events.until(lambda e: isinstance(e, BidiErrorEvent), "a malformed-frame error")
        except ProviderError:
            return  # a typed error is a defined outcome too
        await events.aclose()


async def _stop_mid_stream(factory: ModelFactory) -> None:
    model = factory()
    await model.start()
    events = _Events(model)
    try:
        await model.send(BidiTextInputEvent(text="tell me a story"))
        await events.until(lambda e: isinstance(e, BidiAudioStreamEvent), "story audio")

        async def drain() -> int:
            count = 0
            with contextlib.suppress(StopAsyncIteration):
                while True:
                    await events.next()
                    count += 1
            return count

        reader = asyncio.create_task(drain())
        await asyncio.sleep(0.05)
        async with asyncio.timeout(STEP_TIMEOUT):
            await model.stop()
        try:
            async with asyncio.timeout(STEP_TIMEOUT):
                await reader
        except TimeoutError:
            reader.cancel()
            msg = "receive() must end after stop()."
            raise ConformanceError(msg) from None
        except BidiError as exc:
            msg = f"receive() must end cleanly on stop(), it raised {exc!r}."
            raise ConformanceError(msg) from exc
    finally:
        await model.stop()
    await model.stop()


async def _receive_ends_on_stop(factory: ModelFactory) -> None:
    model = factory()
    await model.start()
    events = _Events(model)
    await events.next()

    async def drain() -> None:
        with contextlib.suppress(StopAsyncIteration):
            while True:
                await events.next()

    reader = asyncio.create_task(drain())
    await asyncio.sleep(0.02)
    await model.stop()
    try:
        async with asyncio.timeout(STEP_TIMEOUT):
            await reader
    except TimeoutError:
        reader.cancel()
        msg = "An idle receive() must end when stop() is called."
        raise ConformanceError(msg) from None


async def _event_round_trip(factory: ModelFactory) -> None:
    async with _started(factory, tools=[ECHO_TOOL]) as model:
        events = _Events(model)
        await _text_turn(events, "round trip")
        for event in events.seen:
            _check(isinstance(event, BidiEvent), f"{event!r} is not a bidi event.")
            data = json.loads(json.dumps(event.to_dict()))
            _check(from_dict(data) == event, f"{event!r} does not survive to_dict/from_dict.")
        await events.aclose()


async def _bad_input(factory: ModelFactory) -> None:
    async with _started(factory) as model:
        caps = _caps(model)
        events = _Events(model)
        await model.send(BidiTextInputEvent(text="first words"))
        bad: list[Any] = [
            "a plain string",
            BidiResponseStartEvent(response_id="x"),
            BidiAudioInputEvent(audio=b"\x00\x01", sample_rate=16000, format="opus"),
            BidiAudioInputEvent(audio=b"\x00\x01\x02", sample_rate=16000),
        ]
        if "image" not in caps.input_modalities:
            from ..events import BidiImageInputEvent  # noqa: PLC0415

            bad.append(BidiImageInputEvent(image=b"\xff\xd8", mime_type="image/jpeg"))
        if not caps.resamples_input:
            bad.append(BidiAudioInputEvent(audio=bytes(640), sample_rate=11025))
        for item in bad:
            try:
                await model.send(item)
            except UnsupportedInputError as exc:
                _check(len(str(exc)) > 20, f"Error message too terse: {exc}")
            else:
                msg = f"send({item!r}) must raise UnsupportedInputError."
                raise ConformanceError(msg)
        turn = await events.until(_complete, "the answer sent before the bad input")
        _check("first words" in _answer_text(turn), "Input sent before bad input was lost.")
        turn = await _text_turn(events, "after bad input")
        _check("after bad input" in _answer_text(turn), "The model must stay usable.")
        await events.aclose()


def _has(modality: str) -> Callable[[ModelCapabilities], bool]:
    return lambda caps: modality in caps.input_modalities


_CASES = (
    ConformanceCase(
        name="lifecycle",
        description="State rules: send/receive before start, double start, idempotent stop.",
        func=_lifecycle,
    ),
    ConformanceCase(
        name="text_turn",
        description="A text turn streams deltas, one final transcript, audio saying it, usage.",
        func=_text_turn_case,
        needs=_has("text"),
    ),
    ConformanceCase(
        name="usage_incremental",
        description="Usage events are increments, not cumulative totals.",
        func=_usage_incremental,
        needs=_has("text"),
    ),
    ConformanceCase(
        name="audio_turn",
        description="Speech is transcribed (user final transcript) and answered.",
        func=_audio_turn,
        needs=_has("audio"),
    ),
    ConformanceCase(
        name="tool_round_trip",
        description="A tool call carries name, id and JSON input; its result is answered.",
        func=_tool_round_trip,
        needs=lambda caps: caps.tools and "text" in caps.input_modalities,
    ),
    ConformanceCase(
        name="barge_in",
        description="Speech during an answer yields one interruption and an interrupted stop.",
        func=_barge_in,
        needs=lambda caps: caps.interruption and "audio" in caps.input_modalities,
    ),
    ConformanceCase(
        name="time_limit_restart",
        description="A time limit raises BidiModelTimeoutError; restarting continues the talk.",
        func=_time_limit_restart,
        needs=_has("text"),
    ),
    ConformanceCase(
        name="error_event",
        description="A recoverable provider error is yielded as BidiErrorEvent; talk goes on.",
        func=_error_event,
        needs=_has("text"),
    ),
    ConformanceCase(
        name="disconnect",
        description="An abrupt disconnect raises a ProviderError; a new connection works.",
        func=_disconnect,
        needs=_has("text"),
    ),
    ConformanceCase(
        name="malformed_frame",
        description="A malformed frame gives a BidiErrorEvent or a ProviderError, never a hang.",
        func=_malformed_frame,
        needs=_has("text"),
    ),
    ConformanceCase(
        name="stop_mid_stream",
        description="stop() during an answer ends receive() cleanly.",
        func=_stop_mid_stream,
        needs=_has("text"),
    ),
    ConformanceCase(
        name="receive_ends_on_stop",
        description="An idle receive() ends when stop() is called.",
        func=_receive_ends_on_stop,
    ),
    ConformanceCase(
        name="event_round_trip",
        description="Every received event survives to_dict/JSON/from_dict exactly.",
        func=_event_round_trip,
        needs=_has("text"),
    ),
    ConformanceCase(
        name="bad_input",
        description="Bad input raises UnsupportedInputError; earlier input is not lost.",
        func=_bad_input,
        needs=_has("text"),
    ),
)


def conformance_cases(
    capabilities: ModelCapabilities | None = None, *, skip: Iterable[str] = ()
) -> list[ConformanceCase]:
    """Return the conformance cases that apply to a model with *capabilities*.

    Args:
        capabilities: The model's capabilities; None returns every case.
        skip: Case names to leave out (say why in your test suite).
    """
    skipped = set(skip)
    unknown = skipped - {c.name for c in _CASES}
    if unknown:
        msg = f"Unknown conformance case(s) {sorted(unknown)!r}; known: {[c.name for c in _CASES]}."
        raise ValueError(msg)
    return [
        case
        for case in _CASES
        if case.name not in skipped and (capabilities is None or case.needs(capabilities))
    ]


async def check_model(factory: ModelFactory, *, skip: Iterable[str] = ()) -> None:
    """Run every applicable conformance case against models from *factory*.

    Raises:
        ConformanceError: Listing every failed case and why.
    """
    caps = _caps(factory())
    failures = []
    for case in conformance_cases(caps, skip=skip):
        try:
            await case.run(factory)
        except Exception as exc:
            failures.append(f"{case.name}: {type(exc).__name__}: {exc}")
    if failures:
        raise ConformanceError("Conformance failures:\n" + "\n".join(failures))
