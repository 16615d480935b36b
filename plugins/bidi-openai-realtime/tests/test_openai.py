"""OpenAI-specific behaviour, end to end: the real client stack against the fake GA server."""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection
from websockets.asyncio.server import serve as ws_serve

from bidi_core import (
    BidiConnectionError,
    BidiModelStateError,
    BidiModelTimeoutError,
    ProviderError,
)
from bidi_core.events import (
    BidiAudioInputEvent,
    BidiAudioStreamEvent,
    BidiErrorEvent,
    BidiImageInputEvent,
    BidiInterruptionEvent,
    BidiOutputEvent,
    BidiResponseCompleteEvent,
    BidiTextInputEvent,
    BidiTranscriptStreamEvent,
    ToolResultEvent,
    ToolUseStreamEvent,
)
from bidi_core.testing import AssistantConfig, speak
from bidi_core.types import ToolSpec
from bidi_openai_realtime import OpenAIRealtimeModel
from bidi_openai_realtime._wire import BETA_EVENT_TYPES
from bidi_openai_realtime.testing import OpenAIRealtimeFake, client_event_types, serve

STEP = 15.0


def tool(name: str) -> ToolSpec:
    return {
        "name": name,
        "description": f"The {name} tool.",
        "inputSchema": {"json": {"type": "object", "properties": {"value": {"type": "integer"}}}},
    }


def make(fake: OpenAIRealtimeFake, **provider_config: Any) -> OpenAIRealtimeModel:
    return OpenAIRealtimeModel(provider_config=provider_config, **fake.model_kwargs)


@pytest.fixture
async def short_story() -> AsyncIterator[OpenAIRealtimeFake]:
    """A fake whose stories are short (about 1 s of audio, streamed in about 0.25 s)."""
    async with serve(assistant_config=AssistantConfig(story_seconds=1.0)) as server:
        yield server
    assert not server.invalid
    assert not server.invalid_sent


class Reader:
    """Consumes model.receive(), keeping every event."""

    def __init__(self, model: OpenAIRealtimeModel) -> None:
        self.iter = aiter(model.receive())
        self.seen: list[BidiOutputEvent] = []

    async def until(self, predicate: Callable[[BidiOutputEvent], bool]) -> list[BidiOutputEvent]:
        start = len(self.seen)
        async with asyncio.timeout(STEP):
            while True:
                event = await anext(self.iter)
                self.seen.append(event)
                if predicate(event):
                    return self.seen[start:]

    async def turn(self) -> list[BidiOutputEvent]:
        return await self.until(
            lambda e: isinstance(e, BidiResponseCompleteEvent) and e.stop_reason != "tool_use"
        )


def final(events: list[BidiOutputEvent], role: str = "assistant") -> list[str]:
    return [
        e.text
        for e in events
        if isinstance(e, BidiTranscriptStreamEvent) and e.role == role and e.is_final
    ]


async def speak_to(model: OpenAIRealtimeModel, text: str, rate: int = 24000) -> None:
    pcm = speak(text, rate) + bytes(rate * 600 // 1000 * 2)
    step = rate * 20 // 1000 * 2
    for offset in range(0, len(pcm), step):
        await model.send(BidiAudioInputEvent(audio=pcm[offset : offset + step], sample_rate=rate))


async def test_start_sends_a_ga_session_update(fake: OpenAIRealtimeFake) -> None:
    """start() sends session.update (type realtime, instructions, tools, audio, VAD) first."""
    model = make(fake, audio={"voice": "cedar"})
    await model.start(system_prompt="Be terse.", tools=[tool("lookup")])
    await model.stop()
    first = fake.received[0]
    assert first["type"] == "session.update"
    session = first["session"]
    assert session["type"] == "realtime"
    assert session["instructions"] == "Be terse."
    assert session["tools"] == [
        {
            "type": "function",
            "name": "lookup",
            "description": "The lookup tool.",
            "parameters": tool("lookup")["inputSchema"]["json"],
        }
    ]
    assert session["tool_choice"] == "auto"
    assert session["audio"]["input"]["format"] == {"type": "audio/pcm", "rate": 24000}
    assert session["audio"]["output"]["voice"] == "cedar"
    assert session["audio"]["input"]["transcription"]["model"] == "gpt-4o-mini-transcribe"
    assert session["audio"]["input"]["turn_detection"]["type"] == "server_vad"
    assert "model" not in session
    record = fake.connections[0]
    assert record.query == {"model": "gpt-realtime"}
    assert record.session["instructions"] == "Be terse."


async def test_session_fields_pass_through_to_the_wire(fake: OpenAIRealtimeFake) -> None:
    """GA session fields from provider_config['inference'] arrive in session.update."""
    model = make(
        fake,
        inference={
            "max_output_tokens": 300,
            "tracing": "auto",
            "truncation": "disabled",
            "noise_reduction": {"type": "near_field"},
            "turn_detection": {"type": "semantic_vad", "eagerness": "low"},
        },
    )
    await model.start()
    await model.stop()
    session = fake.client_events("session.update")[0]["session"]
    assert session["max_output_tokens"] == 300
    assert session["tracing"] == "auto"
    assert session["truncation"] == "disabled"
    assert session["audio"]["input"]["noise_reduction"] == {"type": "near_field"}
    assert session["audio"]["input"]["turn_detection"]["eagerness"] == "low"
    assert fake.connections[0].session["truncation"] == "disabled"


async def test_rejected_session_fails_start() -> None:
    """A session field the service rejects makes start() raise a ProviderError naming it."""
    async with serve() as fake:
        model = make(fake, inference={"not_a_ga_field": 1})
        with pytest.raises(ProviderError, match="not_a_ga_field") as info:
            await model.start()
        assert info.value.code == "unknown_parameter"
        assert model.state.value == "idle"
        await model.stop()
        assert fake.connections[0].refused == [("session.update", "unknown_parameter")]


async def test_no_beta_names_or_headers(fake: OpenAIRealtimeFake) -> None:
    """Only GA client event types are sent, and no OpenAI-Beta header."""
    model = make(fake)
    await model.start(tools=[tool("conformance_echo")])
    reader = Reader(model)
    await model.send(BidiTextInputEvent(text="hello"))
    await reader.turn()
    await speak_to(model, "hi")
    await reader.turn()
    await model.stop()
    types = {e["type"] for e in fake.client_events()}
    assert types <= client_event_types()
    assert not types & BETA_EVENT_TYPES
    headers = fake.connections[0].headers
    assert "openai-beta" not in headers
    assert headers["authorization"] == "Bearer fake-key"
    assert headers["user-agent"].startswith("bidi-openai-realtime/")
    sent = {e["type"] for e in fake.server_events()}
    assert "response.output_audio.delta" in sent
    assert not sent & BETA_EVENT_TYPES


async def test_history_is_replayed_as_items(fake: OpenAIRealtimeFake) -> None:
    """start(messages=...) replays text, function_call and function_call_output items in order."""
    model = make(fake)
    history = [
        {"role": "user", "content": [{"text": "remember the tulips"}]},
        {
            "role": "assistant",
            "content": [
                {"toolUse": {"toolUseId": "call_old", "name": "lookup", "input": {"value": 1}}}
            ],
        },
        {
            "role": "user",
            "content": [
                {
                    "toolResult": {
                        "toolUseId": "call_old",
                        "status": "success",
                        "content": [{"text": "one"}],
                    }
                }
            ],
        },
        {"role": "assistant", "content": [{"text": "Noted."}]},
    ]
    await model.start(messages=history, tools=[tool("lookup")])  # type: ignore[arg-type]
    reader = Reader(model)
    await model.send(BidiTextInputEvent(text="recall"))
    answer = final(await reader.turn())
    await model.stop()
    items = [e["item"] for e in fake.client_events("conversation.item.create")]
    assert [i["type"] for i in items] == [
        "message",
        "function_call",
        "function_call_output",
        "message",
        "message",
    ]
    assert items[0]["content"] == [{"type": "input_text", "text": "remember the tulips"}]
    assert items[1]["call_id"] == "call_old"
    assert items[2] == {"type": "function_call_output", "call_id": "call_old", "output": "one"}
    assert items[3]["content"] == [{"type": "output_text", "text": "Noted."}]
    assert answer == ["Earlier you said: remember the tulips."]
    assert fake.assistants[0].history[0] == history[0]


async def test_the_fake_answers_every_user_text_after_the_replayed_answers(
    fake: OpenAIRealtimeFake,
) -> None:
    """On a fresh connection, the user texts after the last assistant message are asked.

    A restarted connection gets the history and then the turns still to answer; a
    turn the old connection never answered is at the end of that history, and the
    service's first response answers it along with the new one.
    """
    model = make(fake)
    history = [
        {"role": "user", "content": [{"text": "first"}]},
        {"role": "assistant", "content": [{"text": "Noted."}]},
        {"role": "user", "content": [{"text": "second"}]},
    ]
    await model.start(messages=history)  # type: ignore[arg-type]
    reader = Reader(model)
    await model.send(BidiTextInputEvent(text="third"))
    answer = final(await reader.turn())
    await model.stop()
    assert answer == ["You said: second third."]
    assert fake.assistants[0].inputs == [("text", "second third")]
    assert fake.assistants[0].history == history[:2]


@pytest.mark.parametrize("results_early", [False, True], ids=["after_done", "before_done"])
async def test_several_tool_calls_one_response_create(
    fake: OpenAIRealtimeFake, results_early: bool
) -> None:
    """Two tool calls in one response get one response.create after both results."""
    model = make(fake)
    await model.start(tools=[tool("alpha"), tool("beta")])
    reader = Reader(model)
    await model.send(BidiTextInputEvent(text='call alpha and beta {"value": 7}'))
    uses: list[ToolUseStreamEvent] = []

    async def answer(use: ToolUseStreamEvent) -> None:
        name = use.tool_use["name"]
        await model.send(
            ToolResultEvent(
                tool_result={
                    "toolUseId": use.tool_use["toolUseId"],
                    "status": "success",
                    "content": [{"text": f"{name}-ok"}],
                }
            )
        )

    while True:
        (event,) = (await reader.until(lambda e: True))[-1:]
        if isinstance(event, ToolUseStreamEvent):
            uses.append(event)
            if results_early:
                await answer(event)
        if isinstance(event, BidiResponseCompleteEvent):
            assert event.stop_reason == "tool_use"
            break
    assert [u.tool_use["input"] for u in uses] == [{"value": 7}, {"value": 7}]
    if not results_early:
        for use in uses:
            await answer(use)
    turn = await reader.turn()
    await model.stop()
    assert final(turn) == ["alpha returned alpha-ok; beta returned beta-ok."]
    outputs = fake.client_events("conversation.item.create")[-2:]
    assert [o["item"]["type"] for o in outputs] == ["function_call_output"] * 2
    frames = fake.client_events()
    first_output = next(
        i
        for i, f in enumerate(frames)
        if f["type"] == "conversation.item.create" and f["item"]["type"] == "function_call_output"
    )
    after = [f["type"] for f in frames[first_output:]]
    assert after == ["conversation.item.create", "conversation.item.create", "response.create"]
    assert fake.connections[0].refused == []


async def test_text_during_an_answer_waits_for_it(short_story: OpenAIRealtimeFake) -> None:
    """Text sent while a response is active is answered next, with no overlapping response."""
    model = make(short_story)
    await model.start()
    reader = Reader(model)
    await model.send(BidiTextInputEvent(text="tell me a story"))
    await reader.until(lambda e: isinstance(e, BidiAudioStreamEvent))
    await model.send(BidiTextInputEvent(text="and then"))
    first = await reader.turn()
    second = await reader.turn()
    await model.stop()
    assert "once upon a time" in final(first)[0]
    assert final(second) == ["You said: and then."]
    assert short_story.connections[0].refused == []
    assert len(short_story.client_events("response.create")) == 2


async def test_truncation_math(fake: OpenAIRealtimeFake) -> None:
    """truncate() cuts at the played position clamped to the audio received; 0 ms deletes."""
    model = make(fake)
    await model.start()
    reader = Reader(model)
    await model.send(BidiTextInputEvent(text="hello there"))
    turn = await reader.turn()
    audio = [e for e in turn if isinstance(e, BidiAudioStreamEvent)]
    response_id = audio[0].response_id
    assert response_id is not None
    received_ms = sum(len(e.audio) for e in audio) * 1000 // 48000
    assert received_ms > 300
    await model.truncate(response_id, 250)
    await model.truncate(response_id, received_ms + 60_000)
    await model.truncate("resp_unknown", 100)  # nothing known: nothing sent
    await model.truncate(response_id, 0)
    await model.truncate(response_id, 100)  # deleted already: nothing sent
    await asyncio.sleep(0.1)
    await model.stop()
    frames = [
        e
        for e in fake.client_events()
        if e["type"] in ("conversation.item.truncate", "conversation.item.delete")
    ]
    item_id = fake.connections[0].truncations[0][0]
    assert [(f["type"], f.get("audio_end_ms")) for f in frames] == [
        ("conversation.item.truncate", 250),
        ("conversation.item.truncate", received_ms),
        ("conversation.item.delete", None),
    ]
    assert all(f["item_id"] == item_id for f in frames)
    record = fake.connections[0]
    assert record.truncations == [(item_id, 0, 250), (item_id, 0, received_ms)]
    assert record.deletions == [item_id]
    assert record.refused == []


async def test_truncate_needs_a_started_model() -> None:
    """truncate() before start() raises BidiModelStateError."""
    with pytest.raises(BidiModelStateError):
        await OpenAIRealtimeModel().truncate("resp_1", 10)


async def test_barge_in_follows_the_ga_order(fake: OpenAIRealtimeFake) -> None:
    """Barge-in: speech_started comes before the cancelled response.done, one interruption."""
    model = make(fake)
    await model.start()
    reader = Reader(model)
    await model.send(BidiTextInputEvent(text="tell me a story"))
    await reader.until(lambda e: isinstance(e, BidiAudioStreamEvent))
    await speak_to(model, "stop", rate=16000)  # resampled to 24 kHz on the way
    await reader.until(
        lambda e: isinstance(e, BidiResponseCompleteEvent) and e.stop_reason == "interrupted"
    )
    answer = await reader.turn()
    await model.stop()
    interruptions = [e for e in reader.seen if isinstance(e, BidiInterruptionEvent)]
    assert len(interruptions) == 1
    assert final(answer) == ["You said: stop."]
    assert final(reader.seen, "user") == ["stop"]
    kinds = [e["type"] for e in fake.server_events()]
    started = kinds.index("input_audio_buffer.speech_started")
    cancelled = next(
        i
        for i, e in enumerate(fake.server_events())
        if e["type"] == "response.done" and e["response"]["status"] == "cancelled"
    )
    assert started < cancelled


async def test_no_interruption_without_a_response(fake: OpenAIRealtimeFake) -> None:
    """Speech while nothing is playing is a user turn, not an interruption."""
    model = make(fake)
    await model.start()
    reader = Reader(model)
    await speak_to(model, "hello")
    turn = await reader.turn()
    await model.stop()
    assert not [e for e in reader.seen if isinstance(e, BidiInterruptionEvent)]
    assert final(reader.seen, "user") == ["hello"]
    assert final(turn) == ["You said: hello."]
    assert "input_audio_buffer.speech_started" in {e["type"] for e in fake.server_events()}


async def test_other_rates_are_resampled_to_24k(fake: OpenAIRealtimeFake) -> None:
    """16 kHz input is resampled to 24 kHz before input_audio_buffer.append."""
    model = make(fake)
    await model.start()
    await model.send(BidiAudioInputEvent(audio=bytes(3200), sample_rate=16000))  # 100 ms
    await model.send(BidiAudioInputEvent(audio=bytes(4800), sample_rate=24000))  # 100 ms
    await asyncio.sleep(0.05)
    await model.stop()
    sizes = [
        len(base64.b64decode(e["audio"])) for e in fake.client_events("input_audio_buffer.append")
    ]
    assert abs(sizes[0] - 4800) <= 4
    assert sizes[1] == 4800


async def test_transcription_can_be_turned_off(fake: OpenAIRealtimeFake) -> None:
    """With transcription None no user transcripts arrive, and the answer still does."""
    model = make(fake, inference={"transcription": None})
    await model.start()
    reader = Reader(model)
    await speak_to(model, "quiet")
    turn = await reader.turn()
    await model.stop()
    assert final(reader.seen, "user") == []
    assert final(turn) == ["You said: quiet."]


async def test_text_only_output(fake: OpenAIRealtimeFake) -> None:
    """output_modalities ['text'] gives output_text deltas as transcripts and no audio."""
    model = make(fake, inference={"output_modalities": ["text"]})
    await model.start()
    reader = Reader(model)
    await model.send(BidiTextInputEvent(text="type it"))
    turn = await reader.turn()
    await model.stop()
    assert final(turn) == ["You said: type it."]
    assert not [e for e in turn if isinstance(e, BidiAudioStreamEvent)]
    assert "response.output_text.delta" in {e["type"] for e in fake.server_events()}


async def test_manual_turns_with_commit_audio(fake: OpenAIRealtimeFake) -> None:
    """With turn_detection None, commit_audio() commits the buffer and asks for the answer."""
    model = make(fake, inference={"turn_detection": None})
    await model.start()
    reader = Reader(model)
    await speak_to(model, "manual")
    await model.commit_audio()
    turn = await reader.turn()
    await model.stop()
    assert final(reader.seen, "user") == ["manual"]
    assert final(turn) == ["You said: manual."]
    types = [e["type"] for e in fake.client_events() if e["type"] != "input_audio_buffer.append"]
    assert types[-2:] == ["input_audio_buffer.commit", "response.create"]
    assert "input_audio_buffer.speech_started" not in {e["type"] for e in fake.server_events()}


async def test_service_errors_are_surfaced(fake: OpenAIRealtimeFake) -> None:
    """An error event from the service (empty commit) is yielded as a BidiErrorEvent."""
    model = make(fake, inference={"turn_detection": None})
    await model.start()
    reader = Reader(model)
    await model.commit_audio()
    (error,) = (await reader.until(lambda e: isinstance(e, BidiErrorEvent)))[-1:]
    assert isinstance(error, BidiErrorEvent)
    assert error.code == "input_audio_buffer_commit_empty"
    assert error.recoverable
    assert error.details["type"] == "invalid_request_error"
    await reader.turn()  # the response.create after the failed commit still answers (empty)
    await model.send(BidiTextInputEvent(text="still here"))
    assert final(await reader.turn()) == ["You said: still here."]
    await model.stop()


async def test_injected_faults_use_the_real_signals(fake: OpenAIRealtimeFake) -> None:
    """Error fault -> error event with code; a malformed frame -> error event, talk goes on."""
    model = make(fake)
    await model.start()
    reader = Reader(model)
    await model.send(BidiTextInputEvent(text="[fault:error]"))
    (error,) = (await reader.until(lambda e: isinstance(e, BidiErrorEvent)))[-1:]
    assert isinstance(error, BidiErrorEvent)
    assert error.code == "injected_error"
    assert error.details["event_id"] == fake.client_events("response.create")[-1]["event_id"]
    await model.send(BidiTextInputEvent(text="[fault:malformed]"))
    (bad,) = (await reader.until(lambda e: isinstance(e, BidiErrorEvent)))[-1:]
    assert isinstance(bad, BidiErrorEvent)
    assert bad.code == "malformed_frame"
    await reader.turn()
    await model.send(BidiTextInputEvent(text="go on"))
    assert final(await reader.turn()) == ["You said: go on."]
    await model.stop()


async def test_session_expired_raises_timeout_with_empty_restart_config(
    fake: OpenAIRealtimeFake,
) -> None:
    """session_expired + close 1001 raise BidiModelTimeoutError; history replay continues."""
    model = make(fake)
    await model.start()
    reader = Reader(model)
    await model.send(BidiTextInputEvent(text="[fault:time_limit]"))
    with pytest.raises(BidiModelTimeoutError) as info:
        await reader.until(lambda e: False)
    assert info.value.restart_config == {}
    assert "60 minutes" in str(info.value)
    with pytest.raises(BidiModelTimeoutError):
        await model.send(BidiTextInputEvent(text="too late"))
    await model.stop()
    sent = fake.server_events()
    assert sent[-1]["type"] == "error"
    assert sent[-1]["error"]["code"] == "session_expired"


async def test_close_1001_alone_is_a_timeout() -> None:
    """A server that closes with 1001 (going away) gives BidiModelTimeoutError."""

    async def handler(ws: ServerConnection) -> None:
        await ws.send('{"type":"session.created","event_id":"e1","session":{"type":"realtime"}}')
        await ws.recv()
        await ws.send('{"type":"session.updated","event_id":"e2","session":{"type":"realtime"}}')
        await asyncio.sleep(0.05)
        await ws.close(1001, "server restarting")

    async with ws_serve(handler, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        model = OpenAIRealtimeModel(
            client_config={"api_key": "k", "base_url": f"http://127.0.0.1:{port}/v1"}
        )
        await model.start()
        reader = Reader(model)
        with pytest.raises(BidiModelTimeoutError, match="1001"):
            await reader.until(lambda e: False)
        await model.stop()


async def test_proactive_restart_before_the_limit(fake: OpenAIRealtimeFake) -> None:
    """connection_limit_s makes receive() raise BidiModelTimeoutError proactively."""
    model = make(fake, connection_limit_s=0.2)
    await model.start()
    reader = Reader(model)
    with pytest.raises(BidiModelTimeoutError, match=r"limit of 0\.2 s") as info:
        await reader.until(lambda e: False)
    assert info.value.restart_config == {}
    await model.stop()
    await model.start(**info.value.restart_config)
    await model.stop()


async def test_image_input_becomes_an_input_image_item(fake: OpenAIRealtimeFake) -> None:
    """An image is sent as an input_image item, reaches the assistant, and asks no response."""
    model = make(fake)
    await model.start()
    reader = Reader(model)
    await model.send(BidiImageInputEvent(image=b"\x89PNG fake", mime_type="image/png"))
    await model.send(BidiTextInputEvent(text="what is it"))
    await reader.turn()
    await model.stop()
    items = [e["item"] for e in fake.client_events("conversation.item.create")]
    assert items[0]["content"][0]["type"] == "input_image"
    assert items[0]["content"][0]["image_url"].startswith("data:image/png;base64,")
    assert ("image", ("image/png", 9)) in fake.assistants[0].inputs
    assert len(fake.client_events("response.create")) == 1


async def test_system_text_is_added_without_a_response(fake: OpenAIRealtimeFake) -> None:
    """Text with role 'system' becomes a system message and asks for no response."""
    model = make(fake)
    await model.start()
    await model.send(BidiTextInputEvent(text="Speak formally.", role="system"))
    await asyncio.sleep(0.05)
    await model.stop()
    item = fake.client_events("conversation.item.create")[0]["item"]
    assert item["role"] == "system"
    assert fake.client_events("response.create") == []


async def test_wrong_key_is_a_connection_error_without_the_key(fake: OpenAIRealtimeFake) -> None:
    """A rejected key gives BidiConnectionError (HTTP 401) whose message hides the key."""
    model = OpenAIRealtimeModel(
        client_config={"api_key": "sk-wrong-secret", "base_url": fake.base_url}
    )
    with pytest.raises(BidiConnectionError) as info:
        await model.start()
    assert info.value.code == 401
    assert "sk-wrong-secret" not in str(info.value)
    assert "sk-wrong-secret" not in repr(info.value)


async def test_unreachable_server_is_a_connection_error() -> None:
    """Nothing listening gives a retryable BidiConnectionError."""
    from bidi_core.testing import free_port

    model = OpenAIRealtimeModel(
        client_config={"api_key": "k", "base_url": f"http://127.0.0.1:{free_port()}/v1"}
    )
    with pytest.raises(BidiConnectionError) as info:
        await model.start()
    assert info.value.retryable


async def test_key_from_environment(
    fake: OpenAIRealtimeFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without client_config['api_key'] the OPENAI_API_KEY variable is used."""
    monkeypatch.setenv("OPENAI_API_KEY", "fake-key")
    model = OpenAIRealtimeModel(client_config={"base_url": fake.base_url})
    await model.start()
    await model.stop()
    assert fake.connections[0].headers["authorization"] == "Bearer fake-key"
    assert "fake-key" not in repr(model.config)


async def test_azure_style_endpoint() -> None:
    """An Azure-style URL (deployment, api-version, api-key header) works end to end."""
    query = {"api-version": "2025-08-28", "deployment": "my-realtime"}
    async with serve(path="/openai/realtime", auth_header="api-key", required_query=query) as fake:
        model = OpenAIRealtimeModel(
            client_config={
                "api_key": "fake-key",
                "base_url": fake.base_url,
                "auth_header": "api-key",
                "query": {**query, "model": None},
            }
        )
        assert model.url == (
            f"ws://127.0.0.1:{fake.port}/openai/realtime"
            "?api-version=2025-08-28&deployment=my-realtime"
        )
        await model.start()
        reader = Reader(model)
        await model.send(BidiTextInputEvent(text="hello azure"))
        assert final(await reader.turn()) == ["You said: hello azure."]
        await model.stop()
        headers = fake.connections[0].headers
        assert headers["api-key"] == "fake-key"
        assert "authorization" not in headers
        assert fake.connections[0].query == query
        assert not fake.invalid


async def test_key_never_reaches_logs_or_events(
    fake: OpenAIRealtimeFake, caplog: pytest.LogCaptureFixture
) -> None:
    """With DEBUG logging on, the API key appears in no log record and no event."""
    secret = "sk-live-do-not-print"
    async with serve(api_key=secret) as keyed:
        caplog.set_level(logging.DEBUG)
        model = OpenAIRealtimeModel(client_config={"api_key": secret, "base_url": keyed.base_url})
        await model.start()
        reader = Reader(model)
        await model.send(BidiTextInputEvent(text="[fault:error]"))
        await reader.until(lambda e: isinstance(e, BidiErrorEvent))
        await model.send(BidiTextInputEvent(text="hi"))
        await reader.turn()
        await model.stop()
    # The fake server's own websockets logger prints what it received; only ours counts.
    ours = [r for r in caplog.records if not r.name.startswith("websockets.server")]
    logged = [r.getMessage() for r in ours if r.name == "bidi_openai_realtime.ws"]
    assert "> Authorization: Bearer ***" in logged  # headers were logged, redacted
    for record in ours:
        assert secret not in record.getMessage()
    for event in reader.seen:
        assert secret not in repr(event)
        assert secret not in str(event.to_dict())


async def test_stop_is_idempotent_and_restartable(fake: OpenAIRealtimeFake) -> None:
    """stop() twice is fine and start() after stop() opens a new connection."""
    model = make(fake)
    await model.start()
    await model.stop()
    await model.stop()
    await model.start()
    await model.stop()
    assert len(fake.connections) == 2


async def test_audio_in_flight_at_session_expired_is_sent_again_on_the_restart(
    fake: OpenAIRealtimeFake,
) -> None:
    """Audio sent around session_expired reaches the restarted session: none is lost.

    The server drops what arrives after it ended the session; the model keeps the last
    500 ms of audio (bidi_core's audio replay) and sends it first after start() with
    the timeout's restart_config.
    """
    chunks = [i.to_bytes(4, "little") + bytes(956) for i in range(40)]  # 20 ms at 24 kHz
    model = make(fake)
    await model.start()
    reader = Reader(model)
    await model.send(BidiTextInputEvent(text="hello"))  # starts the fake's answering
    await reader.turn()
    held: list[bytes] = []
    for i, pcm in enumerate(chunks):
        if i == 20:
            fake.assistants[-1].inject_fault("time_limit")
        try:
            await model.send(BidiAudioInputEvent(audio=pcm, sample_rate=24000))
        except BidiModelTimeoutError:
            held.append(pcm)  # what BidiAgent buffers and sends after the restart
        await asyncio.sleep(0.002)
    with pytest.raises(BidiModelTimeoutError) as info:
        await reader.until(lambda e: False)
    assert info.value.restart_config["replay_audio_ms"] > 0
    await model.stop()
    await model.start(**info.value.restart_config)
    for pcm in held:
        await model.send(BidiAudioInputEvent(audio=pcm, sample_rate=24000))
    await model.stop()
    pcm = [
        base64.b64decode(e["audio"])
        for e in fake.received
        if e.get("type") == "input_audio_buffer.append"
    ]
    received = {p[i : i + 960] for p in pcm for i in range(0, len(p), 960)}  # replays join chunks
    assert set(chunks) <= received
