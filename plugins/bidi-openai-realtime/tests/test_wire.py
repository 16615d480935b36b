"""Unit tests of the pure GA <-> bidi translation in ``_wire`` with scripted frames."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from bidi_core.events import (
    BidiAudioStreamEvent,
    BidiErrorEvent,
    BidiInterruptionEvent,
    BidiResponseCompleteEvent,
    BidiResponseStartEvent,
    BidiUsageEvent,
    ToolUseStreamEvent,
)
from bidi_core.types import Messages
from bidi_openai_realtime import _wire as wire
from bidi_openai_realtime._settings import default_session
from bidi_openai_realtime.testing import (
    SchemaError,
    server_event_types,
    validate_client_event,
    validate_server_event,
)

PCM = b"\x01\x00" * 2400  # 100 ms at 24 kHz


def server(kind: str, **fields: Any) -> dict[str, Any]:
    """Build a server event and check it against the GA schema first."""
    event = {"type": kind, "event_id": "event_1", **fields}
    validate_server_event(event)
    return event


def response(rid: str, status: str = "in_progress", **fields: Any) -> dict[str, Any]:
    return {"id": rid, "object": "realtime.response", "status": status, "output": [], **fields}


def audio_delta(rid: str, item: str, pcm: bytes = PCM) -> dict[str, Any]:
    return server(
        "response.output_audio.delta",
        response_id=rid,
        item_id=item,
        output_index=0,
        content_index=0,
        delta=base64.b64encode(pcm).decode(),
    )


def test_every_ga_server_event_is_handled_or_deliberately_ignored() -> None:
    """The decoder covers every GA server event type of the installed openai package."""
    handled = set(wire._HANDLERS)
    assert server_event_types() <= handled, sorted(server_event_types() - handled)
    assert not handled & wire.BETA_EVENT_TYPES


def test_client_builders_produce_valid_ga_events() -> None:
    """Every client event the plugin builds validates strictly against the GA schema."""
    session = default_session()
    session["tools"] = [
        wire.tool_spec(
            {
                "name": "get_weather",
                "description": "Weather for a city.",
                "inputSchema": {"json": {"type": "object", "properties": {"city": {}}}},
            }
        )
    ]
    session["instructions"] = "Be brief."
    events = [
        wire.session_update(session),
        wire.audio_append(PCM),
        wire.audio_commit(),
        wire.text_item("hello"),
        wire.text_item("be formal", role="system"),
        wire.image_item(b"\x89PNG", "image/png"),
        wire.tool_output_item({"toolUseId": "c1", "status": "success", "content": [{"text": "x"}]}),
        wire.response_create("evt_1"),
        wire.truncate_item("item_1", 0, 120),
        wire.delete_item("item_1"),
    ]
    for event in events:
        validate_client_event(event)
        assert event["type"] not in wire.BETA_EVENT_TYPES
        assert event["event_id"].startswith("evt_")


def test_audio_append_frame_is_the_compact_json_of_audio_append() -> None:
    """The hand-assembled hot-path frame parses to a valid GA append of the same audio."""
    frame = wire.audio_append_frame(PCM)
    event = json.loads(frame)
    validate_client_event(event)
    assert event["type"] == "input_audio_buffer.append"
    assert base64.b64decode(event["audio"], validate=True) == PCM
    expected = wire.audio_append(PCM) | {"event_id": event["event_id"]}
    assert frame == json.dumps(expected, separators=(",", ":"))


def test_event_ids_are_unique_and_short() -> None:
    """Every client event gets its own short id (the service echoes it in errors)."""
    ids = [wire.event_id() for _ in range(10_000)]
    assert len(set(ids)) == len(ids)
    assert max(len(i) for i in ids) <= 32


def test_strict_client_validation_refuses_beta_shapes() -> None:
    """Beta session fields and event names fail GA validation with the service's codes."""
    with pytest.raises(SchemaError) as info:
        validate_client_event(
            {"type": "session.update", "session": {"type": "realtime", "modalities": ["text"]}}
        )
    assert info.value.code == "unknown_parameter"
    assert info.value.param == "session.modalities"
    with pytest.raises(SchemaError) as info:
        validate_client_event({"type": "session.update", "session": {"instructions": "x"}})
    assert info.value.code in ("invalid_value", "missing_required_parameter")
    with pytest.raises(SchemaError):
        validate_client_event({"type": "transcription_session.update", "session": {}})
    with pytest.raises(SchemaError):
        validate_server_event({"type": "response.audio.delta", "event_id": "e"})
    with pytest.raises(SchemaError):
        validate_server_event({"type": "conversation.item.created", "event_id": "e", "item": {}})


def test_audio_append_is_base64_pcm() -> None:
    """input_audio_buffer.append carries the PCM as base64."""
    event = wire.audio_append(PCM)
    assert base64.b64decode(event["audio"]) == PCM


def test_image_item_is_a_data_url() -> None:
    """An image becomes an input_image content part with a data URL."""
    part = wire.image_item(b"\xff\xd8abc", "image/jpeg")["item"]["content"][0]
    assert part["type"] == "input_image"
    assert (
        part["image_url"] == "data:image/jpeg;base64," + base64.b64encode(b"\xff\xd8abc").decode()
    )


def test_tool_result_output_strings() -> None:
    """Tool results become one string: text kept, JSON serialized, errors prefixed."""
    assert (
        wire.tool_result_output(
            {
                "toolUseId": "a",
                "status": "success",
                "content": [{"text": "hi"}, {"json": {"b": 1, "a": 2}}],
            }
        )
        == 'hi\n{"a": 2, "b": 1}'
    )
    assert (
        wire.tool_result_output(
            {"toolUseId": "a", "status": "error", "content": [{"text": "boom"}]}
        )
        == "Error: boom"
    )
    item = wire.tool_output_item({"toolUseId": "call_9", "status": "success", "content": []})[
        "item"
    ]
    assert item == {"type": "function_call_output", "call_id": "call_9", "output": ""}


def test_history_items_replay_text_calls_and_results_in_order() -> None:
    """History becomes user/assistant messages, function_call and function_call_output items."""
    messages: Messages = [
        {"role": "user", "content": [{"text": "weather?"}, {"text": "in Paris"}]},
        {
            "role": "assistant",
            "content": [
                {"text": "Checking."},
                {
                    "toolUse": {
                        "toolUseId": "call_1",
                        "name": "get_weather",
                        "input": {"city": "Paris"},
                    }
                },
            ],
        },
        {
            "role": "user",
            "content": [
                {
                    "toolResult": {
                        "toolUseId": "call_1",
                        "status": "success",
                        "content": [{"text": "sunny"}],
                    }
                }
            ],
        },
        {"role": "assistant", "content": [{"text": "It is sunny.", "interrupted": True}]},
    ]
    items = [e["item"] for e in wire.history_items(messages)]
    for event in wire.history_items(messages):
        validate_client_event(event)
    assert items == [
        {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": "weather?\nin Paris"}],
        },
        {
            "type": "message",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "Checking."}],
        },
        {
            "type": "function_call",
            "call_id": "call_1",
            "name": "get_weather",
            "arguments": '{"city": "Paris"}',
        },
        {"type": "function_call_output", "call_id": "call_1", "output": "sunny"},
        {
            "type": "message",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "It is sunny."}],
        },
    ]


def test_plan_truncation_clamps_to_received_audio() -> None:
    """Truncation is clamped to the audio received; 0 ms (or less) deletes the item."""
    one_second = 2 * wire.SAMPLE_RATE
    plan = wire.plan_truncation("item_1", 0, one_second, 400)
    assert (plan.action, plan.audio_end_ms, plan.received_ms) == ("truncate", 400, 1000)
    assert wire.plan_truncation("item_1", 0, one_second, 5000).audio_end_ms == 1000
    assert wire.plan_truncation("item_1", 1, one_second, 0).action == "delete"
    assert wire.plan_truncation("item_1", 0, one_second, -20).action == "delete"
    assert wire.plan_truncation("item_1", 0, 0, 300).action == "delete"
    assert wire.plan_truncation("item_1", 0, 4801, 1000).audio_end_ms == 100


def test_decoder_maps_a_spoken_response() -> None:
    """A GA audio response yields start, audio, transcript deltas/final, usage and complete."""
    d = wire.Decoder()
    out = []
    out += d.feed(server("response.created", response=response("resp_1")), 0.0).events
    out += d.feed(audio_delta("resp_1", "item_1"), 0.0).events
    for delta in ("Hel", "lo."):
        out += d.feed(
            server(
                "response.output_audio_transcript.delta",
                response_id="resp_1",
                item_id="item_1",
                output_index=0,
                content_index=0,
                delta=delta,
            ),
            0.0,
        ).events
    out += d.feed(
        server(
            "response.output_audio_transcript.done",
            response_id="resp_1",
            item_id="item_1",
            output_index=0,
            content_index=0,
            transcript="Hello.",
        ),
        0.0,
    ).events
    usage = {
        "total_tokens": 30,
        "input_tokens": 12,
        "output_tokens": 18,
        "input_token_details": {
            "text_tokens": 5,
            "audio_tokens": 4,
            "image_tokens": 3,
            "cached_tokens": 2,
            "cached_tokens_details": {"text_tokens": 2},
        },
        "output_token_details": {"text_tokens": 6, "audio_tokens": 12},
    }
    done = d.feed(
        server("response.done", response=response("resp_1", "completed", usage=usage)), 0.0
    )
    out += done.events
    assert done.done == "resp_1"
    assert isinstance(out[0], BidiResponseStartEvent)
    assert isinstance(out[1], BidiAudioStreamEvent)
    assert (out[1].audio, out[1].sample_rate, out[1].response_id) == (PCM, 24000, "resp_1")
    assert [(e.text, e.is_final, e.current_transcript) for e in out[2:5]] == [
        ("Hel", False, "Hel"),
        ("lo.", False, "Hello."),
        ("Hello.", True, "Hello."),
    ]
    assert out[5] == BidiUsageEvent(
        input_tokens=12,
        output_tokens=18,
        total_tokens=30,
        input_details={"text": 5, "audio": 4, "image": 3},
        output_details={"text": 6, "audio": 12},
        cached_tokens=2,
    )
    assert out[6] == BidiResponseCompleteEvent(response_id="resp_1", stop_reason="complete")
    assert d.active is None


def test_decoder_maps_text_output() -> None:
    """output_text deltas and done become assistant transcript events."""
    d = wire.Decoder()
    delta = d.feed(
        server(
            "response.output_text.delta",
            response_id="r",
            item_id="i",
            output_index=0,
            content_index=0,
            delta="Hi",
        ),
        0.0,
    ).events
    done = d.feed(
        server(
            "response.output_text.done",
            response_id="r",
            item_id="i",
            output_index=0,
            content_index=0,
            text="Hi!",
        ),
        0.0,
    ).events
    assert [(e.role, e.text, e.is_final) for e in delta + done] == [
        ("assistant", "Hi", False),
        ("assistant", "Hi!", True),
    ]  # type: ignore[attr-defined]


def test_decoder_maps_input_transcription() -> None:
    """User transcription deltas, completion and failure are all surfaced."""
    d = wire.Decoder()
    a = d.feed(
        server(
            "conversation.item.input_audio_transcription.delta",
            item_id="u1",
            content_index=0,
            delta="hel",
        ),
        0.0,
    ).events
    b = d.feed(
        server(
            "conversation.item.input_audio_transcription.delta",
            item_id="u1",
            content_index=0,
            delta="lo",
        ),
        0.0,
    ).events
    c = d.feed(
        server(
            "conversation.item.input_audio_transcription.completed",
            item_id="u1",
            content_index=0,
            transcript="hello",
            usage={"type": "duration", "seconds": 1.0},
        ),
        0.0,
    ).events
    assert [(e.role, e.text, e.is_final, e.current_transcript) for e in a + b + c] == [  # type: ignore[attr-defined]
        ("user", "hel", False, "hel"),
        ("user", "lo", False, "hello"),
        ("user", "hello", True, "hello"),
    ]
    failed = d.feed(
        server(
            "conversation.item.input_audio_transcription.failed",
            item_id="u2",
            content_index=0,
            error={
                "type": "transcription_error",
                "code": "audio_unintelligible",
                "message": "Could not understand.",
            },
        ),
        0.0,
    ).events
    assert len(failed) == 1
    assert isinstance(failed[0], BidiErrorEvent)
    assert failed[0].code == "audio_unintelligible"
    assert failed[0].recoverable
    assert failed[0].details["item_id"] == "u2"


def _args_done(rid: str, call: str, args: str, name: str = "get_weather") -> dict[str, Any]:
    return server(
        "response.function_call_arguments.done",
        response_id=rid,
        item_id="item_" + call,
        output_index=0,
        call_id=call,
        name=name,
        arguments=args,
    )


def _call_item(call: str, args: str) -> dict[str, Any]:
    return {
        "id": "item_" + call,
        "object": "realtime.item",
        "type": "function_call",
        "status": "completed",
        "name": "get_weather",
        "call_id": call,
        "arguments": args,
    }


def test_decoder_emits_each_function_call_once() -> None:
    """A function call from arguments.done is not repeated by output_item.done or response.done."""
    d = wire.Decoder()
    d.feed(server("response.created", response=response("r1")), 0.0)
    first = d.feed(_args_done("r1", "call_1", '{"city": "Oslo"}'), 0.0)
    assert first.tool_calls == [("r1", "call_1")]
    assert first.events == [
        ToolUseStreamEvent(
            tool_use={"toolUseId": "call_1", "name": "get_weather", "input": {"city": "Oslo"}}
        )
    ]
    again = d.feed(
        server(
            "response.output_item.done",
            response_id="r1",
            output_index=0,
            item=_call_item("call_1", '{"city": "Oslo"}'),
        ),
        0.0,
    )
    assert again.events == []
    done = d.feed(
        server(
            "response.done",
            response=response(
                "r1", "completed", output=[_call_item("call_1", "{}"), _call_item("call_2", "")]
            ),
        ),
        0.0,
    )
    uses = [e for e in done.events if isinstance(e, ToolUseStreamEvent)]
    assert [u.tool_use["toolUseId"] for u in uses] == ["call_2"]
    assert uses[0].tool_use["input"] == {}
    assert done.tool_calls == [("r1", "call_2")]
    assert done.events[-1] == BidiResponseCompleteEvent(response_id="r1", stop_reason="tool_use")


def test_decoder_passes_unparsable_arguments_through_raw() -> None:
    """Arguments that are not JSON reach the tool as the raw string (so it can report the error)."""
    d = wire.Decoder()
    use = d.feed(_args_done("r1", "call_1", "{city: Oslo"), 0.0).events[0]
    assert isinstance(use, ToolUseStreamEvent)
    assert use.tool_use["input"] == "{city: Oslo"


def test_response_done_statuses() -> None:
    """cancelled -> interrupted (with one interruption), failed -> error, incomplete is reported."""
    d = wire.Decoder()
    d.feed(server("response.created", response=response("r1")), 0.0)
    cancelled = d.feed(
        server(
            "response.done",
            response=response(
                "r1", "cancelled", status_details={"type": "cancelled", "reason": "turn_detected"}
            ),
        ),
        0.0,
    ).events
    assert [type(e) for e in cancelled] == [BidiInterruptionEvent, BidiResponseCompleteEvent]
    assert cancelled[-1].stop_reason == "interrupted"  # type: ignore[union-attr]
    failed = d.feed(
        server(
            "response.done",
            response=response(
                "r2",
                "failed",
                status_details={
                    "type": "failed",
                    "error": {"type": "server_error", "code": "internal", "message": "oops"},
                },
            ),
        ),
        0.0,
    ).events
    assert isinstance(failed[0], BidiResponseStartEvent)  # never saw response.created
    assert isinstance(failed[1], BidiErrorEvent)
    assert failed[1].code == "internal"
    assert failed[-1].stop_reason == "error"  # type: ignore[union-attr]
    incomplete = d.feed(
        server(
            "response.done",
            response=response(
                "r3",
                "incomplete",
                status_details={"type": "incomplete", "reason": "max_output_tokens"},
            ),
        ),
        0.0,
    ).events
    assert any(
        isinstance(e, BidiErrorEvent) and e.details.get("reason") == "max_output_tokens"
        for e in incomplete
    )
    assert incomplete[-1].stop_reason == "complete"  # type: ignore[union-attr]


def test_speech_started_interrupts_only_an_active_or_playing_response() -> None:
    """speech_started interrupts an active response once, a still-playing one, and nothing else."""
    started = server("input_audio_buffer.speech_started", audio_start_ms=0, item_id="u1")
    d = wire.Decoder()
    assert d.feed(started, 0.0).events == []  # nothing active or playing
    d.feed(server("response.created", response=response("r1")), 1.0)
    d.feed(audio_delta("r1", "a1", PCM * 10), 1.0)  # 1 s of audio
    assert d.feed(started, 1.1).events == [
        BidiInterruptionEvent(reason="user_speech", response_id="r1")
    ]
    assert d.feed(started, 1.2).events == []  # once per response
    d.feed(server("response.created", response=response("r2")), 2.0)
    d.feed(audio_delta("r2", "a2", PCM * 10), 2.0)
    d.feed(server("response.done", response=response("r2", "completed")), 2.1)
    assert d.feed(started, 2.5).events == [
        BidiInterruptionEvent(reason="user_speech", response_id="r2")
    ]
    d.feed(server("response.created", response=response("r3")), 5.0)
    d.feed(audio_delta("r3", "a3", PCM * 10), 5.0)
    d.feed(server("response.done", response=response("r3", "completed")), 5.1)
    assert d.feed(started, 6.5).events == []  # its second of audio has played out


def test_decoder_tracks_audio_for_truncation() -> None:
    """The decoder remembers each response's audio item and how much audio arrived."""
    d = wire.Decoder()
    d.feed(server("response.created", response=response("r1")), 0.0)
    d.feed(audio_delta("r1", "a1"), 0.0)
    d.feed(audio_delta("r1", "a1"), 0.0)
    plan = d.truncation("r1", 150)
    assert plan is not None
    assert (plan.item_id, plan.audio_end_ms, plan.received_ms) == ("a1", 150, 200)
    assert d.truncation("unknown", 100) is None
    d.forget_audio("r1")
    assert d.truncation("r1", 100) is None


def test_error_events_are_recoverable_bidi_errors() -> None:
    """A GA error event becomes a BidiErrorEvent with code, details and recoverable=True."""
    d = wire.Decoder()
    out = d.feed(
        server(
            "error",
            error={
                "type": "invalid_request_error",
                "code": "invalid_value",
                "message": "Bad value.",
                "param": "session.voice",
                "event_id": "evt_9",
            },
        ),
        0.0,
    )
    assert out.error_event_id == "evt_9"
    assert out.events == [
        BidiErrorEvent(
            message="Bad value.",
            code="invalid_value",
            recoverable=True,
            details={
                "type": "invalid_request_error",
                "param": "session.voice",
                "event_id": "evt_9",
            },
        )
    ]


def test_session_expired_is_a_restart_signal_not_an_event() -> None:
    """The session_expired error asks for a restart instead of yielding an event."""
    d = wire.Decoder()
    out = d.feed(
        server(
            "error",
            error={
                "type": "invalid_request_error",
                "code": "session_expired",
                "message": "Your session hit the maximum duration of 60 minutes.",
            },
        ),
        0.0,
    )
    assert out.events == []
    assert out.expired is not None
    assert "60 minutes" in out.expired


def test_malformed_and_beta_frames_become_error_events() -> None:
    """Non-JSON frames and beta event names give recoverable errors (beta once per type)."""
    d = wire.Decoder()
    bad = d.feed_raw("{not json", 0.0).events
    assert isinstance(bad[0], BidiErrorEvent)
    assert bad[0].code == "malformed_frame"
    assert d.feed_raw(b"[1, 2]", 0.0).events[0].code == "malformed_frame"  # type: ignore[union-attr]
    broken = d.feed({"type": "response.output_audio.delta", "delta": "AAAA"}, 0.0).events
    assert broken[0].code == "malformed_event"  # type: ignore[union-attr]
    beta = {"type": "response.audio.delta", "delta": "AA"}
    assert d.feed(beta, 0.0).events[0].code == "beta_protocol"  # type: ignore[union-attr]
    assert d.feed(beta, 0.0).events == []
    assert d.feed({"type": "some.future.event"}, 0.0).events == []


def test_ignored_events_yield_nothing() -> None:
    """Events deliberately ignored produce no bidi events."""
    d = wire.Decoder()
    for event in (
        server(
            "rate_limits.updated",
            rate_limits=[{"name": "tokens", "limit": 1, "remaining": 1, "reset_seconds": 1.0}],
        ),
        server("input_audio_buffer.committed", item_id="u1", previous_item_id=None),
        server("conversation.item.truncated", item_id="a1", content_index=0, audio_end_ms=10),
    ):
        assert d.feed(event, 0.0).events == []
    assert set(wire.IGNORED_SERVER_EVENTS) <= server_event_types()


def test_gate_sends_one_response_for_all_tool_results() -> None:
    """All results of one tool response (even arriving before response.done) give one create."""
    gate = wire.ResponseGate()
    gate.want()
    assert gate.take("e1")
    gate.created("r1")
    gate.tool_call("r1", "c1")
    gate.tool_result("c1")  # fast tool: before the second call is even known
    gate.tool_call("r1", "c2")
    assert not gate.take("e2")
    gate.done("r1")
    assert not gate.take("e3")  # c2 still running
    gate.tool_result("c2")
    assert gate.take("e4")
    assert not gate.take("e5")  # only one


def test_gate_never_overlaps_responses() -> None:
    """A wanted response waits for the active one and for a pending create."""
    gate = wire.ResponseGate()
    gate.want()
    assert gate.take("e1")
    gate.want()
    assert not gate.take("e2")  # e1 pending
    gate.created("r1")
    assert not gate.take("e3")  # r1 active
    gate.done("r1")
    assert gate.take("e4")


def test_gate_retries_a_create_that_collided() -> None:
    """An active-response collision re-queues the create; other failures drop it."""
    gate = wire.ResponseGate()
    gate.want()
    assert gate.take("e1")
    assert gate.failed("e1", retry=True)
    gate.created("vad_response")
    assert not gate.take("e2")
    gate.done("vad_response")
    assert gate.take("e3")
    assert gate.failed("e3", retry=False)
    assert not gate.take("e4")
    assert not gate.failed("never_sent", retry=True)


def test_unknown_tool_result_still_asks_for_a_response() -> None:
    """A result for a call this connection never saw (replayed history) asks for a response."""
    gate = wire.ResponseGate()
    gate.tool_result("old_call")
    assert gate.take("e1")


def test_decode_frame_rejects_non_objects() -> None:
    """decode_frame accepts only JSON objects with a string type."""
    assert wire.decode_frame(json.dumps({"type": "x"})) == {"type": "x"}
    for raw in ("[]", '{"type": 1}', "nope"):
        with pytest.raises(ValueError):
            wire.decode_frame(raw)
