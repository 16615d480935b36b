"""Gemini-specific behaviour, end to end: the real google-genai client against the fake service."""

from __future__ import annotations

import asyncio
import base64
import logging
import ssl
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from google.genai import errors as genai_errors

from bidi_core import (
    BidiAudioInputEvent,
    BidiAudioStreamEvent,
    BidiConnectionError,
    BidiErrorEvent,
    BidiImageInputEvent,
    BidiModelTimeoutError,
    BidiOutputEvent,
    BidiResponseCompleteEvent,
    BidiTextInputEvent,
    BidiToolCancelEvent,
    BidiTranscriptStreamEvent,
    BidiUsageEvent,
    ConfigError,
    ToolResultEvent,
    ToolUseStreamEvent,
    UnsupportedInputError,
)
from bidi_core.testing import AssistantConfig, speak
from bidi_core.types import ToolSpec
from bidi_gemini_live import GeminiLiveModel
from bidi_gemini_live.testing import FakeGeminiServer, g, serve

from .conftest import make_model

WEATHER: ToolSpec = {
    "name": "get_weather",
    "description": "Weather for a city.",
    "inputSchema": {
        "json": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    },
}


class Reader:
    """Collects a model's events until a predicate holds (bounded in time)."""

    def __init__(self, model: GeminiLiveModel) -> None:
        self.model = model
        self.seen: list[BidiOutputEvent] = []
        self._iter: AsyncIterator[BidiOutputEvent] = aiter(model.receive())

    async def until(self, predicate: Callable[[BidiOutputEvent], bool]) -> list[BidiOutputEvent]:
        start = len(self.seen)
        async with asyncio.timeout(15):
            while True:
                event = await anext(self._iter)
                self.seen.append(event)
                if predicate(event):
                    return self.seen[start:]

    async def turn(self, text: str) -> list[BidiOutputEvent]:
        await self.model.send(BidiTextInputEvent(text=text))
        return await self.until(completed("complete"))

    async def aclose(self) -> None:
        closer = getattr(self._iter, "aclose", None)
        if closer is not None:
            await closer()


async def eventually(condition: Callable[[], bool]) -> None:
    """Wait (bounded) until the fake has processed what the test sent."""
    async with asyncio.timeout(10):
        while not condition():
            await asyncio.sleep(0.01)


def audio_frames(fake: FakeGeminiServer) -> list[Any]:
    return [f["audio"] for f in client_frames(fake, "realtime_input") if "audio" in f]


def completed(stop: str | None = None) -> Callable[[BidiOutputEvent], bool]:
    return lambda e: isinstance(e, BidiResponseCompleteEvent) and stop in (None, e.stop_reason)


def final_text(events: list[BidiOutputEvent], role: str = "assistant") -> list[str]:
    return [
        e.text
        for e in events
        if isinstance(e, BidiTranscriptStreamEvent) and e.role == role and e.is_final
    ]


def client_frames(fake: FakeGeminiServer, key: str) -> list[Any]:
    """Client frames of one kind (either spelling of the top-level key)."""
    camel = key.split("_", maxsplit=1)[0] + "".join(w.title() for w in key.split("_")[1:])
    return [f.get(key, f.get(camel)) for f in fake.received if key in f or camel in f]


@pytest.fixture
async def started(fake: FakeGeminiServer) -> AsyncIterator[tuple[GeminiLiveModel, Reader]]:
    model = make_model(fake)
    await model.start(system_prompt="Be brief.", tools=[WEATHER])
    reader = Reader(model)
    try:
        yield model, reader
    finally:
        await reader.aclose()
        await model.stop()


# ------------------------------------------------------------------ setup


async def test_first_connect_requests_resumption_without_a_handle(fake: FakeGeminiServer) -> None:
    """The first setup has sessionResumption {} (never handle: null), the prompt and tools."""
    model = make_model(fake)
    await model.start(system_prompt="Be brief.", tools=[WEATHER])
    await model.stop()
    setup = fake.setups[0]
    assert setup["sessionResumption"] == {}
    assert setup["model"] == "models/gemini-2.5-flash-native-audio-preview-09-2025"
    assert setup["systemInstruction"]["parts"] == [{"text": "Be brief."}]
    decl = setup["tools"][0]["functionDeclarations"][0]
    assert decl["name"] == "get_weather"
    assert decl["parameters_json_schema"] == WEATHER["inputSchema"]["json"]
    assert "inputAudioTranscription" in setup
    assert "outputAudioTranscription" in setup
    assert "historyConfig" not in setup
    assert not client_frames(fake, "client_content")  # no history, nothing seeded


async def test_provider_config_reaches_the_setup(fake: FakeGeminiServer) -> None:
    """Voice, VAD, context compression and every other live-config field pass through."""
    model = make_model(
        fake,
        provider_config={
            "audio": {"voice": "Puck", "language_code": "en-US"},
            "realtime_input_config": {
                "automatic_activity_detection": {"disabled": False, "silence_duration_ms": 300}
            },
            "context_window_compression": {"sliding_window": {"target_tokens": 1000}},
            "inference": {
                "temperature": 0.3,
                "max_output_tokens": 99,
                "proactivity": {"proactive_audio": True},
                "tools": [{"google_search": {}}],
            },
        },
    )
    await model.start(tools=[WEATHER])
    await model.stop()
    setup = fake.setups[0]
    generation = setup["generationConfig"]
    assert generation["temperature"] == 0.3
    assert generation["maxOutputTokens"] == 99
    speech = generation["speechConfig"]
    assert speech["voice_config"]["prebuilt_voice_config"]["voice_name"] == "Puck"
    assert speech["language_code"] == "en-US"
    vad = setup["realtimeInputConfig"]["automatic_activity_detection"]
    assert vad == {"disabled": False, "silence_duration_ms": 300}
    assert setup["contextWindowCompression"]["sliding_window"] == {"target_tokens": 1000}
    assert setup["sessionResumption"] == {}
    assert g(setup["proactivity"], "proactiveAudio") is True
    assert len(setup["tools"]) == 2  # function declarations + google_search


async def test_transcription_can_be_turned_off(fake: FakeGeminiServer) -> None:
    """input/output_transcription=False leave the fields out; output text then is not claimed."""
    model = make_model(
        fake, provider_config={"input_transcription": False, "output_transcription": False}
    )
    assert model.capabilities.output_modalities == ("audio",)
    await model.start()
    await model.stop()
    assert "inputAudioTranscription" not in fake.setups[0]
    assert "outputAudioTranscription" not in fake.setups[0]


# ------------------------------------------------------------------- send


async def test_mid_session_text_is_realtime_input(started: tuple[GeminiLiveModel, Reader]) -> None:
    """Text goes as realtimeInput.text, never clientContent (rejected mid-session)."""
    _, reader = started
    turn = await reader.turn("hello gemini")
    assert final_text(turn) == ["You said: hello gemini."]


async def test_text_frames_on_the_wire(fake: FakeGeminiServer) -> None:
    """The wire carries realtime_input.text and no client_content."""
    model = make_model(fake)
    await model.start()
    reader = Reader(model)
    await reader.turn("wire check")
    await reader.aclose()
    await model.stop()
    assert client_frames(fake, "realtime_input") == [{"text": "wire check"}]
    assert not client_frames(fake, "client_content")


async def test_audio_mime_states_the_true_rate(fake: FakeGeminiServer) -> None:
    """16 kHz passes through; 24 kHz input is resampled to 16 kHz and the mime type says so."""
    model = make_model(fake)
    await model.start()
    await model.send(BidiAudioInputEvent(audio=bytes(640), sample_rate=16000))
    await model.send(BidiAudioInputEvent(audio=bytes(960), sample_rate=24000))
    await eventually(lambda: len(audio_frames(fake)) == 2)
    await model.stop()
    audio = audio_frames(fake)
    assert {a["mime_type"] for a in audio} == {"audio/pcm;rate=16000"}
    assert len(base64.urlsafe_b64decode(audio[0]["data"])) == 640


async def test_configured_input_rate_is_sent_as_is(fake: FakeGeminiServer) -> None:
    """audio.input_sample_rate=24000 sends 24 kHz PCM with rate=24000 in the mime type."""
    model = make_model(fake, provider_config={"audio": {"input_sample_rate": 24000}})
    assert model.capabilities.input_sample_rates == (24000,)
    await model.start()
    await model.send(BidiAudioInputEvent(audio=bytes(960), sample_rate=24000))
    await eventually(lambda: len(audio_frames(fake)) == 1)
    await model.stop()
    audio = audio_frames(fake)
    assert len(base64.urlsafe_b64decode(audio[0]["data"])) == 960
    assert audio[0]["mime_type"] == "audio/pcm;rate=24000"


async def test_spoken_turn_at_24k_is_understood(fake: FakeGeminiServer) -> None:
    """Speech sent at 24 kHz is resampled, transcribed (final user transcript) and answered."""
    model = make_model(fake)
    await model.start()
    reader = Reader(model)
    pcm = speak("good morning", 24000) + bytes(24000 * 2 * 6 // 10)
    for offset in range(0, len(pcm), 960):
        await model.send(BidiAudioInputEvent(audio=pcm[offset : offset + 960], sample_rate=24000))
    turn = await reader.until(completed("complete"))
    await reader.aclose()
    await model.stop()
    assert final_text(turn, "user") == ["good morning"]
    assert final_text(turn) == ["You said: good morning."]


async def test_input_transcription_finished_flag_finalizes() -> None:
    """When the service marks the transcription finished, the user's final comes from it."""
    async with serve(input_transcription_finished=True) as fake:
        model = make_model(fake)
        await model.start()
        reader = Reader(model)
        pcm = speak("hello there", 16000) + bytes(16000 * 2 * 6 // 10)
        for offset in range(0, len(pcm), 640):
            await model.send(
                BidiAudioInputEvent(audio=pcm[offset : offset + 640], sample_rate=16000)
            )
        turn = await reader.until(completed("complete"))
        await reader.aclose()
        await model.stop()
    assert final_text(turn, "user") == ["hello there"]


async def test_image_is_realtime_video_blob(fake: FakeGeminiServer) -> None:
    """Images go as realtimeInput.video blobs with their mime type."""
    model = make_model(fake)
    await model.start()
    await model.send(BidiImageInputEvent(image=b"\xff\xd8\xff\xe0jpeg", mime_type="image/jpeg"))
    await eventually(lambda: bool(fake.assistants and fake.assistants[0].inputs))
    await model.stop()
    video = [f["video"] for f in client_frames(fake, "realtime_input") if "video" in f]
    assert video[0]["mime_type"] == "image/jpeg"
    assert fake.assistants[0].inputs == [("image", ("image/jpeg", 8))]


# ------------------------------------------------------------------ tools


async def test_tool_response_carries_the_function_name(
    fake: FakeGeminiServer, started: tuple[GeminiLiveModel, Reader]
) -> None:
    """FunctionResponse.name is the function's name (not the call id) and id is the call id."""
    model, reader = started
    await model.send(BidiTextInputEvent(text='get_weather {"city": "Paris"}'))
    events = await reader.until(completed("tool_use"))
    use = next(e.tool_use for e in events if isinstance(e, ToolUseStreamEvent))
    assert use["input"] == {"city": "Paris"}
    await model.send(
        ToolResultEvent(
            tool_result={
                "toolUseId": use["toolUseId"],
                "status": "success",
                "content": [{"text": "sunny"}],
            }
        )
    )
    turn = await reader.until(completed("complete"))
    assert final_text(turn) == ["get_weather returned sunny."]
    response = client_frames(fake, "tool_response")[0]["functionResponses"][0]
    assert response == {
        "id": use["toolUseId"],
        "name": "get_weather",
        "response": {"output": "sunny"},
    }


async def test_tool_cancellation_is_an_event_and_drops_the_result(
    fake: FakeGeminiServer, started: tuple[GeminiLiveModel, Reader]
) -> None:
    """toolCallCancellation -> BidiToolCancelEvent; a late result for it is not sent."""
    model, reader = started
    await model.send(BidiTextInputEvent(text="get_weather [then cancel]"))
    events = await reader.until(lambda e: isinstance(e, BidiToolCancelEvent))
    use = next(e.tool_use for e in events if isinstance(e, ToolUseStreamEvent))
    cancel = events[-1]
    assert isinstance(cancel, BidiToolCancelEvent)
    assert cancel.tool_use_ids == (use["toolUseId"],)
    await model.send(
        ToolResultEvent(
            tool_result={"toolUseId": use["toolUseId"], "status": "error", "content": []}
        )
    )
    turn = await reader.turn("still here")
    assert final_text(turn) == ["You said: still here."]
    assert not client_frames(fake, "tool_response")


async def test_result_for_an_unknown_call_is_refused(
    started: tuple[GeminiLiveModel, Reader],
) -> None:
    """A tool result whose id this connection never issued raises UnsupportedInputError."""
    model, _ = started
    with pytest.raises(UnsupportedInputError, match="no pending tool call"):
        await model.send(
            ToolResultEvent(tool_result={"toolUseId": "nope", "status": "success", "content": []})
        )


# ------------------------------------------------------------ resumption


async def test_resumption_handle_flow(fake: FakeGeminiServer) -> None:
    """goAway -> timeout with the last handle; restart sends it and no history; memory is kept."""
    model = make_model(fake)
    await model.start()
    reader = Reader(model)
    await reader.turn("remember the tulips")
    await model.send(BidiTextInputEvent(text="[fault:time_limit]"))
    with pytest.raises(BidiModelTimeoutError) as caught:
        await reader.until(lambda e: False)
    await reader.aclose()
    await model.stop()
    handle = caught.value.restart_config["resumption_handle"]
    assert handle in fake.snapshots
    assert "goAway" in str(caught.value)
    sent_before = len(client_frames(fake, "client_content"))
    history = [
        {"role": "user", "content": [{"text": "remember the tulips"}]},
        {"role": "assistant", "content": [{"text": "You said: remember the tulips."}]},
    ]
    await model.start(messages=history, **caught.value.restart_config)
    reader = Reader(model)
    turn = await reader.turn("recall")
    await reader.aclose()
    await model.stop()
    assert fake.setups[1]["sessionResumption"] == {"handle": handle}
    assert len(client_frames(fake, "client_content")) == sent_before  # no history re-sent
    assert final_text(turn) == ["Earlier you said: remember the tulips."]


async def test_history_is_reseeded_without_a_handle(fake: FakeGeminiServer) -> None:
    """Without a handle, text history (tools as text) is seeded via historyConfig+clientContent."""
    model = make_model(fake)
    history = [
        {"role": "user", "content": [{"text": "my name is Ada"}]},
        {
            "role": "assistant",
            "content": [
                {"toolUse": {"toolUseId": "c1", "name": "get_weather", "input": {"city": "Oslo"}}}
            ],
        },
        {
            "role": "user",
            "content": [
                {
                    "toolResult": {
                        "toolUseId": "c1",
                        "status": "success",
                        "content": [{"text": "snow"}],
                    }
                }
            ],
        },
        {"role": "assistant", "content": [{"text": "It snows in Oslo."}]},
    ]
    await model.start(messages=history)  # type: ignore[arg-type]
    reader = Reader(model)
    turn = await reader.turn("recall")
    await reader.aclose()
    await model.stop()
    setup = fake.setups[0]
    assert g(g(setup, "historyConfig"), "initialHistoryInClientContent") is True
    assert setup["sessionResumption"] == {}
    (content,) = client_frames(fake, "client_content")
    assert content["turnComplete"] is True
    assert [t["role"] for t in content["turns"]] == ["user", "model", "user", "model"]
    assert "get_weather" in content["turns"][1]["parts"][0]["text"]
    assert "snow" in content["turns"][2]["parts"][0]["text"]
    # The history got no answer of its own; the first answer is to "recall".
    assert final_text(reader.seen) == [final_text(turn)[0]]
    assert "[tool result id=c1" in final_text(turn)[0]


async def test_legacy_history_mode_sends_turn_complete_false(fake: FakeGeminiServer) -> None:
    """history='client_content' seeds clientContent with turnComplete false and no historyConfig."""
    model = make_model(fake, provider_config={"history": "client_content"})
    await model.start(messages=[{"role": "user", "content": [{"text": "I like tea"}]}])
    reader = Reader(model)
    turn = await reader.turn("recall")
    await reader.aclose()
    await model.stop()
    assert "historyConfig" not in fake.setups[0]
    (content,) = client_frames(fake, "client_content")
    assert content.get("turnComplete", False) is False
    assert final_text(turn) == ["Earlier you said: I like tea."]


async def test_resumption_off_sends_no_session_resumption(fake: FakeGeminiServer) -> None:
    """resumption=False: no sessionResumption, no handles, the timeout carries no handle."""
    model = make_model(fake, provider_config={"resumption": False})
    await model.start()
    reader = Reader(model)
    await reader.turn("hello")
    await model.send(BidiTextInputEvent(text="[fault:time_limit]"))
    with pytest.raises(BidiModelTimeoutError) as caught:
        await reader.until(lambda e: False)
    await reader.aclose()
    await model.stop()
    assert "sessionResumption" not in fake.setups[0]
    assert caught.value.restart_config == {}


async def test_go_away_mid_answer_lets_the_answer_finish() -> None:
    """goAway during an answer with time to spare: the answer completes, then the timeout."""
    config = AssistantConfig(story_seconds=1.0, story_pace=0.2)
    async with serve(assistant_config=config) as fake:
        model = make_model(fake)
        await model.start()
        reader = Reader(model)
        await model.send(BidiTextInputEvent(text="tell me a story"))
        await reader.until(lambda e: isinstance(e, BidiAudioStreamEvent))
        await fake.inject({"goAway": {"timeLeft": "30s"}})
        with pytest.raises(BidiModelTimeoutError):
            await reader.until(lambda e: False)
        await reader.aclose()
        await model.stop()
    done = [e for e in reader.seen if isinstance(e, BidiResponseCompleteEvent)]
    assert [d.stop_reason for d in done] == ["complete"]


async def test_go_away_with_no_time_left_ends_at_once() -> None:
    """goAway with less time left than the margin raises the timeout without waiting."""
    config = AssistantConfig(story_seconds=8.0, story_pace=0.25)
    async with serve(assistant_config=config) as fake:
        model = make_model(fake)
        await model.start()
        reader = Reader(model)
        await model.send(BidiTextInputEvent(text="tell me a story"))
        await reader.until(lambda e: isinstance(e, BidiAudioStreamEvent))
        await fake.inject({"goAway": {"timeLeft": "0s"}})
        with pytest.raises(BidiModelTimeoutError):
            await reader.until(lambda e: False)
        await reader.aclose()
        await model.stop()
    assert not [e for e in reader.seen if isinstance(e, BidiResponseCompleteEvent)]


# ------------------------------------------------------------------ faults


@pytest.mark.parametrize(
    ("code", "retryable"), [(1007, False), (1008, False), (1011, True)], ids=str
)
async def test_close_codes_raise_typed_errors(
    fake: FakeGeminiServer, code: int, retryable: bool
) -> None:
    """A close 1007/1008 is a non-retryable error with the reason; 1011 is retryable; chained."""
    model = make_model(fake)
    await model.start()
    reader = Reader(model)
    await reader.until(lambda e: True)  # the connection start
    await fake.close_connections(code, f"reason {code}")
    with pytest.raises(BidiConnectionError) as caught:
        await reader.until(lambda e: False)
    await reader.aclose()
    await model.stop()
    assert caught.value.code == code
    assert caught.value.retryable is retryable
    assert f"reason {code}" in str(caught.value)
    assert isinstance(caught.value.__cause__, genai_errors.APIError)


async def test_setup_refused_by_policy_fails_start() -> None:
    """A setup closed with 1008 makes start() raise a non-retryable BidiConnectionError."""
    async with serve(reject_setup=(1008, "API key not valid.")) as fake:
        model = make_model(fake)
        with pytest.raises(BidiConnectionError, match="API key not valid") as caught:
            await model.start()
        assert caught.value.retryable is False
        await model.stop()
        # The model can be started again (and fails the same way: no state leaked).
        with pytest.raises(BidiConnectionError):
            await model.start()


async def test_error_as_close_1011_is_retryable() -> None:
    """With error_signal='close' the injected error is a close 1011: a retryable error."""
    async with serve(error_signal="close") as fake:
        model = make_model(fake)
        await model.start()
        reader = Reader(model)
        await model.send(BidiTextInputEvent(text="[fault:error]"))
        with pytest.raises(BidiConnectionError) as caught:
            await reader.until(lambda e: False)
        await reader.aclose()
        await model.stop()
    assert caught.value.code == 1011
    assert caught.value.retryable


async def test_status_frame_is_a_recoverable_error_event(
    started: tuple[GeminiLiveModel, Reader],
) -> None:
    """A google.rpc.Status frame becomes BidiErrorEvent(recoverable) and the talk goes on."""
    model, reader = started
    await model.send(BidiTextInputEvent(text="[fault:error]"))
    events = await reader.until(lambda e: isinstance(e, BidiErrorEvent))
    error = events[-1]
    assert isinstance(error, BidiErrorEvent)
    assert error.code == "UNAVAILABLE"
    assert error.details["code"] == 503
    assert final_text(await reader.turn("after the error")) == ["You said: after the error."]


async def test_malformed_frame_is_skipped_with_an_error_event(
    started: tuple[GeminiLiveModel, Reader],
) -> None:
    """A non-JSON frame yields BidiErrorEvent(code='malformed_frame'); the connection stays."""
    model, reader = started
    await model.send(BidiTextInputEvent(text="[fault:malformed]"))
    events = await reader.until(lambda e: isinstance(e, BidiErrorEvent))
    assert events[-1].code == "malformed_frame"  # type: ignore[union-attr]
    assert final_text(await reader.turn("after the frame")) == ["You said: after the frame."]


async def test_injected_combined_message_loses_nothing(
    fake: FakeGeminiServer, started: tuple[GeminiLiveModel, Reader]
) -> None:
    """One frame with audio + both transcriptions + usage + turnComplete yields every event."""
    _, reader = started
    pcm = b"\x10\x00" * 480
    await fake.inject(
        {
            "serverContent": {
                "inputTranscription": {"text": "hey"},
                "modelTurn": {
                    "parts": [
                        {
                            "inlineData": {
                                "mimeType": "audio/pcm;rate=24000",
                                "data": base64.b64encode(pcm).decode(),
                            }
                        }
                    ]
                },
                "outputTranscription": {"text": "Yo."},
                "turnComplete": True,
            },
            "usageMetadata": {
                "promptTokenCount": 1,
                "responseTokenCount": 2,
                "totalTokenCount": 3,
                "responseTokensDetails": [{"modality": "AUDIO", "tokenCount": 2}],
            },
        }
    )
    events = await reader.until(completed())
    audio = [e for e in events if isinstance(e, BidiAudioStreamEvent)]
    usage = [e for e in events if isinstance(e, BidiUsageEvent)]
    assert b"".join(a.audio for a in audio) == pcm
    assert final_text(events, "user") == ["hey"]
    assert final_text(events) == ["Yo."]
    assert usage[0].output_details == {"audio": 2}


async def test_usage_modalities_are_clean_end_to_end(
    started: tuple[GeminiLiveModel, Reader],
) -> None:
    """Usage from the wire has 'text'/'audio' modality keys."""
    _, reader = started
    turn = await reader.turn("count tokens")
    usage = [e for e in turn if isinstance(e, BidiUsageEvent)]
    keys = {k for u in usage for k in (*u.input_details, *u.output_details)}
    assert keys <= {"text", "audio"}
    assert "audio" in keys


# ----------------------------------------------------------- configuration


def test_unknown_keys_are_errors_naming_the_closest() -> None:
    """Unknown kwargs and config keys raise ConfigError naming the closest accepted key."""
    with pytest.raises(ConfigError, match="model_id"):
        GeminiLiveModel(model="x")  # type: ignore[call-arg]
    with pytest.raises(ConfigError, match="response_modalities"):
        GeminiLiveModel(provider_config={"response_modality": ["AUDIO"]})
    with pytest.raises(ConfigError, match="temperature"):
        GeminiLiveModel(provider_config={"inference": {"temprature": 1.0}})
    with pytest.raises(ConfigError, match="api_key"):
        GeminiLiveModel(client_config={"apikey": "x"})
    with pytest.raises(ConfigError, match="voice"):
        GeminiLiveModel(provider_config={"audio": {"voise": "Puck"}})
    with pytest.raises(ConfigError, match="system_prompt"):
        GeminiLiveModel(provider_config={"inference": {"system_instruction": "x"}})
    with pytest.raises(ConfigError, match="AUDIO"):
        GeminiLiveModel(provider_config={"response_modalities": ["AUDIO", "TEXT"]})
    with pytest.raises(ConfigError, match="Invalid"):
        GeminiLiveModel(provider_config={"inference": {"temperature": "hot"}})


def test_config_is_copied_and_live_objects_are_shared() -> None:
    """Config dicts are private copies; an SSLContext in client_config is kept by reference."""
    ctx = ssl.create_default_context()
    provider = {"audio": {"voice": "Puck"}}
    client = {"api_key": "k", "http_options": {"async_client_args": {"ssl": ctx}}}
    a = GeminiLiveModel(provider_config=provider, client_config=client)
    b = GeminiLiveModel(provider_config=provider, client_config=client)
    provider["audio"]["voice"] = "Kore"
    assert a.config["provider_config"]["audio"]["voice"] == "Puck"
    assert a.config["provider_config"] is not b.config["provider_config"]
    assert a.config["client_config"]["http_options"]["async_client_args"]["ssl"] is ctx


def test_plain_text_gateway_url_is_refused_unless_allowed() -> None:
    """A ws:// Vertex gateway URL to a remote host is refused unless explicitly allowed."""
    client = {"vertexai": True, "http_options": {"base_url": "ws://gateway.example:80/live"}}
    with pytest.raises(ConfigError, match="plain-text"):
        GeminiLiveModel(client_config=client)
    GeminiLiveModel(client_config=client, provider_config={"allow_insecure_transport": True})
    local = {"vertexai": True, "http_options": {"base_url": "ws://127.0.0.1:9/live"}}
    GeminiLiveModel(client_config=local)


def test_text_modality_capabilities() -> None:
    """response_modalities ['TEXT'] makes the model output text only."""
    model = GeminiLiveModel(provider_config={"response_modalities": ["text"]})
    assert model.capabilities.output_modalities == ("text",)


async def test_vertex_only_field_is_a_config_error(fake: FakeGeminiServer) -> None:
    """resumption.transparent (Vertex AI only) with an API key fails start() with ConfigError."""
    model = make_model(fake, provider_config={"resumption": {"transparent": True}})
    with pytest.raises(ConfigError, match="transparent"):
        await model.start()
    await model.stop()


async def test_no_api_key_anywhere_is_a_config_error() -> None:
    """Without an api_key in client_config or the env, start() raises ConfigError (no I/O)."""
    model = GeminiLiveModel()
    with pytest.raises(ConfigError, match="No Gemini API key: set GOOGLE_API_KEY"):
        await model.start()
    await model.stop()


async def test_api_key_never_leaks(caplog: pytest.LogCaptureFixture) -> None:
    """The API key is absent from repr, logs, events and errors, even when the server echoes it."""
    secret = "AIzaSyTEST-very-secret-key-0123456789"
    caplog.set_level(logging.DEBUG)
    async with serve(reject_setup=(1008, f"API key {secret} not valid.")) as fake:
        model = make_model(fake, client_config={"api_key": secret})
        assert secret not in repr(model)
        with pytest.raises(BidiConnectionError) as caught:
            await model.start()
        assert secret not in str(caught.value)
        assert secret not in repr(caught.value)
    async with serve() as fake:
        model = make_model(fake, client_config={"api_key": secret})
        await model.start()
        reader = Reader(model)
        await reader.turn("hello")
        await model.send(BidiTextInputEvent(text="[fault:error]"))
        await reader.until(lambda e: isinstance(e, BidiErrorEvent))
        await fake.close_connections(1008, f"key {secret} revoked")
        with pytest.raises(BidiConnectionError) as closed:
            await reader.until(lambda e: False)
        await reader.aclose()
        await model.stop()
        assert fake.headers[0]["x-goog-api-key"] == secret  # it was used on the wire
    assert secret not in str(closed.value)
    for event in reader.seen:
        assert secret not in str(event.to_dict())
    ours = [r for r in caplog.records if r.name.startswith(("bidi", "google_genai"))]
    assert all(secret not in r.getMessage() for r in ours)


def test_clients_share_one_default_tls_context_unless_the_user_sets_one() -> None:
    """Each live session's client reuses one default TLS context (certifi is loaded once).

    google-genai builds fresh contexts per client otherwise (~0.75 MB per session);
    TLS settings the user passes, and Vertex AI (client certificates), are left alone.
    """
    import ssl

    from bidi_gemini_live._model import _share_tls

    first = _share_tls({"api_key": "k"})
    second = _share_tls({"api_key": "k", "http_options": {"api_version": "v1beta"}})
    ctx = first["http_options"]["client_args"]["verify"]
    assert isinstance(ctx, ssl.SSLContext)
    assert second["http_options"]["client_args"]["verify"] is ctx
    assert second["http_options"]["async_client_args"]["ssl"] is ctx
    assert second["http_options"]["api_version"] == "v1beta"
    own = ssl.create_default_context()
    mine = _share_tls({"http_options": {"async_client_args": {"ssl": own, "verify": own}}})
    assert mine["http_options"]["async_client_args"] == {"ssl": own, "verify": own}
    assert "verify" not in mine["http_options"]["client_args"]
    vertex = {"vertexai": True, "project": "p", "location": "l"}
    assert _share_tls(vertex) is vertex
