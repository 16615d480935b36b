"""The wire functions, tested with scripted frames (no sockets)."""

from __future__ import annotations

from typing import Any

import pytest

from bidi_core import (
    BidiAudioInputEvent,
    BidiAudioStreamEvent,
    BidiErrorEvent,
    BidiImageInputEvent,
    BidiInterruptionEvent,
    BidiResponseCompleteEvent,
    BidiResponseStartEvent,
    BidiTextInputEvent,
    BidiToolCancelEvent,
    BidiTranscriptStreamEvent,
    BidiUsageEvent,
    ProviderProtocolError,
    ToolResultEvent,
    ToolUseStreamEvent,
)
from bidi_example import _wire


def test_encode_writes_one_json_line_that_decode_reads_back() -> None:
    """Frames are single lines of JSON."""
    line = _wire.encode({"type": "input.text", "text": "a\nb"})
    assert line.count(b"\n") == 1
    assert line.endswith(b"\n")
    assert _wire.decode(line) == {"type": "input.text", "text": "a\nb"}


@pytest.mark.parametrize("line", [b"{nope\n", b"[1, 2]\n", b'{"kind": "x"}\n', b""])
def test_decode_refuses_what_is_not_a_typed_object(line: bytes) -> None:
    """A line that is not a JSON object with a 'type' is a ProviderProtocolError."""
    with pytest.raises(ProviderProtocolError, match="example service sent"):
        _wire.decode(line)


def test_session_start_carries_everything() -> None:
    """The first frame carries the model, key, instructions, tools, history, voice, handle."""
    frame = _wire.session_start(
        model_id="m",
        api_key="k",
        system_prompt="be brief",
        tools=[],
        messages=[{"role": "user", "content": [{"text": "hi"}]}],
        voice="ash",
        resume_handle=None,
    )
    assert frame == {
        "type": "session.start",
        "model": "m",
        "api_key": "k",
        "instructions": "be brief",
        "tools": [],
        "history": [{"role": "user", "content": [{"text": "hi"}]}],
        "voice": "ash",
        "resume_handle": None,
    }


def test_input_events_to_frames() -> None:
    """Text, audio (base64) and tool results become their frames."""
    assert _wire.to_server(BidiTextInputEvent(text="hi")) == {"type": "input.text", "text": "hi"}
    assert _wire.to_server(BidiAudioInputEvent(audio=b"\x01\x02", sample_rate=16000)) == {
        "type": "input.audio",
        "audio": "AQI=",
        "sample_rate": 16000,
    }
    result = ToolResultEvent(
        tool_result={"toolUseId": "c1", "status": "error", "content": [{"text": "no"}]}
    )
    assert _wire.to_server(result) == {
        "type": "tool.result",
        "tool_use_id": "c1",
        "status": "error",
        "content": [{"text": "no"}],
    }
    with pytest.raises(TypeError, match="no frame for BidiImageInputEvent"):
        _wire.to_server(BidiImageInputEvent(image=b"x", mime_type="image/png"))


@pytest.mark.parametrize(
    ("frame", "event"),
    [
        ({"type": "response.start", "response_id": "r"}, BidiResponseStartEvent(response_id="r")),
        (
            {"type": "response.done", "response_id": "r", "stop_reason": "tool_use"},
            BidiResponseCompleteEvent(response_id="r", stop_reason="tool_use"),
        ),
        (
            {
                "type": "transcript",
                "role": "assistant",
                "item_id": "i",
                "text": "hel",
                "final": False,
            },
            BidiTranscriptStreamEvent(role="assistant", text="hel", is_final=False, item_id="i"),
        ),
        (
            {"type": "transcript", "role": "user", "item_id": "i", "text": "hello", "final": True},
            BidiTranscriptStreamEvent(
                role="user", text="hello", is_final=True, current_transcript="hello", item_id="i"
            ),
        ),
        (
            {"type": "audio", "response_id": "r", "audio": "AQI="},
            BidiAudioStreamEvent(audio=b"\x01\x02", sample_rate=24000, response_id="r"),
        ),
        (
            {"type": "tool.call", "tool_use_id": "c", "name": "f", "input": {"x": 1}},
            ToolUseStreamEvent(tool_use={"toolUseId": "c", "name": "f", "input": {"x": 1}}),
        ),
        (
            {"type": "tool.cancel", "tool_use_ids": ["c"]},
            BidiToolCancelEvent(tool_use_ids=("c",)),
        ),
        (
            {
                "type": "usage",
                "input_tokens": 3,
                "output_tokens": 4,
                "input_details": {"text": 3},
                "output_details": {"audio": 4},
            },
            BidiUsageEvent(
                input_tokens=3,
                output_tokens=4,
                total_tokens=7,
                input_details={"text": 3},
                output_details={"audio": 4},
            ),
        ),
        (
            {"type": "interrupted", "response_id": "r"},
            BidiInterruptionEvent(response_id="r"),
        ),
        (
            {"type": "error", "code": "busy", "message": "try later", "fatal": False},
            BidiErrorEvent(message="try later", code="busy", recoverable=True),
        ),
    ],
    ids=lambda value: value["type"] if isinstance(value, dict) else "",
)
def test_server_frames_to_events(frame: dict[str, Any], event: object) -> None:
    """Each server frame maps to its bidi event."""
    assert _wire.from_server(frame) == [event]


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        ({"type": "response.start"}, "bad 'response_id': None"),
        ({"type": "response.done", "response_id": "r", "stop_reason": "done"}, "stop_reason"),
        ({"type": "audio", "response_id": "r", "audio": "A"}, "not valid base64"),
        ({"type": "usage", "input_tokens": True, "output_tokens": 1}, "bad 'input_tokens'"),
        ({"type": "surprise"}, "unknown frame type 'surprise'"),
    ],
)
def test_bad_server_frames_are_protocol_errors(frame: dict[str, Any], message: str) -> None:
    """A frame with a missing or mistyped field is a ProviderProtocolError naming it."""
    with pytest.raises(ProviderProtocolError, match=message):
        _wire.from_server(frame)
