"""Fuzzing the GA server-frame decoder: garbage frames give error events, never a crash.

The ``ci`` hypothesis profile runs 100 examples per test; ``nox -s fuzz`` runs 1,000.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from hypothesis import given

from bidi_core.events import ToolUseStreamEvent
from bidi_core.testing.fuzz import check_decoder, frame_sequences
from bidi_openai_realtime import _wire as wire

PCM = base64.b64encode(b"\x01\x00" * 240).decode()
WHERE = {"response_id": "resp_1", "item_id": "item_1", "output_index": 0, "content_index": 0}
USAGE = {
    "total_tokens": 9,
    "input_tokens": 4,
    "output_tokens": 5,
    "input_token_details": {"text_tokens": 4, "audio_tokens": 0, "cached_tokens": 0},
    "output_token_details": {"text_tokens": 2, "audio_tokens": 3},
}
CALL = {"type": "function_call", "call_id": "call_1", "name": "f", "arguments": '{"a": 1}'}
VALID: list[dict[str, Any]] = [
    {"type": "session.created", "event_id": "e0", "session": {"type": "realtime", "id": "s"}},
    {"type": "response.created", "event_id": "e1", "response": {"id": "resp_1", "output": []}},
    {"type": "response.output_audio.delta", "event_id": "e2", **WHERE, "delta": PCM},
    {"type": "response.output_audio_transcript.delta", **WHERE, "delta": "Hello "},
    {"type": "response.output_audio_transcript.done", **WHERE, "transcript": "Hello there"},
    {"type": "response.output_text.delta", **WHERE, "delta": "Hi"},
    {"type": "response.output_text.done", **WHERE, "text": "Hi"},
    {
        "type": "response.function_call_arguments.done",
        "response_id": "resp_1",
        "item_id": "item_2",
        "output_index": 1,
        "call_id": "call_1",
        "name": "f",
        "arguments": '{"a": 1}',
    },
    {"type": "response.output_item.done", "response_id": "resp_1", "output_index": 1, "item": CALL},
    {"type": "input_audio_buffer.speech_started", "audio_start_ms": 10, "item_id": "item_3"},
    {
        "type": "conversation.item.input_audio_transcription.delta",
        "item_id": "item_3",
        "content_index": 0,
        "delta": "what",
    },
    {
        "type": "conversation.item.input_audio_transcription.completed",
        "item_id": "item_3",
        "content_index": 0,
        "transcript": "what time",
    },
    {
        "type": "conversation.item.input_audio_transcription.failed",
        "item_id": "item_3",
        "content_index": 0,
        "error": {"type": "server_error", "code": "c", "message": "m", "param": None},
    },
    {
        "type": "response.done",
        "response": {
            "id": "resp_1",
            "status": "cancelled",
            "status_details": {"type": "cancelled", "reason": "turn_detected"},
            "output": [CALL],
            "usage": USAGE,
        },
    },
    {
        "type": "response.done",
        "response": {
            "id": "resp_2",
            "status": "failed",
            "status_details": {"type": "failed", "error": {"type": "server_error", "code": "x"}},
            "output": [],
            "usage": USAGE,
        },
    },
    {
        "type": "error",
        "error": {"type": "invalid_request_error", "code": "bad", "message": "m", "event_id": "c1"},
    },
    {"type": "response.audio.delta", **WHERE, "delta": PCM},  # beta
]


@given(frames=frame_sequences(VALID))
def test_decoder_survives_garbage_frames(frames: list[bytes]) -> None:
    """Random bytes, random JSON and mutated or truncated GA events never crash the decoder."""
    decoder = wire.Decoder()
    for index, frame in enumerate(frames):
        check_decoder(lambda f, t: decoder.feed_raw(f, t).events, frame, float(index))


@given(frames=frame_sequences(VALID, raw=False))
def test_decoder_survives_garbage_events(frames: list[Any]) -> None:
    """Parsed events with deleted or mistyped fields give events or error events."""
    decoder = wire.Decoder()
    for index, frame in enumerate(frames):
        if isinstance(frame, dict):
            check_decoder(lambda f, t: decoder.feed(f, t).events, frame, float(index))


def test_mistyped_optional_objects_do_not_cost_the_completion() -> None:
    """A response.done whose optional detail objects are mistyped still completes the response."""
    from bidi_core import BidiResponseCompleteEvent, BidiUsageEvent

    frame = {
        "type": "response.done",
        "response": {
            "id": "resp_9",
            "status": "failed",
            "status_details": ["not", "an", "object"],
            "output": [],
            "usage": {**USAGE, "input_token_details": True, "output_token_details": "x"},
        },
    }
    events = wire.Decoder().feed(frame, 0.0).events
    assert isinstance(events[-1], BidiResponseCompleteEvent)
    assert events[-1].stop_reason == "error"
    usage = next(e for e in events if isinstance(e, BidiUsageEvent))
    assert usage.input_tokens == 4
    assert usage.input_details == {"text": 0, "audio": 0, "image": 0}


def test_error_frames_with_a_mistyped_error_object_are_reported() -> None:
    """An error frame whose 'error' is not an object still becomes a BidiErrorEvent."""
    from bidi_core import BidiErrorEvent

    (event,) = wire.Decoder().feed({"type": "error", "error": "boom"}, 0.0).events
    assert isinstance(event, BidiErrorEvent)
    assert event.recoverable


def test_nan_in_a_frame_or_in_tool_arguments_never_crashes_the_decoder() -> None:
    """Python's json reads NaN; a frame or arguments holding it are refused like bad JSON."""
    d = wire.Decoder()
    d.feed({"type": "response.created", "event_id": "e1", "response": {"id": "r1"}}, 0.0)
    done = {
        "type": "response.function_call_arguments.done",
        "event_id": "e2",
        "response_id": "r1",
        "item_id": "item_call_1",
        "output_index": 0,
        "call_id": "call_1",
        "name": "get_weather",
        "arguments": "{}",
    }
    frame = json.dumps(done).replace('"{}"', '"{\\"x\\": NaN}"')
    events = check_decoder(lambda: d.feed_raw(frame, 0.0).events)
    (call,) = [e for e in events if isinstance(e, ToolUseStreamEvent)]
    assert call.tool_use["input"] == '{"x": NaN}'  # the tool sees the raw text
    error = (
        '{"type": "error", "event_id": "e", "error": {"type": "x", "message": "m", "param": NaN}}'
    )
    events = check_decoder(lambda: wire.Decoder().feed_raw(error, 0.0).events)
    assert [type(e).__name__ for e in events] == ["BidiErrorEvent"]
    json.dumps(events[0].to_dict(), allow_nan=False)
