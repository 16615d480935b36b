"""Fuzzing from_dict() and the fuzz kit: garbage in, a decode error out, never a crash.

The ``ci`` hypothesis profile runs 100 examples per test; ``nox -s fuzz`` runs the
``thorough`` profile (1,000).
"""

from __future__ import annotations

import json
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bidi_core import events as ev
from bidi_core.events import EventDecodeError, event_types, from_dict
from bidi_core.testing.fuzz import (
    DecoderCrashError,
    EventCheckError,
    check_decoder,
    check_event,
    event_kwargs,
    frame_sequences,
    json_values,
    mutated,
    raw_frames,
)

SAMPLES: list[ev.BidiEvent] = [
    ev.BidiAudioDroppedEvent(dropped_chunks=2, dropped_bytes=640),
    ev.BidiAudioInputEvent(audio=b"\x00\x01" * 8, sample_rate=16000),
    ev.BidiAudioStreamEvent(audio=b"\x02\x03" * 8, sample_rate=24000, response_id="r1"),
    ev.BidiConnectionCloseEvent(connection_id="c1", reason="stopped"),
    ev.BidiConnectionRestartEvent(reason="timeout", message="m", restart_config={"h": "x"}),
    ev.BidiConnectionStartEvent(connection_id="c1", model="m1"),
    ev.BidiErrorEvent(message="bad", code="c", recoverable=True, details={"k": [1, "v"]}),
    ev.BidiImageInputEvent(image=b"\xff\xd8\xff", mime_type="image/jpeg"),
    ev.BidiInterruptionEvent(reason="user_speech", response_id="r1"),
    ev.BidiResponseCompleteEvent(response_id="r1", stop_reason="complete"),
    ev.BidiResponseStartEvent(response_id="r1"),
    ev.BidiTextInputEvent(text="hi"),
    ev.BidiToolCancelEvent(tool_use_ids=("t1", "t2")),
    ev.BidiTranscriptStreamEvent(role="assistant", text="hi", is_final=True, item_id="i1"),
    ev.BidiUsageEvent(
        input_tokens=1, output_tokens=2, total_tokens=3, input_details={"text": 1}, cached_tokens=0
    ),
    ev.ToolResultEvent(
        tool_result={"toolUseId": "t1", "status": "success", "content": [{"json": {"a": 1}}]}
    ),
    ev.ToolUseStreamEvent(tool_use={"toolUseId": "t1", "name": "f", "input": {"a": [1]}}),
]
VALID = [json.loads(json.dumps(e.to_dict())) for e in SAMPLES]


def test_samples_cover_every_event_type() -> None:
    """The fuzz seeds hold one valid dict of every event type."""
    assert sorted(d["type"] for d in VALID) == sorted(event_types())


def _decode(data: Any) -> None:
    try:
        event = from_dict(data)
    except EventDecodeError:
        return
    assert isinstance(event, ev.BidiEvent)
    assert from_dict(json.loads(json.dumps(event.to_dict()))) == event


@given(data=mutated(VALID))
def test_from_dict_survives_mutated_events(data: Any) -> None:
    """A valid event dict with fields deleted or mistyped decodes or raises EventDecodeError."""
    _decode(data)


@given(data=json_values() | st.dictionaries(st.text(max_size=8), json_values(), max_size=6))
def test_from_dict_survives_random_json(data: Any) -> None:
    """Random JSON (including dicts with random keys) never crashes from_dict()."""
    _decode(data)


@given(type_=st.sampled_from(sorted(event_types())), data=st.dictionaries(st.text(), json_values()))
def test_from_dict_survives_random_fields_of_a_real_type(type_: str, data: dict[str, Any]) -> None:
    """A real type with random fields decodes or raises EventDecodeError."""
    _decode({**data, "type": type_})


@given(frame=raw_frames(VALID))
def test_from_dict_survives_truncated_and_garbage_json(frame: bytes) -> None:
    """Whatever parses out of truncated or garbage JSON, from_dict() answers with a typed error."""
    try:
        data = json.loads(frame)
    except ValueError:
        return
    _decode(data)


def test_check_decoder_accepts_events_and_typed_errors() -> None:
    """check_decoder() passes events through and treats a BidiError as a defined outcome."""
    from bidi_core import ProviderProtocolError

    assert check_decoder(lambda: SAMPLES[:2]) == SAMPLES[:2]

    def typed() -> list[Any]:
        raise ProviderProtocolError("bad frame")

    assert check_decoder(typed) == []


def _smuggled_bytes() -> ev.BidiErrorEvent:
    """An event whose details were swapped for non-JSON after its checks ran."""
    event = ev.BidiErrorEvent(message="m")
    object.__setattr__(event, "details", {"b": b"x"})
    return event


@pytest.mark.parametrize(
    ("decode", "match"),
    [
        (lambda: {}["missing"], "KeyError"),
        (lambda: [None.attr], "AttributeError"),  # type: ignore[attr-defined]
        (lambda: ["not an event"], "non-events"),
        (lambda: [ev.BidiErrorEvent(message="m", details={"b": b"x"})], "ValueError: .*details"),
        (lambda: [_smuggled_bytes()], "cannot be serialized"),
    ],
)
def test_check_decoder_flags_crashes(decode: Any, match: str) -> None:
    """check_decoder() fails on untyped exceptions, non-events and unserializable events."""
    with pytest.raises(DecoderCrashError, match=match):
        check_decoder(decode)


@given(frames=frame_sequences(VALID[:3], max_size=4))
def test_frame_sequences_start_with_valid_frames(frames: list[bytes]) -> None:
    """Sequences are bytes, and never empty (there is always something to decode)."""
    assert frames
    assert all(isinstance(f, bytes) for f in frames)


def test_mutated_needs_a_seed() -> None:
    """mutated([]) is an error saying a valid frame is needed."""
    with pytest.raises(ValueError, match="at least one valid frame"):
        mutated([])


# ---------------------------------------------------------------- building events

EVENT_CLASSES = sorted(event_types().values(), key=lambda cls: cls.type)


@pytest.mark.parametrize("cls", EVENT_CLASSES, ids=lambda cls: cls.type)
@given(data=st.data())
def test_building_any_event_with_any_values_is_an_event_or_a_clear_refusal(
    cls: type[ev.BidiEvent], data: st.DataObject
) -> None:
    """Random values for every field: a valid, round-tripping event or a TypeError/ValueError
    naming the field, never another exception."""
    check_event(cls, data.draw(event_kwargs(cls)))


@pytest.mark.parametrize(
    ("cls", "kwargs", "match"),
    [
        (ev.BidiTextInputEvent, {"text": object()}, "text"),
        (ev.BidiToolCancelEvent, {"tool_use_ids": 5}, "tool_use_ids"),
        (ev.BidiAudioInputEvent, {"audio": b"", "sample_rate": float("nan")}, "sample_rate"),
    ],
)
def test_check_event_accepts_clear_refusals(
    cls: type[ev.BidiEvent], kwargs: dict[str, Any], match: str
) -> None:
    """check_event() returns None for a refusal naming the field."""
    assert check_event(cls, kwargs) is None


def test_check_event_flags_refusals_that_name_no_field() -> None:
    """A TypeError that does not say which field is wrong is a failure of the event class."""

    @attrs.frozen(kw_only=True)
    class Sloppy(ev.BidiEvent):
        value: int

        def __attrs_post_init__(self) -> None:
            raise TypeError("bad input")

    with pytest.raises(EventCheckError, match="without naming the field"):
        check_event(Sloppy, {"value": 1})


def test_check_event_flags_other_exceptions() -> None:
    """A KeyError (or anything but TypeError/ValueError) from building an event is a failure."""

    @attrs.frozen(kw_only=True)
    class Crashy(ev.BidiEvent):
        value: int

        def __attrs_post_init__(self) -> None:
            raise KeyError("value")

    with pytest.raises(EventCheckError, match="raised KeyError"):
        check_event(Crashy, {"value": 1})
