"""Events check their fields when built: a wrong value fails at once, naming the field."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from bidi_core import (
    BidiAudioInputEvent,
    BidiAudioStreamEvent,
    BidiErrorEvent,
    BidiImageInputEvent,
    BidiTextInputEvent,
    BidiToolCancelEvent,
    BidiTranscriptStreamEvent,
    BidiUsageEvent,
    ToolResultEvent,
    ToolUseStreamEvent,
)
from bidi_core.events import EventDecodeError, from_dict
from bidi_core.simulated import SimulatedModel

PCM = bytes(640)


def nested(depth: int, leaf: Any = 1) -> Any:
    """A value nested *depth* lists deep."""
    value = leaf
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("build", "error", "message"),
    [
        pytest.param(
            lambda: BidiAudioInputEvent(audio="hello", sample_rate=16000),  # type: ignore[arg-type]
            TypeError,
            r"BidiAudioInputEvent\.audio must be bytes \(PCM16 samples.*got 'hello', a str",
            id="audio-str",
        ),
        pytest.param(
            lambda: BidiAudioInputEvent(audio=PCM, sample_rate=16000, channels=0),
            ValueError,
            r"BidiAudioInputEvent\.channels must be an int >= 1 \(got 0\)",
            id="audio-zero-channels",
        ),
        pytest.param(
            lambda: BidiAudioInputEvent(audio=PCM, sample_rate=16000, format=None),  # type: ignore[arg-type]
            TypeError,
            r"BidiAudioInputEvent\.format must be a str \(got None, a NoneType\)",
            id="audio-format-none",
        ),
        pytest.param(
            lambda: BidiTextInputEvent(text=None),  # type: ignore[arg-type]
            TypeError,
            r"BidiTextInputEvent\.text must be a str \(got None, a NoneType\)",
            id="text-none",
        ),
        pytest.param(
            lambda: BidiTextInputEvent(text=123),  # type: ignore[arg-type]
            TypeError,
            r"BidiTextInputEvent\.text must be a str \(got 123, a int\)",
            id="text-int",
        ),
        pytest.param(
            lambda: BidiImageInputEvent(
                image=b"!!not base64!!", mime_type="image/png", encoding="base64"
            ),
            ValueError,
            r"BidiImageInputEvent\.image is not valid base64 .*encoding='raw'",
            id="image-bad-base64",
        ),
        pytest.param(
            lambda: BidiImageInputEvent(image=b"\x89PNG", mime_type="image/png", encoding="hex"),  # type: ignore[arg-type]
            ValueError,
            r"BidiImageInputEvent\.encoding must be 'raw' or 'base64' \(got 'hex'\)",
            id="image-encoding",
        ),
        pytest.param(
            lambda: ToolResultEvent(tool_result={}),  # type: ignore[typeddict-item]
            ValueError,
            r"ToolResultEvent\.tool_result is missing the key\(s\) 'toolUseId', 'status'",
            id="tool-result-empty",
        ),
        pytest.param(
            lambda: ToolResultEvent(tool_result="done"),  # type: ignore[arg-type]
            TypeError,
            r"ToolResultEvent\.tool_result must be a dict with keys 'toolUseId'",
            id="tool-result-str",
        ),
        pytest.param(
            lambda: ToolResultEvent(
                tool_result={"toolUseId": "t", "status": "ok", "content": []}  # type: ignore[typeddict-item]
            ),
            ValueError,
            r"tool_result\['status'\] must be 'success' or 'error' \(got 'ok'\)",
            id="tool-result-status",
        ),
        pytest.param(
            lambda: ToolResultEvent(
                tool_result={"toolUseId": "t", "status": "success", "content": [{"text": 3}]}  # type: ignore[typeddict-item]
            ),
            TypeError,
            r"tool_result\['content'\]\[0\]\['text'\] must be a str \(got 3, a int\)",
            id="tool-result-text-int",
        ),
        pytest.param(
            lambda: ToolResultEvent(
                tool_result={"toolUseId": "t", "status": "success", "content": [{"json": math.nan}]}
            ),
            ValueError,
            r"tool_result must be JSON data, but it has nan at \['content'\]\[0\]\['json'\]",
            id="tool-result-nan",
        ),
        pytest.param(
            lambda: ToolResultEvent(
                tool_result={
                    "toolUseId": "t",
                    "status": "success",
                    "content": [{"json": nested(1200)}],
                }
            ),
            ValueError,
            r"tool_result must be JSON data, but it has nesting deeper than 100 levels",
            id="tool-result-deep",
        ),
        pytest.param(
            lambda: ToolUseStreamEvent(tool_use={"toolUseId": 1, "name": "f", "input": {}}),  # type: ignore[typeddict-item]
            TypeError,
            r"ToolUseStreamEvent\.tool_use\['toolUseId'\] must be a str \(got 1, a int\)",
            id="tool-use-id-int",
        ),
        pytest.param(
            lambda: BidiErrorEvent(message="m", details={"at": math.inf}),
            ValueError,
            r"BidiErrorEvent\.details must be JSON data, but it has inf at \['at'\]",
            id="error-details-inf",
        ),
        pytest.param(
            lambda: BidiErrorEvent(message="m", details="oops"),  # type: ignore[arg-type]
            TypeError,
            r"BidiErrorEvent\.details must be a dict \(got 'oops', a str\)",
            id="error-details-str",
        ),
        pytest.param(
            lambda: BidiTranscriptStreamEvent(role="user", text="hi", is_final="yes"),  # type: ignore[arg-type]
            TypeError,
            r"BidiTranscriptStreamEvent\.is_final must be a bool \(got 'yes', a str\)",
            id="transcript-final-str",
        ),
        pytest.param(
            lambda: BidiUsageEvent(input_tokens=1.5, output_tokens=0, total_tokens=1),  # type: ignore[arg-type]
            TypeError,
            r"BidiUsageEvent\.input_tokens must be an int \(got 1\.5, a float\)",
            id="usage-float",
        ),
        pytest.param(
            lambda: BidiToolCancelEvent(tool_use_ids=(1, 2)),  # type: ignore[arg-type]
            TypeError,
            r"BidiToolCancelEvent\.tool_use_ids\[0\] must be a str \(got 1, a int\)",
            id="cancel-int-ids",
        ),
    ],
)
def test_wrong_field_is_refused_naming_the_field(build: Any, error: type, message: str) -> None:
    """A wrong-typed or invalid field raises TypeError/ValueError naming class and field."""
    with pytest.raises(error, match=message):
        build()


@pytest.mark.parametrize(
    ("rate", "error", "hint"),
    [
        pytest.param(0, ValueError, r"\(got 0\)", id="zero"),
        pytest.param(16, ValueError, r"\(got 16\)\. Rates are in Hz, not kHz", id="khz"),
        pytest.param(1, ValueError, r"\(got 1\)", id="one"),
        pytest.param(1e9, ValueError, r"\(got 1000000000\.0\)", id="huge"),
        pytest.param(math.nan, ValueError, r"\(got nan\)", id="nan"),
        pytest.param(math.inf, ValueError, r"\(got inf\)", id="inf"),
        pytest.param(16000.5, ValueError, r"\(got 16000\.5\)", id="fraction"),
        pytest.param("16000", TypeError, r"\(got '16000'\), a str", id="str"),
        pytest.param(True, TypeError, r"\(got True\), a bool", id="bool"),
    ],
)
@pytest.mark.parametrize("cls", [BidiAudioInputEvent, BidiAudioStreamEvent])
def test_sample_rate_outside_8k_to_192k_is_refused(
    cls: type[Any], rate: Any, error: type, hint: str
) -> None:
    """Audio events take whole rates from 8,000 to 192,000 Hz; the rest is refused at once."""
    with pytest.raises(
        error,
        match=rf"{cls.__name__}\.sample_rate must be a whole number of Hz from 8000 to 192000 "
        + hint,
    ):
        cls(audio=PCM, sample_rate=rate)


def test_integral_rates_and_byte_buffers_are_normalised() -> None:
    """16000.0 becomes 16000 and a bytearray becomes bytes; the event stays hashable."""
    event = BidiAudioInputEvent(audio=bytearray(PCM), sample_rate=16000.0)  # type: ignore[arg-type]
    assert event.sample_rate == 16000
    assert type(event.sample_rate) is int
    assert type(event.audio) is bytes
    assert event == BidiAudioInputEvent(audio=PCM, sample_rate=16000)
    hash(event)


@pytest.mark.parametrize("rate", [8000, 16000, 24000, 44100, 48000, 192_000])
def test_usual_rates_are_accepted_unchanged(rate: int) -> None:
    """Every usual rate from 8 kHz to 192 kHz is kept as given."""
    assert BidiAudioInputEvent(audio=PCM, sample_rate=rate).sample_rate == rate


async def test_sixteen_hz_never_reaches_the_model() -> None:
    """sample_rate=16 (kHz for Hz) fails before send(), so no megabyte of resampled audio."""
    model = SimulatedModel()
    await model.start()
    try:
        with pytest.raises(ValueError, match="not kHz"):
            await model.send(BidiAudioInputEvent(audio=PCM, sample_rate=16))
        assert model.assistant is not None
        assert model.assistant.inputs == []
    finally:
        await model.stop()


def test_every_event_dict_is_strict_json() -> None:
    """to_dict() of any event that could be built passes json.dumps(allow_nan=False)."""
    result = ToolResultEvent(
        tool_result={"toolUseId": "t", "status": "success", "content": [{"json": {"x": 1.5}}]}
    )
    assert json.loads(json.dumps(result.to_dict(), allow_nan=False)) == result.to_dict()


@pytest.mark.parametrize("depth", [1000, 1200, 1400])
def test_from_dict_of_deep_nesting_is_a_decode_error(depth: int) -> None:
    """from_dict() of a result nested 1,000-1,400 deep: EventDecodeError, not RecursionError."""
    data = {
        "type": "tool_result",
        "tool_result": {
            "toolUseId": "t",
            "status": "success",
            "content": [{"json": nested(depth)}],
        },
    }
    with pytest.raises(EventDecodeError, match="nesting deeper than 100 levels"):
        from_dict(data)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param(
            {"type": "bidi_audio_input", "audio": "AAA=", "sample_rate": 16},
            r"'bidi_audio_input' event is invalid: .*sample_rate must be a whole number",
            id="rate",
        ),
        pytest.param(
            {
                "type": "tool_result",
                "tool_result": {"toolUseId": "t", "status": "x", "content": []},
            },
            r"'tool_result' field 'tool_result'\['status'\] must be one of",
            id="status",
        ),
        pytest.param(
            {"type": "bidi_error", "message": "m", "details": {"x": math.nan}},
            r"'bidi_error' event is invalid: .*details must be JSON data, but it has nan",
            id="nan",
        ),
    ],
)
def test_from_dict_reports_invalid_fields_as_decode_errors(
    data: dict[str, Any], message: str
) -> None:
    """A field the event itself refuses comes out of from_dict() as EventDecodeError."""
    with pytest.raises(EventDecodeError, match=message):
        from_dict(data)
