"""Bad input gets a clear error saying what was expected; nothing is lost; the model goes on."""

from __future__ import annotations

import asyncio
from typing import Any

import attrs
import pytest

from bidi_core import (
    BidiAudioInputEvent,
    BidiImageInputEvent,
    BidiModelStateError,
    BidiOutputEvent,
    BidiResponseCompleteEvent,
    BidiResponseStartEvent,
    BidiTextInputEvent,
    BidiTranscriptStreamEvent,
    ToolResultEvent,
    UnsupportedInputError,
)
from bidi_core.simulated import SimulatedModel


class StrictModel(SimulatedModel):
    """A simulated model that takes only text and 16 kHz mono audio, without tools."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.capabilities = attrs.evolve(
            self.capabilities,
            input_modalities=("text", "audio"),
            resamples_input=False,
            tools=False,
        )


RESULT = ToolResultEvent(tool_result={"toolUseId": "t", "status": "success", "content": []})

BAD_FOR_ANY_MODEL = [
    pytest.param(
        BidiResponseStartEvent(response_id="r"),
        r"cannot send a BidiResponseStartEvent; send\(\) takes one of: BidiTextInputEvent",
        id="output-event",
    ),
    pytest.param("hello", r"cannot send a str; send\(\) takes one of", id="plain-str"),
    pytest.param({"type": "bidi_text_input"}, r"cannot send a dict", id="dict"),
    pytest.param(
        BidiAudioInputEvent(audio=b"\x00\x00", sample_rate=16000, format="opus"),
        r"takes audio with format='pcm' \(16-bit little-endian\), got format='opus'",
        id="non-pcm",
    ),
    pytest.param(
        BidiAudioInputEvent(audio=b"\x00\x01\x02", sample_rate=16000),
        r"got 3 bytes of PCM16 audio with 1 channel\(s\), which is not a whole number",
        id="odd-mono",
    ),
    pytest.param(
        BidiAudioInputEvent(audio=bytes(6), sample_rate=16000, channels=2),
        r"got 6 bytes of PCM16 audio with 2 channel\(s\), which is not a whole number",
        id="odd-stereo",
    ),
    pytest.param(
        BidiTextInputEvent(text="I said", role="assistant"),
        r"takes text input with role 'user'.*got role 'assistant'.*start\(messages=\.\.\.\)",
        id="assistant-role",
    ),
    pytest.param(
        BidiImageInputEvent(image=b"GIF89a", mime_type="image/gif"),
        r"takes images of type image/jpeg, image/png, got mime_type='image/gif'",
        id="image-type",
    ),
]

BAD_FOR_STRICT_MODEL = [
    pytest.param(
        BidiAudioInputEvent(audio=bytes(640), sample_rate=44100),
        r"takes audio at input_sample_rates \(16000\) Hz, got sample_rate=44100; resample it",
        id="refused-rate",
    ),
    pytest.param(
        BidiAudioInputEvent(audio=bytes(640), sample_rate=16000, channels=2),
        r"takes mono audio \(channels=1\), got channels=2",
        id="stereo-refused",
    ),
    pytest.param(
        BidiImageInputEvent(image=b"\xff\xd8", mime_type="image/jpeg"),
        r"does not take image input \(capabilities.input_modalities is text, audio\)",
        id="image-without-image-input",
    ),
    pytest.param(
        RESULT, r"does not support tools \(capabilities.tools is False\)", id="tool-result"
    ),
]


async def answers_after_bad_input(model: SimulatedModel, bad: Any, message: str) -> list[str]:
    """Send a turn, then *bad* (checking the error), then another turn; return the answers."""
    await model.start()
    answers: list[str] = []
    events: list[BidiOutputEvent] = []
    try:
        receiver = aiter(model.receive())
        await model.send(BidiTextInputEvent(text="before"))
        with pytest.raises(UnsupportedInputError, match=message):
            await model.send(bad)
        await model.send(BidiTextInputEvent(text="after"))
        async with asyncio.timeout(10):
            async for event in receiver:
                events.append(event)
                if isinstance(event, BidiTranscriptStreamEvent) and event.is_final:
                    answers.append(event.text)
                if isinstance(event, BidiResponseCompleteEvent) and len(answers) == 2:
                    break
        await receiver.aclose()  # type: ignore[attr-defined]
    finally:
        await model.stop()
    return answers


@pytest.mark.parametrize(("bad", "message"), BAD_FOR_ANY_MODEL)
async def test_bad_input_is_refused_and_nothing_is_lost(bad: Any, message: str) -> None:
    """Bad input raises UnsupportedInputError; input before it is answered, and so is after."""
    answers = await answers_after_bad_input(SimulatedModel(), bad, message)
    assert answers == ["You said: before.", "You said: after."]


@pytest.mark.parametrize(("bad", "message"), BAD_FOR_STRICT_MODEL)
async def test_input_outside_the_capabilities_is_refused(bad: Any, message: str) -> None:
    """What the capabilities exclude is refused, naming the capability; the model goes on."""
    answers = await answers_after_bad_input(StrictModel(), bad, message)
    assert answers == ["You said: before.", "You said: after."]


async def test_strict_model_takes_audio_at_its_own_rate() -> None:
    """A model that does not resample still takes mono PCM at an accepted rate."""
    model = StrictModel()
    await model.start()
    try:
        await model.send(BidiAudioInputEvent(audio=bytes(640), sample_rate=16000))
        assert model.assistant is not None
        assert model.assistant.inputs == [("audio", 640)]
    finally:
        await model.stop()


async def test_stereo_is_mixed_to_mono_when_the_model_resamples() -> None:
    """Stereo input is averaged to mono before it reaches the provider."""
    model = SimulatedModel()
    await model.start()
    try:
        await model.send(BidiAudioInputEvent(audio=bytes(640), sample_rate=16000, channels=2))
        assert model.assistant is not None
        assert model.assistant.inputs == [("audio", 320)]
    finally:
        await model.stop()


# ------------------------------------------------------------------ lifecycle


async def test_send_before_start_says_to_start_first() -> None:
    """send() before start() is a BidiModelStateError (a RuntimeError) saying so."""
    model = SimulatedModel()
    with pytest.raises(BidiModelStateError, match=r"Cannot send an event before start\(\)"):
        await model.send(BidiTextInputEvent(text="early"))
    with pytest.raises(RuntimeError):
        await model.send(BidiTextInputEvent(text="early"))


async def test_receive_before_start_says_to_start_first() -> None:
    """receive() before start() is a BidiModelStateError saying so."""
    model = SimulatedModel()
    with pytest.raises(BidiModelStateError, match=r"Cannot receive events before start\(\)"):
        await anext(aiter(model.receive()))


async def test_double_start_says_to_stop_first_and_keeps_the_connection() -> None:
    """A second start() is refused, and the first connection keeps working."""
    model = SimulatedModel()
    await model.start()
    try:
        with pytest.raises(BidiModelStateError, match=r"it is open\. Call stop\(\) before"):
            await model.start()
        answers = []
        await model.send(BidiTextInputEvent(text="still here"))
        async with asyncio.timeout(10):
            async for event in model.receive():
                if isinstance(event, BidiTranscriptStreamEvent) and event.is_final:
                    answers.append(event.text)
                    break
        assert answers == ["You said: still here."]
    finally:
        await model.stop()


async def test_send_after_stop_is_refused() -> None:
    """After stop(), send() is refused like before start()."""
    model = SimulatedModel()
    await model.start()
    await model.stop()
    with pytest.raises(BidiModelStateError, match="before start"):
        await model.send(BidiTextInputEvent(text="late"))


async def test_second_concurrent_receiver_is_refused() -> None:
    """Only one task may receive on a connection at a time."""
    model = SimulatedModel()
    await model.start()
    started = asyncio.Event()

    async def first() -> None:
        async for _ in model.receive():
            started.set()

    task = asyncio.create_task(first())
    try:
        await asyncio.wait_for(started.wait(), 10)
        with pytest.raises(BidiModelStateError, match="another task is currently receiving"):
            await anext(aiter(model.receive()))
    finally:
        await model.stop()
        await task
