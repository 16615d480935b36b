"""Unit tests of the pure Nova <-> bidi mapping, with scripted Nova frames."""

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
    BidiTranscriptStreamEvent,
    BidiUsageEvent,
    ToolUseStreamEvent,
)
from bidi_core.testing.fuzz import check_decoder
from bidi_nova_sonic import _wire as wire
from bidi_nova_sonic._settings import HistoryLimits, parse_settings


def ev(name: str, **body: Any) -> dict[str, Any]:
    return {"event": {name: {"sessionId": "s", "promptName": "p", "completionId": "c", **body}}}


def text_start(cid: str, role: str, stage: str | None) -> dict[str, Any]:
    extra = {"additionalModelFields": json.dumps({"generationStage": stage})} if stage else {}
    return ev("contentStart", contentId=cid, type="TEXT", role=role, **extra)


def text(cid: str, role: str, content: str) -> dict[str, Any]:
    return ev("textOutput", contentId=cid, role=role, content=content)


def end(cid: str, kind: str, reason: str) -> dict[str, Any]:
    return ev("contentEnd", contentId=cid, type=kind, stopReason=reason)


def audio_start(cid: str, rate: int = 24000) -> dict[str, Any]:
    return ev(
        "contentStart",
        contentId=cid,
        type="AUDIO",
        role="ASSISTANT",
        audioOutputConfiguration={"sampleRateHertz": rate, "mediaType": "audio/lpcm"},
    )


def audio(cid: str, pcm: bytes) -> dict[str, Any]:
    return ev("audioOutput", contentId=cid, content=base64.b64encode(pcm).decode())


def run(frames: list[dict[str, Any]], rate: int = 24000) -> list[Any]:
    translator = wire.OutputTranslator(output_rate=rate)
    out: list[Any] = []
    for frame in frames:
        out.extend(translator.translate(frame))
    return out


def two_segment_turn() -> list[dict[str, Any]]:
    return [
        ev("completionStart"),
        text_start("t1", "ASSISTANT", "SPECULATIVE"),
        text("t1", "ASSISTANT", "Hello there."),
        end("t1", "TEXT", "PARTIAL_TURN"),
        audio_start("a1"),
        audio("a1", b"\x01\x00" * 10),
        end("a1", "AUDIO", "PARTIAL_TURN"),
        text_start("f1", "ASSISTANT", "FINAL"),
        text("f1", "ASSISTANT", "Hello there."),
        end("f1", "TEXT", "PARTIAL_TURN"),
        text_start("t2", "ASSISTANT", "SPECULATIVE"),
        text("t2", "ASSISTANT", "How are you?"),
        end("t2", "TEXT", "PARTIAL_TURN"),
        audio_start("a2"),
        audio("a2", b"\x02\x00" * 10),
        end("a2", "AUDIO", "PARTIAL_TURN"),
        text_start("f2", "ASSISTANT", "FINAL"),
        text("f2", "ASSISTANT", "How are you?"),
        end("f2", "TEXT", "END_TURN"),
    ]


def test_speculative_text_is_deltas_and_final_text_is_one_final() -> None:
    """SPECULATIVE text becomes non-final deltas; the FINAL blocks give exactly one final."""
    out = run(two_segment_turn())
    transcripts = [e for e in out if isinstance(e, BidiTranscriptStreamEvent)]
    deltas = [e for e in transcripts if not e.is_final]
    finals = [e for e in transcripts if e.is_final]
    assert [d.text for d in deltas] == ["Hello there.", " How are you?"]
    assert deltas[-1].current_transcript == "Hello there. How are you?"
    assert len(finals) == 1
    assert finals[0].text == "Hello there. How are you?"
    assert finals[0].role == "assistant"


def test_one_response_per_turn_with_audio_and_complete_last() -> None:
    """A multi-segment turn is one response: start first, audio inside, complete last."""
    out = run(two_segment_turn())
    starts = [e for e in out if isinstance(e, BidiResponseStartEvent)]
    completes = [e for e in out if isinstance(e, BidiResponseCompleteEvent)]
    assert len(starts) == 1
    assert len(completes) == 1
    assert out[0] is starts[0]
    assert out[-1] is completes[0]
    assert completes[0].stop_reason == "complete"
    audio_events = [e for e in out if isinstance(e, BidiAudioStreamEvent)]
    assert b"".join(a.audio for a in audio_events) == b"\x01\x00" * 10 + b"\x02\x00" * 10
    assert {a.response_id for a in audio_events} == {starts[0].response_id}
    assert {a.sample_rate for a in audio_events} == {24000}


def test_user_asr_text_is_one_final_user_transcript_per_block() -> None:
    """USER text (speech recognition) becomes one final user transcript at contentEnd."""
    out = run(
        [
            text_start("u1", "USER", "FINAL"),
            text("u1", "USER", "what is "),
            text("u1", "USER", "the time"),
            end("u1", "TEXT", "PARTIAL_TURN"),
        ]
    )
    assert out == [
        BidiTranscriptStreamEvent(
            role="user",
            text="what is the time",
            is_final=True,
            current_transcript="what is the time",
            item_id="u1",
        )
    ]


def interrupted_turn(*, marker: bool, stop_reason: bool) -> list[dict[str, Any]]:
    frames = [
        text_start("t1", "ASSISTANT", "SPECULATIVE"),
        text("t1", "ASSISTANT", "Once upon a time there was"),
        end("t1", "TEXT", "PARTIAL_TURN"),
        audio_start("a1"),
        audio("a1", b"\x00\x01" * 4),
        end("a1", "AUDIO", "INTERRUPTED" if stop_reason else "PARTIAL_TURN"),
        text_start("f1", "ASSISTANT", "FINAL"),
        text("f1", "ASSISTANT", "Once upon"),
    ]
    if marker:
        frames.append(text("f1", "ASSISTANT", wire.INTERRUPTED_MARKER))
    frames.append(end("f1", "TEXT", "INTERRUPTED" if stop_reason else "END_TURN"))
    frames += [
        text_start("u1", "USER", "FINAL"),
        text("u1", "USER", "stop"),
        end("u1", "TEXT", "END_TURN"),
    ]
    return frames


@pytest.mark.parametrize(
    ("marker", "stop_reason"), [(True, True), (True, False), (False, True)], ids=str
)
def test_barge_in_gives_exactly_one_interruption(marker: bool, stop_reason: bool) -> None:
    """The INTERRUPTED stopReason and the interrupted marker, alone or together, give one event."""
    out = run(interrupted_turn(marker=marker, stop_reason=stop_reason))
    interruptions = [e for e in out if isinstance(e, BidiInterruptionEvent)]
    completes = [e for e in out if isinstance(e, BidiResponseCompleteEvent)]
    assert len(interruptions) == 1
    assert [c.stop_reason for c in completes] == ["interrupted"]
    assert out.index(interruptions[0]) < out.index(completes[0])
    finals = [e for e in out if isinstance(e, BidiTranscriptStreamEvent) and e.is_final]
    assert [(f.role, f.text) for f in finals] == [("assistant", "Once upon"), ("user", "stop")]
    assert not any(wire.INTERRUPTED_MARKER in getattr(e, "text", "") for e in out)


def test_interrupted_response_then_new_response_is_separate() -> None:
    """After a barge-in, the next answer's SPECULATIVE text starts a new response."""
    frames = interrupted_turn(marker=True, stop_reason=True)[:6]  # audio ended INTERRUPTED
    frames += [text_start("t9", "ASSISTANT", "SPECULATIVE"), text("t9", "ASSISTANT", "Sure.")]
    out = run(frames)
    kinds = [type(e).__name__ for e in out if not isinstance(e, BidiAudioStreamEvent)]
    assert kinds.count("BidiResponseStartEvent") == 2
    assert kinds.count("BidiInterruptionEvent") == 1
    assert kinds.index("BidiResponseCompleteEvent") < len(kinds) - 2


def test_tool_use_maps_name_id_and_json_input_and_completes_with_tool_use() -> None:
    """toolUse carries a JSON string input; contentEnd TOOL_USE completes with tool_use."""
    out = run(
        [
            ev("contentStart", contentId="x", type="TOOL", role="TOOL"),
            ev(
                "toolUse",
                contentId="x",
                toolName="get_weather",
                toolUseId="tu-1",
                content='{"city": "Paris"}',
            ),
            end("x", "TOOL", "TOOL_USE"),
        ]
    )
    assert isinstance(out[0], BidiResponseStartEvent)
    assert out[1] == ToolUseStreamEvent(
        tool_use={"toolUseId": "tu-1", "name": "get_weather", "input": {"city": "Paris"}}
    )
    assert isinstance(out[2], BidiResponseCompleteEvent)
    assert out[2].stop_reason == "tool_use"


def usage(
    delta: tuple[int, int, int, int] | None, total: tuple[int, int, int, int]
) -> dict[str, Any]:
    def shape(v: tuple[int, int, int, int]) -> dict[str, Any]:
        return {
            "input": {"speechTokens": v[0], "textTokens": v[1]},
            "output": {"speechTokens": v[2], "textTokens": v[3]},
        }

    details: dict[str, Any] = {"total": shape(total)}
    if delta is not None:
        details["delta"] = shape(delta)
    return ev(
        "usageEvent",
        details=details,
        totalInputTokens=total[0] + total[1],
        totalOutputTokens=total[2] + total[3],
        totalTokens=sum(total),
    )


def test_usage_uses_the_per_event_delta() -> None:
    """With details.delta, each usage event is that delta, never the cumulative total."""
    out = run([usage((0, 5, 30, 4), (0, 5, 30, 4)), usage((10, 0, 20, 2), (10, 5, 50, 6))])
    assert [(u.input_tokens, u.output_tokens, u.total_tokens) for u in out] == [
        (5, 34, 39),
        (10, 22, 32),
    ]
    assert out[1].input_details == {"text": 0, "audio": 10}
    assert out[1].output_details == {"text": 2, "audio": 20}


def test_usage_without_delta_is_the_difference_of_totals() -> None:
    """Without details.delta, the increment is computed from the previous totals."""
    out = run(
        [
            usage(None, (0, 5, 30, 4)),
            usage(None, (0, 5, 30, 4)),  # nothing new: no event
            usage(None, (10, 5, 50, 6)),
        ]
    )
    assert all(isinstance(u, BidiUsageEvent) for u in out)
    assert [(u.input_tokens, u.output_tokens) for u in out] == [(5, 34), (10, 22)]


def test_usage_with_only_flat_totals_is_incremental() -> None:
    """Only totalInputTokens/totalOutputTokens: increments, never the totals again."""
    frames = [
        ev("usageEvent", totalInputTokens=3, totalOutputTokens=7, totalTokens=10),
        ev("usageEvent", totalInputTokens=5, totalOutputTokens=17, totalTokens=22),
    ]
    out = run(frames)
    assert [(u.input_tokens, u.output_tokens) for u in out] == [(3, 7), (2, 10)]


def test_unknown_events_and_completion_markers_emit_nothing() -> None:
    """completionStart and unknown event names produce no bidi events (and do not raise)."""
    assert run([ev("completionStart"), ev("somethingNew", x=1)]) == []


def test_completion_end_completes_an_open_response() -> None:
    """completionEnd completes a response that no contentEnd ended."""
    out = run(
        [
            text_start("t", "ASSISTANT", "SPECULATIVE"),
            text("t", "ASSISTANT", "Hi"),
            ev("completionEnd", stopReason="END_TURN"),
        ]
    )
    assert isinstance(out[-1], BidiResponseCompleteEvent)
    assert out[-1].stop_reason == "complete"


def test_interrupted_marker_detection() -> None:
    """The marker is recognized in its spacing variants and not in ordinary text."""
    assert wire.is_interrupted_marker('{ "interrupted" : true }')
    assert wire.is_interrupted_marker('{"interrupted":true}')
    assert not wire.is_interrupted_marker("I was interrupted, true story.")
    assert not wire.is_interrupted_marker('{"interrupted": false}')


# ----------------------------------------------------------------------- input


def settings(**provider: Any) -> Any:
    model_id = provider.pop("model_id", "amazon.nova-sonic-v1:0")
    return parse_settings(model_id, provider, {})


def test_prompt_start_carries_output_config_voice_and_tool_schema_as_string() -> None:
    """promptStart holds audio output config, the voice, and each tool schema as a JSON string."""
    spec = {
        "name": "echo",
        "description": "Echo.",
        "inputSchema": {"json": {"type": "object", "properties": {"v": {"type": "integer"}}}},
    }
    body = wire.prompt_start(
        "p1", settings(audio={"voice": "tiffany", "output_sample_rate": 16000}), [spec]
    )["event"]["promptStart"]
    assert body["promptName"] == "p1"
    assert body["audioOutputConfiguration"]["voiceId"] == "tiffany"
    assert body["audioOutputConfiguration"]["sampleRateHertz"] == 16000
    schema = body["toolConfiguration"]["tools"][0]["toolSpec"]["inputSchema"]["json"]
    assert isinstance(schema, str)
    assert json.loads(schema) == spec["inputSchema"]["json"]


def test_session_start_has_inference_and_nova2_turn_detection() -> None:
    """sessionStart passes inference keys through; Nova 2 adds turnDetectionConfiguration."""
    v1 = wire.session_start(settings(inference={"temperature": 0.2, "topK": 5}))
    body = v1["event"]["sessionStart"]
    assert body["inferenceConfiguration"] == {
        "maxTokens": 1024,
        "topP": 0.9,
        "temperature": 0.2,
        "topK": 5,
    }
    assert "turnDetectionConfiguration" not in body
    v2 = wire.session_start(settings(model_id="amazon.nova-2-sonic-v1:0", turn_detection="HIGH"))
    assert v2["event"]["sessionStart"]["turnDetectionConfiguration"] == {
        "endpointingSensitivity": "HIGH"
    }


def test_text_content_is_start_input_end_with_matching_names() -> None:
    """A text block is contentStart/textInput/contentEnd sharing promptName and contentName."""
    events = wire.text_content("p", "c", "USER", "hi", interactive=True)
    names = [next(iter(e["event"])) for e in events]
    assert names == ["contentStart", "textInput", "contentEnd"]
    for e in events:
        body = next(iter(e["event"].values()))
        assert (body["promptName"], body["contentName"]) == ("p", "c")
    assert events[0]["event"]["contentStart"]["interactive"] is True


@pytest.mark.parametrize(
    "result",
    [
        {"toolUseId": "t", "status": "success", "content": [{"text": "forty-two"}]},
        {"toolUseId": "t", "status": "success", "content": [{"json": {"temp": 21}}]},
        {"toolUseId": "t", "status": "error", "content": [{"text": "boom"}]},
        {"toolUseId": "t", "status": "success", "content": [{"json": [1, 2]}]},
    ],
    ids=["text", "json", "error", "json-list"],
)
def test_tool_result_encoding_round_trips(result: Any) -> None:
    """Tool results become a JSON string and decode back to the same ToolResult."""
    encoded = wire.encode_tool_result(result)
    assert isinstance(json.loads(encoded), dict)
    assert wire.decode_tool_result("t", encoded) == result


def test_history_first_message_is_user_and_caps_apply_oldest_first() -> None:
    """History drops leading assistant turns, cuts long messages and drops the oldest first."""
    messages: list[Any] = [
        {"role": "assistant", "content": [{"text": "greeting"}]},
        {"role": "user", "content": [{"text": "one"}]},
        {"role": "assistant", "content": [{"text": "two"}, {"toolUse": {"toolUseId": "x"}}]},
        {"role": "user", "content": [{"toolResult": {"toolUseId": "x"}}]},  # no text: skipped
        {"role": "user", "content": [{"text": "é" * 10}]},
        {"role": "assistant", "content": [{"text": "four"}]},
    ]
    limits = HistoryLimits(max_messages=40, max_message_bytes=8, max_total_bytes=1000)
    assert wire.trim_history(messages, limits) == [
        ("USER", "one"),
        ("ASSISTANT", "two"),
        ("USER", "é" * 4),
        ("ASSISTANT", "four"),
    ]
    by_count = wire.trim_history(messages, HistoryLimits(max_messages=3))
    assert by_count == [("USER", "é" * 10), ("ASSISTANT", "four")]
    by_total = wire.trim_history(
        messages, HistoryLimits(max_message_bytes=100, max_total_bytes=len("é" * 10) * 2 + 4)
    )
    assert by_total[0] == ("USER", "é" * 10)
    assert by_total[-1] == ("ASSISTANT", "four")


@pytest.mark.parametrize("stated", [1, 16, 2**63])
def test_an_impossible_output_rate_is_reported_and_the_configured_one_used(stated: int) -> None:
    """A stated rate outside 8-192 kHz: an error event, then audio at the configured rate."""
    out = run([ev("completionStart"), audio_start("a1", rate=stated), audio("a1", b"\x01\x00" * 4)])
    errors = [e for e in out if isinstance(e, BidiErrorEvent)]
    assert len(errors) == 1
    assert f"output audio rate of {stated} Hz" in errors[0].message
    (chunk,) = [e for e in out if isinstance(e, BidiAudioStreamEvent)]
    assert chunk.sample_rate == 24000


def test_nan_in_a_tool_input_is_kept_as_raw_text_not_a_crash() -> None:
    """Python's json reads NaN; a toolUse input holding it is passed on as its raw text."""
    out = check_decoder(
        run,
        [
            ev("contentStart", contentId="x", type="TOOL", role="TOOL"),
            ev("toolUse", contentId="x", toolName="f", toolUseId="tu-1", content='{"a": NaN}'),
        ],
    )
    (call,) = [e for e in out if isinstance(e, ToolUseStreamEvent)]
    assert call.tool_use["input"] == {"raw": '{"a": NaN}'}


def test_a_nan_in_an_output_chunk_is_not_json() -> None:
    """An output chunk holding NaN is refused as not JSON (a ValueError the stream handles)."""
    with pytest.raises(ValueError, match="NaN"):
        wire.decode_chunk(b'{"event": {"usageEvent": {"x": NaN}}}')
