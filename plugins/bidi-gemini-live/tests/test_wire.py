"""Unit tests of the pure Gemini Live <-> bidi translation, with scripted server frames."""

from __future__ import annotations

import base64
import math
from typing import Any

import pytest
from google.genai import types
from google.genai._live_converters import _LiveServerMessage_from_mldev

from bidi_core import (
    BidiAudioStreamEvent,
    BidiErrorEvent,
    BidiInterruptionEvent,
    BidiOutputEvent,
    BidiResponseCompleteEvent,
    BidiResponseStartEvent,
    BidiToolCancelEvent,
    BidiTranscriptStreamEvent,
    BidiUsageEvent,
    ToolUseStreamEvent,
)
from bidi_core.testing.fuzz import check_decoder
from bidi_gemini_live._wire import (
    ServerTranslator,
    audio_mime,
    error_from_close,
    function_declarations,
    function_response,
    history_turns,
    modality_name,
    parse_duration,
    parse_rate,
    redact,
    usage_event,
)

PCM = b"\x01\x02" * 240


def frame(data: dict[str, Any]) -> types.LiveServerMessage:
    """Parse a server frame (camelCase JSON) exactly as the SDK does."""
    return types.LiveServerMessage._from_response(
        response=_LiveServerMessage_from_mldev(data), kwargs={}
    )


def audio_part(pcm: bytes = PCM, rate: int = 24000) -> dict[str, Any]:
    return {
        "inlineData": {"mimeType": f"audio/pcm;rate={rate}", "data": base64.b64encode(pcm).decode()}
    }


def feed(tr: ServerTranslator, *frames: dict[str, Any]) -> list[BidiOutputEvent]:
    events: list[BidiOutputEvent] = []
    for data in frames:
        events.extend(tr.feed(frame(data)))
    return events


def kinds(events: list[BidiOutputEvent]) -> list[str]:
    return [type(e).__name__ for e in events]


def test_one_message_with_audio_transcripts_and_usage_loses_nothing() -> None:
    """Audio, input + output transcription, usage and turnComplete in one frame all map."""
    tr = ServerTranslator(text_transcript=False)
    events = feed(
        tr,
        {
            "serverContent": {
                "inputTranscription": {"text": "hi there", "finished": True},
                "modelTurn": {"parts": [audio_part()]},
                "outputTranscription": {"text": "Hello."},
                "generationComplete": True,
                "turnComplete": True,
            },
            "usageMetadata": {
                "promptTokenCount": 5,
                "responseTokenCount": 7,
                "totalTokenCount": 12,
                "promptTokensDetails": [{"modality": "AUDIO", "tokenCount": 5}],
                "responseTokensDetails": [{"modality": "AUDIO", "tokenCount": 7}],
            },
        },
    )
    assert kinds(events) == [
        "BidiTranscriptStreamEvent",  # user delta
        "BidiTranscriptStreamEvent",  # user final
        "BidiResponseStartEvent",
        "BidiAudioStreamEvent",
        "BidiTranscriptStreamEvent",  # assistant delta
        "BidiUsageEvent",
        "BidiTranscriptStreamEvent",  # assistant final
        "BidiResponseCompleteEvent",
    ]
    user_final = events[1]
    assert isinstance(user_final, BidiTranscriptStreamEvent)
    assert (user_final.role, user_final.text, user_final.is_final) == ("user", "hi there", True)
    audio = events[3]
    assert isinstance(audio, BidiAudioStreamEvent)
    assert audio.audio == PCM
    assert audio.sample_rate == 24000
    start = events[2]
    assert isinstance(start, BidiResponseStartEvent)
    assert audio.response_id == start.response_id
    usage = events[5]
    assert isinstance(usage, BidiUsageEvent)
    assert (usage.input_tokens, usage.output_tokens, usage.total_tokens) == (5, 7, 12)
    assert usage.input_details == {"audio": 5}
    assert usage.output_details == {"audio": 7}
    final = events[6]
    assert isinstance(final, BidiTranscriptStreamEvent)
    assert (final.role, final.text, final.is_final) == ("assistant", "Hello.", True)
    done = events[7]
    assert isinstance(done, BidiResponseCompleteEvent)
    assert done.stop_reason == "complete"
    assert not tr.response_active


def test_turn_over_several_messages_has_one_start_and_one_final() -> None:
    """Deltas accumulate; one response start and exactly one final transcript per turn."""
    tr = ServerTranslator(text_transcript=False)
    events = feed(
        tr,
        {"serverContent": {"outputTranscription": {"text": "One "}}},
        {"serverContent": {"modelTurn": {"parts": [audio_part()]}}},
        {"serverContent": {"outputTranscription": {"text": "two."}}},
        {"serverContent": {"generationComplete": True}},
        {"serverContent": {"turnComplete": True}},
    )
    starts = [e for e in events if isinstance(e, BidiResponseStartEvent)]
    finals = [e for e in events if isinstance(e, BidiTranscriptStreamEvent) and e.is_final]
    deltas = [e for e in events if isinstance(e, BidiTranscriptStreamEvent) and not e.is_final]
    assert len(starts) == 1
    assert [f.text for f in finals] == ["One two."]
    assert [d.current_transcript for d in deltas] == ["One ", "One two."]
    assert isinstance(events[-1], BidiResponseCompleteEvent)


def test_usage_modalities_are_clean_names_and_incremental() -> None:
    """Usage modality names are 'audio'/'text' (never 'mediamodality.audio'); per message."""
    usage = types.UsageMetadata(
        prompt_token_count=3,
        tool_use_prompt_token_count=2,
        response_token_count=4,
        thoughts_token_count=1,
        cached_content_token_count=2,
        prompt_tokens_details=[
            types.ModalityTokenCount(modality=types.MediaModality.TEXT, token_count=1),
            types.ModalityTokenCount(modality=types.MediaModality.AUDIO, token_count=2),
        ],
        tool_use_prompt_tokens_details=[
            types.ModalityTokenCount(modality=types.MediaModality.TEXT, token_count=2)
        ],
        response_tokens_details=[
            types.ModalityTokenCount(modality=types.MediaModality.AUDIO, token_count=4)
        ],
    )
    event = usage_event(usage)
    assert event.input_details == {"text": 3, "audio": 2}
    assert event.output_details == {"audio": 4}
    assert (event.input_tokens, event.output_tokens, event.total_tokens) == (5, 5, 10)
    assert event.cached_tokens == 2
    assert modality_name(types.MediaModality.AUDIO) == "audio"
    assert modality_name("MediaModality.AUDIO") == "audio"
    assert modality_name(types.MediaModality.MODALITY_UNSPECIFIED) == "text"
    tr = ServerTranslator(text_transcript=False)
    one = {"usageMetadata": {"responseTokenCount": 4, "totalTokenCount": 4}}
    first = feed(tr, one)
    second = feed(tr, one)
    assert first == second  # each message's usage is reported as-is, never summed


def test_interrupted_turn_yields_interruption_then_interrupted_completion() -> None:
    """interrupted -> BidiInterruptionEvent; the turnComplete ends it as 'interrupted'."""
    tr = ServerTranslator(text_transcript=False)
    events = feed(
        tr,
        {
            "serverContent": {
                "modelTurn": {"parts": [audio_part()]},
                "outputTranscription": {"text": "Once "},
            }
        },
        {"serverContent": {"interrupted": True}},
        {"serverContent": {"interrupted": True}},
        {"serverContent": {"turnComplete": True}},
    )
    interruptions = [e for e in events if isinstance(e, BidiInterruptionEvent)]
    assert len(interruptions) == 1
    done = events[-1]
    assert isinstance(done, BidiResponseCompleteEvent)
    assert done.stop_reason == "interrupted"
    assert interruptions[0].response_id == done.response_id
    finals = [e for e in events if isinstance(e, BidiTranscriptStreamEvent) and e.is_final]
    assert [f.text for f in finals] == ["Once "]


def test_output_after_interruption_without_turn_complete_starts_a_new_response() -> None:
    """New model output after an interruption closes the interrupted response first."""
    tr = ServerTranslator(text_transcript=False)
    events = feed(
        tr,
        {"serverContent": {"modelTurn": {"parts": [audio_part()]}}},
        {"serverContent": {"interrupted": True}},
        {"serverContent": {"modelTurn": {"parts": [audio_part()]}}},
    )
    assert kinds(events) == [
        "BidiResponseStartEvent",
        "BidiAudioStreamEvent",
        "BidiInterruptionEvent",
        "BidiResponseCompleteEvent",
        "BidiResponseStartEvent",
        "BidiAudioStreamEvent",
    ]


def test_tool_call_completes_the_response_as_tool_use_once() -> None:
    """toolCall -> tool uses, then stop_reason 'tool_use'; a later turnComplete adds nothing."""
    tr = ServerTranslator(text_transcript=False)
    events = feed(
        tr,
        {
            "toolCall": {
                "functionCalls": [
                    {"id": "c1", "name": "get_weather", "args": {"city": "Paris"}},
                    {"id": "c2", "name": "get_time", "args": {}},
                ]
            },
            "usageMetadata": {"promptTokenCount": 2, "responseTokenCount": 3},
        },
        {"serverContent": {"turnComplete": True}},
    )
    assert kinds(events) == [
        "BidiResponseStartEvent",
        "ToolUseStreamEvent",
        "ToolUseStreamEvent",
        "BidiUsageEvent",
        "BidiResponseCompleteEvent",
    ]
    uses = [e.tool_use for e in events if isinstance(e, ToolUseStreamEvent)]
    assert uses[0] == {"toolUseId": "c1", "name": "get_weather", "input": {"city": "Paris"}}
    done = events[-1]
    assert isinstance(done, BidiResponseCompleteEvent)
    assert done.stop_reason == "tool_use"
    assert tr.tool_names == {"c1": "get_weather", "c2": "get_time"}


def test_tool_call_cancellation_maps_to_tool_cancel_event() -> None:
    """toolCallCancellation -> BidiToolCancelEvent with the ids; they are remembered."""
    tr = ServerTranslator(text_transcript=False)
    events = feed(tr, {"toolCallCancellation": {"ids": ["c1", "c2"]}})
    assert events == [BidiToolCancelEvent(tool_use_ids=("c1", "c2"))]
    assert tr.cancelled == {"c1", "c2"}


def test_session_resumption_update_keeps_the_last_resumable_handle() -> None:
    """newHandle is kept; a non-resumable update (empty handle) keeps the previous one."""
    tr = ServerTranslator(text_transcript=False)
    assert feed(tr, {"sessionResumptionUpdate": {"newHandle": "h1", "resumable": True}}) == []
    assert tr.handle == "h1"
    feed(tr, {"sessionResumptionUpdate": {"newHandle": "", "resumable": False}})
    assert tr.handle == "h1"
    feed(tr, {"sessionResumptionUpdate": {"newHandle": "h2", "resumable": True}})
    assert tr.handle == "h2"


def test_go_away_records_time_left() -> None:
    """goAway{timeLeft} is parsed into seconds for the model's proactive timeout."""
    tr = ServerTranslator(text_transcript=False)
    assert feed(tr, {"goAway": {"timeLeft": "50s"}}) == []
    assert tr.go_away == 50.0
    assert parse_duration("1.5s") == 1.5
    assert parse_duration(3) == 3.0
    assert parse_duration("soon") is None


def test_abnormal_turn_complete_reason_is_an_error_stop() -> None:
    """A safety turnCompleteReason yields a recoverable BidiErrorEvent and stop 'error'."""
    tr = ServerTranslator(text_transcript=False)
    events = feed(
        tr,
        {"serverContent": {"outputTranscription": {"text": "I "}}},
        {
            "serverContent": {
                "turnComplete": True,
                "turnCompleteReason": "GENERATED_CONTENT_SAFETY",
            }
        },
    )
    errors = [e for e in events if isinstance(e, BidiErrorEvent)]
    assert errors[0].code == "GENERATED_CONTENT_SAFETY"
    assert errors[0].recoverable
    done = events[-1]
    assert isinstance(done, BidiResponseCompleteEvent)
    assert done.stop_reason == "error"
    normal = feed(
        ServerTranslator(text_transcript=False),
        {"serverContent": {"outputTranscription": {"text": "ok"}}},
        {"serverContent": {"turnComplete": True, "turnCompleteReason": "NEED_MORE_INPUT"}},
    )
    assert not [e for e in normal if isinstance(e, BidiErrorEvent)]


def test_text_modality_uses_text_parts_and_skips_thoughts() -> None:
    """In TEXT mode text parts are the transcript; thought parts are never spoken text."""
    tr = ServerTranslator(text_transcript=True)
    events = feed(
        tr,
        {"serverContent": {"modelTurn": {"parts": [{"text": "thinking...", "thought": True}]}}},
        {"serverContent": {"modelTurn": {"parts": [{"text": "Hi "}, {"text": "you."}]}}},
        {"serverContent": {"turnComplete": True}},
    )
    finals = [e for e in events if isinstance(e, BidiTranscriptStreamEvent) and e.is_final]
    assert [f.text for f in finals] == ["Hi you."]


def test_audio_mode_text_parts_do_not_double_the_transcript() -> None:
    """With output transcription on, stray text parts are skipped (no doubled transcript)."""
    tr = ServerTranslator(text_transcript=False)
    events = feed(
        tr,
        {
            "serverContent": {
                "modelTurn": {"parts": [{"text": "Hi"}, audio_part()]},
                "outputTranscription": {"text": "Hi"},
            }
        },
        {"serverContent": {"turnComplete": True}},
    )
    finals = [e for e in events if isinstance(e, BidiTranscriptStreamEvent) and e.is_final]
    assert [f.text for f in finals] == ["Hi"]


def test_input_transcription_is_finalized_when_the_model_answers() -> None:
    """Without 'finished', the user's transcript becomes final when model output starts."""
    tr = ServerTranslator(text_transcript=False)
    events = feed(
        tr,
        {"serverContent": {"inputTranscription": {"text": "what "}}},
        {"serverContent": {"inputTranscription": {"text": "time is it"}}},
        {"serverContent": {"outputTranscription": {"text": "Noon."}}},
    )
    user = [e for e in events if isinstance(e, BidiTranscriptStreamEvent) and e.role == "user"]
    assert [(e.text, e.is_final) for e in user] == [
        ("what ", False),
        ("time is it", False),
        ("what time is it", True),
    ]
    assert len({e.item_id for e in user}) == 1
    assert kinds(events)[3] == "BidiResponseStartEvent"  # the final comes first


def test_non_audio_inline_data_and_metadata_are_not_audio() -> None:
    """Inline data that is not audio, grounding metadata and VAD signals emit no audio."""
    tr = ServerTranslator(text_transcript=False)
    events = feed(
        tr,
        {
            "serverContent": {
                "modelTurn": {"parts": [{"inlineData": {"mimeType": "image/png", "data": "AAAA"}}]},
                "groundingMetadata": {"webSearchQueries": ["x"]},
            },
            "voiceActivity": {"voiceActivityType": "ACTIVITY_START"},
        },
    )
    assert events == []


def test_client_side_helpers() -> None:
    """Mime types carry the true rate; tools become JSON-schema function declarations."""
    assert audio_mime(16000) == "audio/pcm;rate=16000"
    assert parse_rate("audio/pcm;rate=24000", 16000) == 24000
    assert parse_rate("audio/pcm", 16000) == 16000
    spec = {
        "name": "get_weather",
        "description": "Weather",
        "inputSchema": {"json": {"type": "object", "properties": {"city": {"type": "string"}}}},
    }
    assert function_declarations([spec]) == [  # type: ignore[list-item]
        {
            "name": "get_weather",
            "description": "Weather",
            "parameters_json_schema": spec["inputSchema"]["json"],  # type: ignore[index]
        }
    ]


def test_function_response_uses_function_name_and_output_or_error() -> None:
    """A tool result becomes FunctionResponse(id, name=<function name>, response={output|error})."""
    ok = function_response(
        {"toolUseId": "c1", "status": "success", "content": [{"text": "sunny"}]}, "get_weather"
    )
    assert ok == {"id": "c1", "name": "get_weather", "response": {"output": "sunny"}}
    data = function_response(
        {"toolUseId": "c2", "status": "success", "content": [{"json": {"t": 21}}]}, "get_weather"
    )
    assert data["response"] == {"output": {"t": 21}}
    err = function_response(
        {"toolUseId": "c3", "status": "error", "content": [{"text": "boom"}]}, "get_weather"
    )
    assert err["response"] == {"error": "boom"}
    types.FunctionResponse(**ok)  # the SDK accepts it


def test_history_renders_tool_calls_and_results_as_text() -> None:
    """History: user->user, assistant->model, tool use/result rendered as text, roles merged."""
    turns = history_turns(
        [
            {"role": "user", "content": [{"text": "weather in Paris?"}]},
            {
                "role": "assistant",
                "content": [
                    {
                        "toolUse": {
                            "toolUseId": "c1",
                            "name": "get_weather",
                            "input": {"city": "Paris"},
                        }
                    }
                ],
            },
            {
                "role": "user",
                "content": [
                    {
                        "toolResult": {
                            "toolUseId": "c1",
                            "status": "success",
                            "content": [{"text": "sunny"}],
                        }
                    }
                ],
            },
            {"role": "assistant", "content": [{"text": "It is sunny."}]},
            {"role": "assistant", "content": [{"text": "Anything else?"}]},
        ]
    )
    assert [t["role"] for t in turns] == ["user", "model", "user", "model"]
    assert turns[1]["parts"][0]["text"] == '[tool call get_weather({"city": "Paris"}) id=c1]'
    assert turns[2]["parts"][0]["text"] == "[tool result id=c1 status=success: sunny]"
    assert [p["text"] for p in turns[3]["parts"]] == ["It is sunny.", "Anything else?"]
    types.LiveClientContent(turns=turns, turn_complete=True)  # the SDK accepts it


@pytest.mark.parametrize(
    ("code", "retryable"),
    [
        (1007, False),
        (1008, False),
        (1011, True),
        (1006, True),
        (1000, True),
        (429, True),
        (403, False),
    ],
)
def test_close_codes_map_to_typed_errors(code: int, retryable: bool) -> None:
    """1007/1008 are not retryable and keep the reason; 1011 and drops are retryable."""
    err = error_from_close(code, "the reason")
    assert err.code == code
    assert err.retryable is retryable
    assert err.provider == "gemini_live"
    if code != 1006:
        assert "the reason" in str(err)


def test_redact_hides_secrets() -> None:
    """redact() removes every secret from a message."""
    assert redact("bad key AIza-secret-1 here", ["AIza-secret-1", None]) == "bad key *** here"


@pytest.mark.parametrize("rate", [1, 16, 10**9])
def test_audio_at_an_impossible_rate_is_an_error_event_not_a_crash(rate: int) -> None:
    """Audio whose mime type states a rate outside 8-192 kHz is skipped with a BidiErrorEvent."""
    tr = ServerTranslator(text_transcript=False)
    events = feed(tr, {"serverContent": {"modelTurn": {"parts": [audio_part(rate=rate)]}}})
    (error,) = [e for e in events if isinstance(e, BidiErrorEvent)]
    assert f"Gemini sent audio at {rate} Hz" in error.message
    assert error.recoverable
    assert not [e for e in events if isinstance(e, BidiAudioStreamEvent)]


def test_tool_args_that_are_not_json_reach_the_tool_as_text() -> None:
    """A function call whose args hold NaN is not a decoder crash: the tool gets them as text."""
    tr = ServerTranslator(text_transcript=False)
    call = {"id": "c1", "name": "f", "args": {"a": math.nan}}
    events = check_decoder(lambda: feed(tr, {"toolCall": {"functionCalls": [call]}}))
    (use,) = [e for e in events if isinstance(e, ToolUseStreamEvent)]
    assert use.tool_use["input"] == '{"a": NaN}'
