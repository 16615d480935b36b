"""Events: exact JSON round trip for every class, immutability, and clear decode errors."""

from __future__ import annotations

import base64
import json
import typing
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bidi_core import events
from bidi_core.events import (
    BidiAudioInputEvent,
    BidiAudioStreamEvent,
    BidiEvent,
    BidiImageInputEvent,
    BidiTextInputEvent,
    BidiToolCancelEvent,
    BidiUsageEvent,
    EventDecodeError,
    ToolUseStreamEvent,
    event_types,
    from_dict,
)
from bidi_core.testing.fuzz import valid_event_kwargs

EVENT_CLASSES = sorted(event_types().values(), key=lambda cls: cls.type)

FIELD_SAMPLES: dict[str, Any] = {"sample_rate": 16000}


def event_strategy(cls: type[BidiEvent]) -> st.SearchStrategy[BidiEvent]:
    """Every field valid for its type (the fuzz kit's strategy); defaults sometimes left out."""
    return valid_event_kwargs(cls).map(lambda kw: cls(**kw))


def sample(cls: type[BidiEvent]) -> BidiEvent:
    """A small deterministic instance of *cls* (for non-property checks)."""
    values = {str: "x", bytes: b"\x00\x01", int: 1, bool: True}
    kwargs: dict[str, Any] = {}
    hints = typing.get_type_hints(cls)
    for field in attrs.fields(cls):  # type: ignore[arg-type]
        if field.default is not attrs.NOTHING:
            continue
        hint = hints[field.name]
        if field.name in FIELD_SAMPLES:
            kwargs[field.name] = FIELD_SAMPLES[field.name]
        elif hint in values:
            kwargs[field.name] = values[hint]
        elif typing.get_origin(hint) is tuple:
            kwargs[field.name] = ("a",)
        elif hint is events.ToolUse:
            kwargs[field.name] = {"toolUseId": "t1", "name": "n", "input": {}}
        elif hint is events.ToolResult:
            kwargs[field.name] = {"toolUseId": "t1", "status": "success", "content": []}
        else:
            raise AssertionError(f"no sample for {cls.__name__}.{field.name}: {hint!r}")
    return cls(**kwargs)


def json_round_trip(event: BidiEvent) -> BidiEvent:
    return from_dict(json.loads(json.dumps(event.to_dict(), allow_nan=False)))


# ------------------------------------------------------------------ round trip


@pytest.mark.parametrize("cls", EVENT_CLASSES, ids=lambda cls: cls.type)
@given(data=st.data())
def test_every_event_round_trips_exactly_through_json(cls: type[BidiEvent], data: Any) -> None:
    """to_dict() -> JSON text -> from_dict() rebuilds an equal event of the same class."""
    event = data.draw(event_strategy(cls))
    rebuilt = json_round_trip(event)
    assert type(rebuilt) is cls
    assert rebuilt == event
    assert rebuilt.to_dict() == event.to_dict()
    for field in attrs.fields(cls):  # type: ignore[arg-type]
        assert type(getattr(rebuilt, field.name)) is type(getattr(event, field.name))


@given(audio=st.binary(max_size=256))
def test_bytes_travel_as_base64_text(audio: bytes) -> None:
    """Audio bytes (also empty) become an ASCII base64 string in to_dict()."""
    data = BidiAudioInputEvent(audio=audio, sample_rate=16000).to_dict()
    assert isinstance(data["audio"], str)

    assert base64.b64decode(data["audio"], validate=True) == audio


def test_every_exported_event_class_is_in_the_type_table() -> None:
    """event_types() lists every event class, so the round-trip test covers them all."""
    exported = {
        getattr(events, name)
        for name in events.__all__
        if isinstance(getattr(events, name), type)
        and issubclass(getattr(events, name), BidiEvent)
        and getattr(events, name) is not BidiEvent
    }
    assert exported == set(event_types().values())
    assert all(cls.type == key for key, cls in event_types().items())


def test_event_types_returns_a_copy() -> None:
    """Mutating the returned table does not change what from_dict() knows."""
    table = event_types()
    table.clear()
    assert from_dict({"type": "bidi_text_input", "text": "hi"}) == BidiTextInputEvent(text="hi")


def test_omitted_defaulted_fields_take_their_defaults() -> None:
    """A dict may leave out fields that have defaults."""
    event = from_dict({"type": "bidi_audio_input", "audio": "", "sample_rate": 8000})
    assert event == BidiAudioInputEvent(audio=b"", sample_rate=8000, format="pcm", channels=1)


def test_to_dict_does_not_share_containers_with_the_event() -> None:
    """Mutating to_dict() output leaves the (frozen) event unchanged."""
    event = ToolUseStreamEvent(tool_use={"toolUseId": "a", "name": "n", "input": {"k": [1]}})
    data = event.to_dict()
    data["tool_use"]["input"]["k"].append(2)
    assert event.tool_use["input"] == {"k": [1]}


# --------------------------------------------------------------- immutability


@pytest.mark.parametrize("cls", EVENT_CLASSES, ids=lambda cls: cls.type)
def test_events_are_frozen(cls: type[BidiEvent]) -> None:
    """Assigning to an event's field raises; change events with attrs.evolve()."""
    event = sample(cls)
    name = attrs.fields(cls)[0].name  # type: ignore[arg-type]
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        setattr(event, name, getattr(event, name))


@pytest.mark.parametrize("cls", EVENT_CLASSES, ids=lambda cls: cls.type)
def test_events_are_keyword_only(cls: type[BidiEvent]) -> None:
    """Positional construction is refused, so field order can never silently shift."""
    event = sample(cls)
    positional = [getattr(event, f.name) for f in attrs.fields(cls)]  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        cls(*positional)


@pytest.mark.parametrize("cls", EVENT_CLASSES, ids=lambda cls: cls.type)
def test_events_are_hashable_and_equal_events_hash_alike(cls: type[BidiEvent]) -> None:
    """Events can be put in sets and dict keys; equal events have equal hashes."""
    event = sample(cls)
    twin = from_dict(event.to_dict())
    assert twin == event
    assert hash(twin) == hash(event)
    assert len({event, twin}) == 1


@pytest.mark.parametrize(
    "event",
    [
        BidiAudioInputEvent(audio=bytes(96000), sample_rate=48000),
        BidiAudioStreamEvent(audio=bytes(96000), sample_rate=24000),
        BidiImageInputEvent(image=bytes(96000), mime_type="image/png"),
    ],
    ids=lambda e: e.type,
)
def test_binary_payloads_have_a_short_repr(event: BidiEvent) -> None:
    """Audio and image bytes show as '<N bytes>' so logs and test diffs stay readable."""
    text = repr(event)
    assert "<96000 bytes>" in text
    assert len(text) < 200


def test_tool_use_ids_refuse_a_bare_string() -> None:
    """A single id passed as a str is an error, not a tuple of its characters."""
    with pytest.raises(TypeError, match="wrap it"):
        BidiToolCancelEvent(tool_use_ids="call_1")  # type: ignore[arg-type]
    assert BidiToolCancelEvent(tool_use_ids=["call_1"]).tool_use_ids == ("call_1",)


def test_base64_encoded_image_gives_raw_bytes() -> None:
    """raw_bytes() returns the file bytes for both encodings."""
    raw = BidiImageInputEvent(image=b"\x89PNG", mime_type="image/png")
    encoded = BidiImageInputEvent(image=b"iVBORw==", mime_type="image/png", encoding="base64")
    assert raw.raw_bytes() == encoded.raw_bytes() == b"\x89PNG"


# ----------------------------------------------------------------- bad input

TEXT = {"type": "bidi_text_input", "text": "hi"}
AUDIO = {"type": "bidi_audio_input", "audio": "AAA=", "sample_rate": 16000}
USE = {"toolUseId": "t1", "name": "n", "input": {}}
RESULT = {"toolUseId": "t1", "status": "success", "content": [{"text": "ok"}]}

BAD_DICTS = [
    pytest.param(
        {"type": "bidi_txt_input", "text": "hi"},
        r"Unknown event type 'bidi_txt_input'\. Did you mean 'bidi_text_input'\?",
        id="unknown-type-close-match",
    ),
    pytest.param(
        {"type": "zzz"}, r"Unknown event type 'zzz'\. Known types: .*bidi_usage", id="unknown-type"
    ),
    pytest.param({"type": 7}, r"Unknown event type 7\.", id="type-not-a-str"),
    pytest.param({"text": "hi"}, r"needs a 'type' key.*\['text'\]", id="no-type"),
    pytest.param(
        {"type": "bidi_text_input"}, r"missing the required field 'text'", id="missing-field"
    ),
    pytest.param({**TEXT, "text": 5}, r"field 'text' must be a str \(got int\)", id="mistyped-str"),
    pytest.param(
        {**AUDIO, "sample_rate": "16000"},
        r"field 'sample_rate' must be an int \(got str\)",
        id="mistyped-int",
    ),
    pytest.param(
        {**AUDIO, "channels": True},
        r"field 'channels' must be an int \(got bool\)",
        id="bool-is-not-int",
    ),
    pytest.param(
        {**TEXT, "colour": "red"},
        r"unknown field\(s\) 'colour'; accepted fields: text, role",
        id="unknown-field",
    ),
    pytest.param({**TEXT, 1: 2, "b": 3}, r"unknown field\(s\) 1, 'b'", id="non-str-key"),
    pytest.param({**AUDIO, "audio": "AA"}, r"field 'audio' is not valid base64", id="bad-padding"),
    pytest.param({**AUDIO, "audio": "é="}, r"field 'audio' is not valid base64", id="non-ascii"),
    pytest.param(
        {**AUDIO, "audio": [0, 1]},
        r"field 'audio' must be a base64 string \(got list\)",
        id="bytes-not-str",
    ),
    pytest.param(
        {"type": "bidi_response_complete", "response_id": "r", "stop_reason": "done"},
        r"field 'stop_reason' must be one of \('complete'.*\(got 'done'\)",
        id="bad-literal",
    ),
    pytest.param(
        {"type": "bidi_tool_cancel", "tool_use_ids": "abc"},
        r"field 'tool_use_ids' must be a list \(got str\)",
        id="tuple-not-list",
    ),
    pytest.param(
        {"type": "bidi_tool_cancel", "tool_use_ids": ["a", 2]},
        r"field 'tool_use_ids'\[1\] must be a str \(got int\)",
        id="tuple-item",
    ),
    pytest.param(
        {
            "type": "bidi_usage",
            "input_tokens": 1,
            "output_tokens": 1,
            "total_tokens": 2,
            "input_details": {"text": "3"},
        },
        r"field 'input_details'\['text'\] must be an int \(got str\)",
        id="dict-value",
    ),
    pytest.param(
        {"type": "bidi_error", "message": "m", "details": [1]},
        r"field 'details' must be an object \(got list\)",
        id="dict-not-object",
    ),
    pytest.param(
        {"type": "bidi_error", "message": "m", "details": {1: "x"}},
        r"field 'details' must have str keys \(got 1\)",
        id="dict-key",
    ),
    pytest.param(
        {"type": "tool_use_stream", "tool_use": {"toolUseId": "t1", "input": {}}},
        r"field 'tool_use' is missing key\(s\) 'name'",
        id="tool-use-missing-key",
    ),
    pytest.param(
        {"type": "tool_use_stream", "tool_use": {**USE, "toolUseId": 5}},
        r"field 'tool_use'\['toolUseId'\] must be a str \(got int\)",
        id="tool-use-mistyped",
    ),
    pytest.param(
        {"type": "tool_result", "tool_result": {**RESULT, "status": "fine"}},
        r"\['status'\] must be one of \('success', 'error'\) \(got 'fine'\)",
        id="tool-result-status",
    ),
    pytest.param(
        {"type": "tool_result", "tool_result": {**RESULT, "content": "ok"}},
        r"\['content'\] must be a list \(got str\)",
        id="tool-result-content",
    ),
    pytest.param(
        {"type": "tool_result", "tool_result": {**RESULT, "content": [{"text": 3}]}},
        r"\['content'\]\[0\]\['text'\] must be a str \(got int\)",
        id="tool-result-content-item",
    ),
    pytest.param(
        {"type": "tool_result", "tool_result": "done"},
        r"field 'tool_result' must be an object \(got str\)",
        id="tool-result-not-object",
    ),
]


@pytest.mark.parametrize(("data", "message"), BAD_DICTS)
def test_bad_dicts_raise_event_decode_error_naming_the_problem(
    data: dict[Any, Any], message: str
) -> None:
    """from_dict() refuses a bad dict with a message naming the field and what was expected."""
    with pytest.raises(EventDecodeError, match=message):
        from_dict(data)


@pytest.mark.parametrize("data", [["type", "bidi_text_input"], "bidi_text_input", None, 3])
def test_non_mappings_are_refused(data: Any) -> None:
    """Anything but a mapping is an EventDecodeError saying a mapping was expected."""
    with pytest.raises(EventDecodeError, match=r"must be a mapping with a 'type' key"):
        from_dict(data)


def test_decode_error_is_a_value_error() -> None:
    """EventDecodeError can be caught as ValueError."""
    assert issubclass(EventDecodeError, ValueError)


def test_extra_tool_result_keys_are_kept() -> None:
    """Keys outside the ToolResult shape survive (other libraries add their own)."""
    data = {"type": "tool_result", "tool_result": {**RESULT, "x-trace": "abc"}}
    assert from_dict(data).tool_result["x-trace"] == "abc"  # type: ignore[attr-defined]


def test_usage_defaults_are_independent_per_event() -> None:
    """Default detail dicts are not shared between events."""
    first = BidiUsageEvent(input_tokens=1, output_tokens=1, total_tokens=2)
    second = BidiUsageEvent(input_tokens=1, output_tokens=1, total_tokens=2)
    first.input_details["text"] = 1
    assert second.input_details == {}
