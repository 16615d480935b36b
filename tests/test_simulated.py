"""The simulated model: determinism, config checking, limits, faults, tools, audio."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from bidi_core import (
    BidiAudioInputEvent,
    BidiAudioStreamEvent,
    BidiConnectionError,
    BidiConnectionStartEvent,
    BidiErrorEvent,
    BidiImageInputEvent,
    BidiInterruptionEvent,
    BidiModelTimeoutError,
    BidiOutputEvent,
    BidiResponseCompleteEvent,
    BidiTextInputEvent,
    BidiTranscriptStreamEvent,
    ConfigError,
    ToolResultEvent,
    ToolSpec,
    ToolUseStreamEvent,
)
from bidi_core.simulated import SimulatedModel
from bidi_core.testing import speak, transcribe
from bidi_core.testing.speech import normalize

WEATHER: ToolSpec = {
    "name": "get_weather",
    "description": "Weather for a city.",
    "inputSchema": {"json": {"type": "object", "properties": {"city": {"type": "string"}}}},
}
STEP = 10.0  # seconds any one wait may take before the test fails instead of hanging


class Reader:
    """Collects a model's events until a predicate holds."""

    def __init__(self, model: SimulatedModel) -> None:
        self.events: list[BidiOutputEvent] = []
        self._iter: AsyncIterator[BidiOutputEvent] = aiter(model.receive())

    async def until(self, predicate: Callable[[BidiOutputEvent], bool]) -> list[BidiOutputEvent]:
        start = len(self.events)
        async with asyncio.timeout(STEP):
            async for event in self._iter:
                self.events.append(event)
                if predicate(event):
                    return self.events[start:]
        msg = "receive() ended early"
        raise AssertionError(msg)

    async def turn(self) -> list[BidiOutputEvent]:
        return await self.until(completed("complete"))

    async def aclose(self) -> None:
        await self._iter.aclose()  # type: ignore[attr-defined]


def completed(reason: str) -> Callable[[BidiOutputEvent], bool]:
    return lambda e: isinstance(e, BidiResponseCompleteEvent) and e.stop_reason == reason


def answer(turn: list[BidiOutputEvent]) -> str:
    (final,) = [
        e.text
        for e in turn
        if isinstance(e, BidiTranscriptStreamEvent) and e.role == "assistant" and e.is_final
    ]
    return final


async def send_speech(model: SimulatedModel, text: str, rate: int, tail_ms: int = 500) -> int:
    """Stream *text* as speech in 20 ms chunks; returns the bytes sent."""
    pcm = speak(text, rate) + bytes(rate * tail_ms // 1000 * 2)
    step = rate // 50 * 2
    for offset in range(0, len(pcm), step):
        await model.send(BidiAudioInputEvent(audio=pcm[offset : offset + step], sample_rate=rate))
    return len(pcm)


async def script(seed: int) -> list[BidiOutputEvent]:
    """A fixed conversation: a text turn, a tool call and its result."""
    model = SimulatedModel(provider_config={"seed": seed})
    await model.start(tools=[WEATHER])
    reader = Reader(model)
    try:
        await model.send(BidiTextInputEvent(text="hello"))
        await reader.turn()
        await model.send(BidiTextInputEvent(text='get_weather {"city": "Oslo"}'))
        await reader.until(completed("tool_use"))
        use = next(e for e in reader.events if isinstance(e, ToolUseStreamEvent)).tool_use
        await model.send(
            ToolResultEvent(
                tool_result={
                    "toolUseId": use["toolUseId"],
                    "status": "success",
                    "content": [{"text": "snow"}],
                }
            )
        )
        await reader.turn()
    finally:
        await reader.aclose()
        await model.stop()
    return reader.events


# ----------------------------------------------------------------- determinism


async def test_same_seed_gives_the_same_events_and_ids() -> None:
    """Two runs of one script with one seed yield identical events, ids included."""
    first = await script(seed=11)
    second = await script(seed=11)
    assert first == second
    assert isinstance(first[0], BidiConnectionStartEvent)
    assert first[0].connection_id == "conn_11_1"


async def test_different_seeds_give_different_ids() -> None:
    """Another seed changes the ids but not what is said."""
    first = await script(seed=1)
    second = await script(seed=2)
    assert response_ids(first) != response_ids(second)
    assert len(response_ids(first)) == len(response_ids(second))
    assert final_texts(first) == final_texts(second)


def response_ids(events: list[BidiOutputEvent]) -> list[str]:
    return [e.response_id for e in events if isinstance(e, BidiResponseCompleteEvent)]


def final_texts(events: list[BidiOutputEvent]) -> list[str]:
    return [e.text for e in events if isinstance(e, BidiTranscriptStreamEvent) and e.is_final]


# ---------------------------------------------------------------------- config


@pytest.mark.parametrize(
    ("kwargs", "where", "suggestion"),
    [
        ({"provider_config": {"seeed": 1}}, "simulated provider_config", "seed"),
        ({"provider_config": {"audio": {"voise": "x"}}}, "provider_config['audio']", "voice"),
        ({"provider_config": {"connection_limit": 5}}, "provider_config", "connection_limit_s"),
        ({"model": "m"}, "SimulatedModel()", "model_id"),
    ],
)
def test_unknown_keys_name_the_closest_and_the_accepted_keys(
    kwargs: dict[str, Any], where: str, suggestion: str
) -> None:
    """A misspelled key is a ConfigError with the closest match and every accepted key."""
    with pytest.raises(ConfigError) as info:
        SimulatedModel(**kwargs)
    message = str(info.value)
    assert where in message
    assert f"Did you mean {suggestion!r}?" in message
    assert "Accepted keys: " in message
    assert suggestion in message.split("Accepted keys: ")[1]


def test_client_config_takes_no_keys() -> None:
    """The simulated model needs no credentials, so any client_config key is refused."""
    with pytest.raises(ConfigError, match=r"'api_key' in simulated client_config, which takes no"):
        SimulatedModel(client_config={"api_key": "secret"})


@pytest.mark.parametrize(
    ("provider_config", "message"),
    [
        (
            {"audio": {"output_sample_rate": 4000}},
            r"\['output_sample_rate'\] must be a whole number of Hz from 8000 to 192000",
        ),
        (
            {"audio": {"input_sample_rate": "16k"}},
            r"\['input_sample_rate'\] must be a whole number of Hz",
        ),
        ({"audio": {"input_sample_rate": 16}}, r"Rates are in Hz, not kHz"),
        ({"audio": {"input_sample_rate": float("nan")}}, r"must be a whole number of Hz"),
        ({"connection_limit_s": float("nan")}, r"'connection_limit_s'\] must be a number"),
        ({"connection_limit_s": float("inf")}, r"'connection_limit_s'\] must be a number"),
        ({"pace": float("inf")}, "'pace' must be a number >= 0"),
        ({"audio": {"channels": 2}}, "channels=1 and format='pcm'"),
        ({"audio": {"format": "opus"}}, "channels=1 and format='pcm'"),
        ({"audio": "loud"}, "must be a dict"),
        ({"connection_limit_s": -1}, r"'connection_limit_s'\] must be a number of seconds > 0"),
        ({"connection_limit_s": "60"}, r"'connection_limit_s'\] must be a number"),
        ({"fault": "disconect"}, "'fault' must be one of error, disconnect"),
        ({"fault_after_turns": 0}, "'fault_after_turns' must be a number >= 1"),
        ({"output_sample_rate": 16000}, "Unknown key 'output_sample_rate'"),
    ],
)
def test_bad_config_values_fail_at_construction(
    provider_config: dict[str, Any], message: str
) -> None:
    """A bad value is a ConfigError from the constructor, not a failure mid-conversation."""
    with pytest.raises(ConfigError, match=message):
        SimulatedModel(provider_config=provider_config)


async def test_config_is_copied_from_the_callers_dict() -> None:
    """Mutating the dict passed in after construction changes nothing in the model."""
    provider_config: dict[str, Any] = {"seed": 3, "audio": {"output_sample_rate": 16000}}
    model = SimulatedModel(provider_config=provider_config)
    provider_config["audio"]["output_sample_rate"] = 48000
    provider_config["seed"] = 99
    assert model.config["provider_config"] == {"seed": 3, "audio": {"output_sample_rate": 16000}}
    await model.start()
    reader = Reader(model)
    try:
        await model.send(BidiTextInputEvent(text="hi"))
        turn = await reader.turn()
    finally:
        await reader.aclose()
        await model.stop()
    assert {e.sample_rate for e in turn if isinstance(e, BidiAudioStreamEvent)} == {16000}
    assert isinstance(turn[0], BidiConnectionStartEvent)
    assert turn[0].connection_id.startswith("conn_3_")


def test_two_instances_share_no_config() -> None:
    """Two models built from one dict have independent config objects."""
    shared: dict[str, Any] = {"audio": {"voice": "a"}}
    one = SimulatedModel(provider_config=shared)
    two = SimulatedModel(provider_config=shared)
    one.config["provider_config"]["audio"]["voice"] = "changed"
    assert two.config["provider_config"]["audio"]["voice"] == "a"
    assert shared["audio"]["voice"] == "a"


def test_model_repr_shows_id_and_state() -> None:
    """repr() names the model id and lifecycle state."""
    assert repr(SimulatedModel(model_id="sim-x")) == "<SimulatedModel model_id='sim-x' state=idle>"


# --------------------------------------------------------------------- limits


async def test_connection_limit_raises_timeout_that_resumes_memory() -> None:
    """connection_limit_s raises BidiModelTimeoutError; its restart_config resumes the talk."""
    model = SimulatedModel(provider_config={"connection_limit_s": 0.5})
    assert model.capabilities.connection_limit_s == 0.5
    await model.start()
    reader = Reader(model)
    await model.send(BidiTextInputEvent(text="my name is ada"))
    await reader.turn()
    with pytest.raises(BidiModelTimeoutError) as info:
        await reader.until(lambda e: False)
    await reader.aclose()
    err = info.value
    assert str(err).startswith("simulated connection reached the configured limit of 0.5 s")
    assert set(err.restart_config) == {"resume_handle"}
    with pytest.raises(BidiModelTimeoutError):  # sending after the limit says so too
        await model.send(BidiTextInputEvent(text="still there?"))
    await model.stop()
    await model.start(**err.restart_config)  # no history: memory comes from the handle
    reader = Reader(model)
    try:
        await model.send(BidiTextInputEvent(text="recall"))
        assert answer(await reader.turn()) == "Earlier you said: my name is ada."
    finally:
        await reader.aclose()
        await model.stop()


async def test_fresh_start_does_not_resume_the_previous_conversation() -> None:
    """After stop() and a plain start(), a timeout's restart_config has no old handle."""
    model = SimulatedModel()
    await model.start()
    reader = Reader(model)
    await model.send(BidiTextInputEvent(text="a secret"))
    await reader.turn()
    await reader.aclose()
    await model.stop()
    await model.start()
    reader = Reader(model)
    await model.send(BidiTextInputEvent(text="[fault:time_limit]"))
    with pytest.raises(BidiModelTimeoutError) as info:
        await reader.until(lambda e: False)
    await reader.aclose()
    await model.stop()
    assert info.value.restart_config == {}


async def test_unknown_restart_config_and_handle_are_refused() -> None:
    """start() names an unknown restart key, and refuses a handle it never issued."""
    model = SimulatedModel()
    with pytest.raises(ConfigError, match=r"'handle'.*Did you mean 'resume_handle'"):
        await model.start(handle="x")
    with pytest.raises(BidiConnectionError, match="Unknown resume_handle 'nope'"):
        await model.start(resume_handle="nope")
    await model.start()  # still usable
    await model.stop()


@pytest.mark.parametrize("turns", [1, 2])
async def test_fault_after_turns_injects_an_error_event(turns: int) -> None:
    """fault_after_turns=N yields a recoverable BidiErrorEvent after the N-th answer."""
    model = SimulatedModel(provider_config={"fault_after_turns": turns, "fault": "error"})
    await model.start()
    reader = Reader(model)
    try:
        for i in range(turns):
            await model.send(BidiTextInputEvent(text=f"turn {i}"))
            turn = await reader.turn()
            assert not [e for e in turn if isinstance(e, BidiErrorEvent)]
        (error,) = [
            e
            for e in await reader.until(lambda e: isinstance(e, BidiErrorEvent))
            if isinstance(e, BidiErrorEvent)
        ]
        assert (error.code, error.recoverable) == ("injected_error", True)
        await model.send(BidiTextInputEvent(text="after"))
        assert answer(await reader.turn()) == "You said: after."
    finally:
        await reader.aclose()
        await model.stop()


async def test_fault_after_turns_disconnect_fails_receive() -> None:
    """fault='disconnect' ends receive() with a retryable BidiConnectionError."""
    model = SimulatedModel(provider_config={"fault_after_turns": 1, "fault": "disconnect"})
    await model.start()
    reader = Reader(model)
    await model.send(BidiTextInputEvent(text="hello"))
    await reader.turn()
    with pytest.raises(BidiConnectionError) as info:
        await reader.until(lambda e: False)
    assert info.value.retryable
    with pytest.raises(BidiConnectionError, match="connection failed"):
        await model.send(BidiTextInputEvent(text="anyone?"))
    await reader.aclose()
    await model.stop()


# ------------------------------------------------------------------ behaviours


async def test_tool_call_carries_json_arguments_and_the_result_is_answered() -> None:
    """Naming a tool calls it with the JSON object in the text; the result is answered."""
    events = await script(seed=0)
    (use,) = [e.tool_use for e in events if isinstance(e, ToolUseStreamEvent)]
    assert use["name"] == "get_weather"
    assert use["input"] == {"city": "Oslo"}
    assert final_texts(events)[-1] == "get_weather returned snow."


async def test_speech_while_answering_interrupts() -> None:
    """Speech during a long answer yields one BidiInterruptionEvent, then the answer to it."""
    model = SimulatedModel()
    await model.start()
    reader = Reader(model)
    try:
        await model.send(BidiTextInputEvent(text="tell me a story"))
        await reader.until(lambda e: isinstance(e, BidiAudioStreamEvent))
        story = next(e for e in reader.events if isinstance(e, BidiAudioStreamEvent)).response_id
        await send_speech(model, "wait", 16000)
        interrupted = await reader.until(completed("interrupted"))
        (barge,) = [e for e in interrupted if isinstance(e, BidiInterruptionEvent)]
        assert barge.response_id == story
        assert barge.reason == "user_speech"
        assert answer(await reader.turn()) == "You said: wait."
    finally:
        await reader.aclose()
        await model.stop()


@pytest.mark.parametrize("rate", [8000, 16000, 48000])
async def test_output_audio_is_at_the_configured_rate(rate: int) -> None:
    """output_sample_rate sets the audio rate, the capability, and the audio says the answer."""
    model = SimulatedModel(provider_config={"audio": {"output_sample_rate": rate}})
    assert model.capabilities.output_sample_rate == rate
    await model.start()
    reader = Reader(model)
    try:
        await model.send(BidiTextInputEvent(text="rate check"))
        turn = await reader.turn()
    finally:
        await reader.aclose()
        await model.stop()
    audio = [e for e in turn if isinstance(e, BidiAudioStreamEvent)]
    assert {e.sample_rate for e in audio} == {rate}
    assert transcribe(b"".join(e.audio for e in audio), rate) == normalize(answer(turn))


async def test_input_at_44_1_khz_is_resampled_and_transcribed() -> None:
    """Audio at a rate the model does not take natively is resampled, then understood."""
    model = SimulatedModel()
    assert model.capabilities.input_sample_rates == (16000,)
    await model.start()
    reader = Reader(model)
    try:
        sent = await send_speech(model, "hello there", 44100)
        user = await reader.until(
            lambda e: isinstance(e, BidiTranscriptStreamEvent) and e.role == "user"
        )
        assert user[-1].text == "hello there"  # type: ignore[union-attr]
        assert answer(await reader.turn()) == "You said: hello there."
        assistant = model.assistant
        assert assistant is not None
        received = sum(n for kind, n in assistant.inputs if kind == "audio")
        # What reached the model is 16 kHz: 16000/44100 of what was sent (to a sample).
        assert abs(received / 2 - sent / 2 * 16000 / 44100) <= 2
    finally:
        await reader.aclose()
        await model.stop()


async def test_image_input_reaches_the_model() -> None:
    """An accepted image is passed on (raw bytes, decoded from base64 if needed)."""
    model = SimulatedModel()
    await model.start()
    try:
        await model.send(
            BidiImageInputEvent(image=b"aGk=", mime_type="image/png", encoding="base64")
        )
        assert model.assistant is not None
        assert model.assistant.inputs == [("image", ("image/png", 2))]
    finally:
        await model.stop()


async def test_truncate_records_the_played_position() -> None:
    """truncate() records (response_id, played_ms), clamped at 0."""
    model = SimulatedModel()
    await model.start()
    try:
        await model.truncate("resp_1", 1234)
        await model.truncate("resp_2", -5)
    finally:
        await model.stop()
    assert model.truncations == [("resp_1", 1234), ("resp_2", 0)]


async def test_history_passed_to_start_is_remembered() -> None:
    """Messages given to start() seed the conversation (recall uses them)."""
    model = SimulatedModel()
    await model.start(messages=[{"role": "user", "content": [{"text": "the sky is green"}]}])
    reader = Reader(model)
    try:
        await model.send(BidiTextInputEvent(text="recall"))
        assert answer(await reader.turn()) == "Earlier you said: the sky is green."
    finally:
        await reader.aclose()
        await model.stop()
