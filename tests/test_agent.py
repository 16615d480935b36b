"""BidiAgent: tools, history, restarts, back-pressure and barge-in against the simulated model."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest

from bidi_core import (
    BidiAudioDroppedEvent,
    BidiAudioInputEvent,
    BidiAudioStreamEvent,
    BidiConnectionCloseEvent,
    BidiConnectionError,
    BidiConnectionRestartEvent,
    BidiInterruptionEvent,
    BidiModelStateError,
    BidiResponseCompleteEvent,
    BidiTextInputEvent,
    BidiToolCancelEvent,
    BidiTranscriptStreamEvent,
    ConfigError,
    ToolResultEvent,
    ToolUseStreamEvent,
    UnsupportedInputError,
)
from bidi_core.agent import AgentEvent, BidiAgent
from bidi_core.events import from_dict
from bidi_core.simulated import SimulatedModel
from bidi_core.testing import ScriptedAssistant, speak
from bidi_core.tools import tool

STEP = 10.0


class RecordingModel(SimulatedModel):
    """A simulated model that keeps every connection's brain and can gate or fail starts."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("provider_config", {"seed": 3})
        super().__init__(**kwargs)
        self.brains: list[ScriptedAssistant] = []
        self.starts: list[dict[str, Any]] = []
        self.start_gate: asyncio.Event | None = None
        self.fail_starts = 0

    async def _open(self, **kwargs: Any) -> None:
        self.starts.append(kwargs)
        if self.start_gate is not None:
            await self.start_gate.wait()
        if self.fail_starts:
            self.fail_starts -= 1
            raise BidiConnectionError("refused by the test", provider="simulated")
        await super()._open(**kwargs)
        assert self.assistant is not None
        self.brains.append(self.assistant)

    def force_time_limit(self) -> None:
        self._fail(self._timeout_error("forced time limit"))

    def all_inputs(self) -> list[tuple[str, Any]]:
        return [item for brain in self.brains for item in brain.inputs]


class Reader:
    """Reads an agent's events with a bounded wait, keeping them all."""

    def __init__(self, agent: BidiAgent) -> None:
        self.seen: list[AgentEvent] = []
        self._it = aiter(agent.receive())

    async def until(self, predicate: Callable[[AgentEvent], bool]) -> list[AgentEvent]:
        start = len(self.seen)
        async with asyncio.timeout(STEP):
            async for event in self._it:
                self.seen.append(event)
                if predicate(event):
                    return self.seen[start:]
        raise AssertionError(f"receive() ended; saw {[type(e).__name__ for e in self.seen]}")

    async def aclose(self) -> None:
        await self._it.aclose()  # type: ignore[attr-defined]


def completed(reason: str = "complete") -> Callable[[AgentEvent], bool]:
    return lambda e: isinstance(e, BidiResponseCompleteEvent) and e.stop_reason == reason


def answer_of(events: list[AgentEvent]) -> str:
    finals = [
        e.text
        for e in events
        if isinstance(e, BidiTranscriptStreamEvent) and e.role == "assistant" and e.is_final
    ]
    assert len(finals) == 1, finals
    return finals[0]


def speech_chunks(text: str, rate: int = 16000, tail_ms: int = 600) -> list[BidiAudioInputEvent]:
    pcm = speak(text, rate) + bytes(rate * tail_ms // 1000 * 2)
    step = rate * 20 // 1000 * 2
    return [
        BidiAudioInputEvent(audio=pcm[i : i + step], sample_rate=rate)
        for i in range(0, len(pcm), step)
    ]


@tool
def get_weather(city: str) -> str:
    """Get the weather.

    Args:
        city: The city.
    """
    return f"sunny in {city}"


# ----------------------------------------------------------------- lifecycle


async def test_model_by_registry_name_and_config_errors() -> None:
    """A registry name builds the model with the config; config with a model object is refused."""
    agent = BidiAgent("simulated", provider_config={"seed": 9})
    assert isinstance(agent.model, SimulatedModel)
    assert agent.model.config["provider_config"] == {"seed": 9}
    with pytest.raises(ConfigError, match="together with a model object"):
        BidiAgent(SimulatedModel(), provider_config={"seed": 1})


async def test_concurrent_start_is_refused_and_stop_is_idempotent() -> None:
    """A second start while starting or running raises; stop() twice is fine."""
    model = RecordingModel()
    model.start_gate = asyncio.Event()
    agent = BidiAgent(model)
    first = asyncio.create_task(agent.start())
    await asyncio.sleep(0)
    with pytest.raises(BidiModelStateError, match=r"already|starting"):
        await agent.start()
    model.start_gate.set()
    await first
    with pytest.raises(BidiModelStateError, match="running"):
        await agent.start()
    await agent.stop()
    await agent.stop()


async def test_send_before_start_and_bad_input_are_clear_errors() -> None:
    """send() before start raises a state error; unsupported input raises and loses nothing."""
    agent = BidiAgent(RecordingModel())
    with pytest.raises(BidiModelStateError, match="start"):
        await agent.send("hello")
    async with agent:
        reader = Reader(agent)
        await agent.send("first words")
        with pytest.raises(UnsupportedInputError):
            await agent.send(
                BidiAudioInputEvent(audio=b"\x00\x01", sample_rate=16000, format="opus")
            )
        turn = await reader.until(completed())
        assert "first words" in answer_of(turn)
        await reader.aclose()


async def test_receive_ends_with_close_event_and_no_task_outlives_stop() -> None:
    """After stop() receive() yields BidiConnectionCloseEvent and ends; no task is left."""
    agent = BidiAgent(RecordingModel(), tools=[get_weather])
    await agent.start()
    reader = Reader(agent)
    await agent.send('call get_weather {"city": "Oslo"}')
    await reader.until(lambda e: isinstance(e, ToolUseStreamEvent))
    await agent.stop()
    rest = [e async for e in agent.receive()]
    assert isinstance(rest[-1], BidiConnectionCloseEvent)
    await reader.aclose()
    others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    assert others == []


# --------------------------------------------------------------------- tools


async def test_tool_round_trip_and_history_shape() -> None:
    """A tool call runs; its result is sent and yielded; history keeps use and result adjacent."""
    agent = BidiAgent(RecordingModel(), tools=[get_weather])
    async with agent:
        reader = Reader(agent)
        await agent.send('call get_weather {"city": "Paris"}')
        events = await reader.until(completed())
        results = [e for e in events if isinstance(e, ToolResultEvent)]
        assert results[0].tool_result["content"] == [{"text": "sunny in Paris"}]
        assert answer_of(events) == "get_weather returned sunny in Paris."
        await reader.aclose()
    messages = agent.messages
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant"]
    assert messages[1]["content"][0]["toolUse"]["name"] == "get_weather"
    assert messages[2]["content"][0]["toolResult"]["status"] == "success"
    assert messages[3]["content"] == [{"text": "get_weather returned sunny in Paris."}]
    assert agent.stats.tool_calls == 1


async def test_parallel_tool_calls_run_concurrently() -> None:
    """Two tool calls in one response run at the same time (each waits for the other)."""
    running: set[str] = set()
    both = asyncio.Event()

    @tool
    async def left() -> str:
        """Left."""
        running.add("left")
        if len(running) == 2:
            both.set()
        await asyncio.wait_for(both.wait(), 5)
        return "L"

    @tool
    async def right() -> str:
        """Right."""
        running.add("right")
        if len(running) == 2:
            both.set()
        await asyncio.wait_for(both.wait(), 5)
        return "R"

    agent = BidiAgent(RecordingModel(), tools=[left, right])
    async with agent:
        reader = Reader(agent)
        await agent.send("call left and right")
        events = await reader.until(completed())
        assert answer_of(events) == "left returned L; right returned R."
        await reader.aclose()


async def test_tool_errors_and_timeouts_keep_the_session_going() -> None:
    """A raising tool and a slow tool give error results; the model answers and talk goes on."""

    @tool
    def broken() -> str:
        """Break."""
        raise RuntimeError("disk on fire")

    @tool(timeout=0.05)
    async def sleepy() -> str:
        """Sleep."""
        await asyncio.sleep(10)
        return "never"

    agent = BidiAgent(RecordingModel(), tools=[broken, sleepy])
    async with agent:
        reader = Reader(agent)
        await agent.send("call broken")
        answer = answer_of(await reader.until(completed()))
        assert (
            answer == "broken returned an error: Tool 'broken' failed: RuntimeError: disk on fire."
        )
        await agent.send("call sleepy")
        answer = answer_of(await reader.until(completed()))
        assert "did not finish within 0.05 s" in answer
        await agent.send("still here")
        assert "still here" in answer_of(await reader.until(completed()))
        await reader.aclose()


async def test_unknown_tool_gets_an_error_result() -> None:
    """A call of a tool the agent does not have is answered with an error naming the tools."""
    model = RecordingModel()
    agent = BidiAgent(model, tools=[get_weather])
    async with agent:
        reader = Reader(agent)
        await reader.until(lambda e: True)  # connection start
        model._on_action(  # the model asks for a tool nobody registered
            __import__("bidi_core.testing", fromlist=["ToolCall"]).ToolCall(
                response_id="r", tool_use_id="ghost-1", name="ghost", input={}
            )
        )
        events = await reader.until(lambda e: isinstance(e, ToolResultEvent))
        result = events[-1]
        assert isinstance(result, ToolResultEvent)
        assert result.tool_result["status"] == "error"
        assert "Unknown tool 'ghost'" in result.tool_result["content"][0]["text"]
        assert "get_weather" in result.tool_result["content"][0]["text"]
        await reader.aclose()


async def test_tool_cancel_event_cancels_the_call_and_still_sends_a_result() -> None:
    """BidiToolCancelEvent cancels a running call; a 'cancelled' error result is still sent."""
    started = asyncio.Event()
    finished: list[bool] = []

    @tool
    async def long_job() -> str:
        """Work for a long time."""
        started.set()
        await asyncio.sleep(30)
        finished.append(True)
        return "done"

    model = RecordingModel()
    agent = BidiAgent(model, tools=[long_job])
    async with agent:
        reader = Reader(agent)
        await agent.send("call long_job [then cancel]")
        events = await reader.until(lambda e: isinstance(e, ToolResultEvent))
        assert any(isinstance(e, BidiToolCancelEvent) for e in events)
        result = events[-1]
        assert isinstance(result, ToolResultEvent)
        assert result.tool_result["status"] == "error"
        assert "cancelled: the model withdrew the call" in result.tool_result["content"][0]["text"]
        assert finished == []
        await reader.aclose()
    sent = [item for item in model.all_inputs() if item[0] == "tool_result"]
    assert len(sent) == 1


async def test_barge_in_cancels_running_tools() -> None:
    """Speech over an answer interrupts it and cancels running tool calls (with a result)."""

    @tool
    async def slow_lookup() -> str:
        """Look up slowly."""
        await asyncio.sleep(30)
        return "late"

    model = RecordingModel()
    agent = BidiAgent(model, tools=[slow_lookup])
    async with agent:
        reader = Reader(agent)
        await agent.send("tell me a story")
        await reader.until(lambda e: isinstance(e, BidiAudioStreamEvent))
        model._on_action(
            __import__("bidi_core.testing", fromlist=["ToolCall"]).ToolCall(
                response_id="r", tool_use_id="slow-1", name="slow_lookup", input={}
            )
        )
        await reader.until(lambda e: isinstance(e, ToolUseStreamEvent))
        for chunk in speech_chunks("stop"):
            await agent.send(chunk)
        events = await reader.until(lambda e: isinstance(e, ToolResultEvent))
        assert any(isinstance(e, BidiInterruptionEvent) for e in reader.seen)
        result = events[-1]
        assert isinstance(result, ToolResultEvent)
        assert "cancelled: the user interrupted" in result.tool_result["content"][0]["text"]
        await reader.aclose()


# ------------------------------------------------------------------- history


async def test_history_merges_finals_and_marks_interrupted_turns() -> None:
    """Finals are recorded once per turn and role; an interrupted answer is marked."""
    model = RecordingModel()
    agent = BidiAgent(model, messages=[{"role": "user", "content": [{"text": "earlier"}]}])
    async with agent:
        reader = Reader(agent)
        await agent.send("hello there")
        await reader.until(completed())
        await agent.send("tell me a story")
        await reader.until(lambda e: isinstance(e, BidiAudioStreamEvent))
        for chunk in speech_chunks("stop"):
            await agent.send(chunk)
        await reader.until(completed("interrupted"))
        await reader.until(completed())
        await reader.aclose()
    messages = agent.messages
    assert messages[0] == {"role": "user", "content": [{"text": "earlier hello there"}]}
    assert messages[1] == {"role": "assistant", "content": [{"text": "You said: hello there."}]}
    assert messages[2] == {"role": "user", "content": [{"text": "tell me a story"}]}
    story = messages[3]["content"][0]
    assert story["interrupted"] is True
    # Only what the model produced before the barge-in is kept.
    assert story["text"]
    assert "once upon a time a small robot learned to listen".startswith(story["text"][:40])
    assert messages[4] == {"role": "user", "content": [{"text": "stop"}]}
    assert messages[5] == {"role": "assistant", "content": [{"text": "You said: stop."}]}
    assert len(messages) == 6


# ------------------------------------------------------------------- restart


async def test_restart_replays_history_and_emits_a_json_restart_event() -> None:
    """A time limit restarts the model with history; the restart event survives JSON."""
    model = RecordingModel()
    agent = BidiAgent(model, system_prompt="Be brief.")
    async with agent:
        reader = Reader(agent)
        await agent.send("remember the tulips")
        await reader.until(completed())
        assert model.assistant is not None
        model.assistant.inject_fault("time_limit")
        events = await reader.until(lambda e: isinstance(e, BidiConnectionRestartEvent))
        restart = events[-1]
        assert isinstance(restart, BidiConnectionRestartEvent)
        assert from_dict(json.loads(json.dumps(restart.to_dict()))) == restart
        assert "resume_handle" in restart.restart_config
        await agent.send("recall")
        answer = answer_of(await reader.until(completed()))
        assert "remember the tulips" in answer
        await reader.aclose()
    assert len(model.starts) == 2
    assert model.starts[1]["system_prompt"] == "Be brief."
    assert model.starts[1]["messages"] == [
        {"role": "user", "content": [{"text": "remember the tulips"}]},
        {"role": "assistant", "content": [{"text": "You said: remember the tulips."}]},
    ]
    assert agent.stats.restarts == 1
    assert agent.stats.resent_inputs == 0


async def test_a_turn_the_old_connection_never_answered_is_sent_again_after_a_restart() -> None:
    """Text the connection ended before answering is asked again on the new one, once.

    A provider drops what is in flight when it ends a session, and history alone
    makes no model answer; so the agent withdraws the turn from the history it
    replays and sends it again first.
    """
    model = RecordingModel(provider_config={"seed": 3, "action_delay_s": 0.05})
    agent = BidiAgent(model)
    async with agent:
        reader = Reader(agent)
        await agent.send("what time is it")
        model.force_time_limit()  # before the answer began
        await reader.until(lambda e: isinstance(e, BidiConnectionRestartEvent))
        answer = answer_of(await reader.until(completed()))
        await reader.aclose()
    assert answer == "You said: what time is it."
    assert model.starts[1]["messages"] == []  # not history: it is asked again
    assert [v for k, v in model.brains[1].inputs if k == "text"] == ["what time is it"]
    assert agent.stats.resent_inputs == 1
    assert agent.messages == [
        {"role": "user", "content": [{"text": "what time is it"}]},
        {"role": "assistant", "content": [{"text": "You said: what time is it."}]},
    ]


async def test_a_turn_is_sent_again_at_most_once() -> None:
    """A turn that also ends the new connection unanswered stays in history, not resent."""
    model = RecordingModel()
    agent = BidiAgent(model)
    async with agent:
        reader = Reader(agent)
        await agent.send("[fault:time_limit]")  # ends every connection it reaches
        await reader.until(lambda e: isinstance(e, BidiConnectionRestartEvent))
        await reader.until(lambda e: isinstance(e, BidiConnectionRestartEvent))
        await agent.send("still there")
        answer = answer_of(await reader.until(completed()))
        await reader.aclose()
    assert answer == "You said: still there."
    assert agent.stats.restarts == 2
    assert agent.stats.resent_inputs == 1
    assert model.starts[2]["messages"] == [
        {"role": "user", "content": [{"text": "[fault:time_limit]"}]}
    ]


async def test_input_during_a_restart_is_buffered_and_flushed_in_order() -> None:
    """Audio, text and tool results sent while the model restarts all arrive, in order."""
    model = RecordingModel()
    agent = BidiAgent(model)
    async with agent:
        reader = Reader(agent)
        await reader.until(lambda e: True)
        model.start_gate = asyncio.Event()
        model.force_time_limit()
        await reader.until(lambda e: isinstance(e, BidiConnectionRestartEvent))
        while len(model.starts) < 2:  # the restart is now waiting at the gate
            await asyncio.sleep(0.001)
        await agent.send(BidiAudioInputEvent(audio=bytes(640), sample_rate=16000))
        await agent.send("during the restart")
        await agent.send(
            ToolResultEvent(
                tool_result={"toolUseId": "x-1", "status": "success", "content": [{"text": "ok"}]}
            )
        )
        model.start_gate.set()
        await reader.until(completed())
        await reader.aclose()
    kinds = [kind for kind, _ in model.brains[1].inputs]
    assert kinds[:3] == ["audio", "text", "tool_result"]
    assert model.brains[1].inputs[1] == ("text", "during the restart")


async def test_fifty_forced_restarts_lose_no_input(monkeypatch: pytest.MonkeyPatch) -> None:
    """50 restarts in a row while input keeps flowing: every input arrives exactly once."""
    # About loss, not pacing: without this the agent spaces out back-to-back restarts.
    monkeypatch.setattr("bidi_core.agent._checks.QUICK_RESTARTS_ALLOWED", 100)
    model = RecordingModel()
    agent = BidiAgent(model)
    sent = 0
    async with agent:
        reader = Reader(agent)
        await reader.until(lambda e: True)
        for i in range(50):
            model.force_time_limit()
            await agent.send(BidiAudioInputEvent(audio=bytes(320), sample_rate=16000))
            await agent.send(f"note {i}")
            sent += 2
            await reader.until(lambda e: isinstance(e, BidiConnectionRestartEvent))
            await reader.until(lambda e: type(e).__name__ == "BidiConnectionStartEvent")
        await agent.send("last words")
        sent += 1
        await reader.until(
            lambda e: (
                isinstance(e, BidiTranscriptStreamEvent) and e.is_final and "last words" in e.text
            )
        )
        await reader.aclose()
    arrived = model.all_inputs()
    assert len(arrived) == sent
    texts = [value for kind, value in arrived if kind == "text"]
    assert texts == [f"note {i}" for i in range(50)] + ["last words"]
    assert agent.stats.restarts == 50
    assert agent.stats.lost_inputs == 0


async def test_failed_restart_raises_instead_of_hanging() -> None:
    """If every restart attempt fails, receive() raises BidiConnectionError."""
    model = RecordingModel()
    agent = BidiAgent(model, restart_attempts=2)
    async with agent:
        reader = Reader(agent)
        await reader.until(lambda e: True)
        model.fail_starts = 2
        model.force_time_limit()
        with pytest.raises(BidiConnectionError, match="restarting it failed 2 time"):
            await reader.until(lambda e: False)
    assert len(model.starts) == 3


async def test_stale_resume_handle_falls_back_to_history() -> None:
    """A restart whose restart_config is refused is retried with history alone."""
    model = RecordingModel()
    agent = BidiAgent(model)
    async with agent:
        reader = Reader(agent)
        await agent.send("remember the tulips")
        await reader.until(completed())
        model._snapshots.clear()  # the provider forgot every resumption handle
        model.force_time_limit()
        await reader.until(lambda e: isinstance(e, BidiConnectionRestartEvent))
        await agent.send("recall")
        assert "remember the tulips" in answer_of(await reader.until(completed()))
        await reader.aclose()
    assert "resume_handle" in model.starts[1]["restart_config"]
    assert model.starts[2]["restart_config"] == {}


async def test_tool_result_from_an_earlier_connection_arrives_as_text() -> None:
    """A call issued before a restart is answered on the new connection as user text."""
    release = asyncio.Event()

    @tool
    async def get_stock() -> str:
        """Stock level."""
        await release.wait()
        return "12 left"

    model = RecordingModel()
    agent = BidiAgent(model, tools=[get_stock])
    async with agent:
        reader = Reader(agent)
        await agent.send("call get_stock")
        use = (await reader.until(lambda e: isinstance(e, ToolUseStreamEvent)))[-1]
        assert isinstance(use, ToolUseStreamEvent)
        first_id = use.tool_use["toolUseId"]
        model.force_time_limit()
        await reader.until(lambda e: isinstance(e, BidiConnectionRestartEvent))
        await reader.until(lambda e: type(e).__name__ == "BidiConnectionStartEvent")
        release.set()
        await reader.until(lambda e: isinstance(e, ToolResultEvent))
        await reader.aclose()
    kind, text = model.brains[1].inputs[0]
    assert kind == "text"
    assert (
        text == "(The earlier call of get_stock [" + first_id + "] finished with success: 12 left)"
    )
    assert ("tool_result", first_id) not in model.brains[1].inputs[:1]


# ----------------------------------------------------- back-pressure, barge-in


async def test_slow_consumer_drops_oldest_audio_by_policy_and_keeps_control_events() -> None:
    """Audio beyond max_queued_audio_ms is dropped, counted and reported; nothing else is."""
    model = RecordingModel()
    agent = BidiAgent(model, max_queued_audio_ms=200)
    async with agent:
        await agent.send("a rather long sentence so that there is plenty of audio to drop")
        await agent.send("and a second one")
        brain = model.brains[0]
        while brain.response_active or len(agent._queue) < 10:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        reader = Reader(agent)
        await reader.until(completed())
        events = await reader.until(completed())
        await reader.aclose()
    seen = reader.seen
    dropped = [e for e in seen if isinstance(e, BidiAudioDroppedEvent)]
    assert dropped
    assert dropped[0].dropped_chunks > 0
    assert sum(e.dropped_chunks for e in dropped) == agent.stats.dropped_audio_chunks
    audio_ms = sum(len(e.audio) / 48 for e in seen if isinstance(e, BidiAudioStreamEvent))
    assert audio_ms <= 200 + 20
    finals = [e for e in seen if isinstance(e, BidiTranscriptStreamEvent) and e.is_final]
    assert [e.text for e in finals] == [
        "You said: a rather long sentence so that there is plenty of audio to drop.",
        "You said: and a second one.",
    ]
    assert events


class FakeSpeaker:
    """An output channel that 'plays' a fixed amount and records clears."""

    def __init__(self, played: float) -> None:
        self.played = played
        self.cleared = 0
        self.events: list[AgentEvent] = []

    async def handle(self, event: AgentEvent) -> None:
        self.events.append(event)

    def clear_audio(self) -> None:
        self.cleared += 1

    def played_ms(self, response_id: str) -> float | None:
        return self.played

    async def aclose(self) -> None:
        pass


class SpeechThenWait:
    """An input channel: a text turn, then speech once audio is playing."""

    def __init__(self, speaker: FakeSpeaker) -> None:
        self.speaker = speaker

    async def events(self, capabilities: Any) -> Any:
        yield "tell me a story"
        while not any(isinstance(e, BidiAudioStreamEvent) for e in self.speaker.events):
            await asyncio.sleep(0.01)
        for chunk in speech_chunks("stop"):
            yield chunk

    async def aclose(self) -> None:
        pass


async def test_run_barge_in_clears_outputs_and_truncates_at_the_played_position() -> None:
    """run(): barge-in clears every output and truncates the model at the played ms."""
    model = RecordingModel()
    speaker = FakeSpeaker(played=420.0)
    agent = BidiAgent(model)
    stats = await agent.run(inputs=[SpeechThenWait(speaker)], outputs=[speaker], settle_s=0.3)
    assert speaker.cleared == 1
    assert len(model.truncations) == 1
    response_id, played = model.truncations[0]
    assert played == 420
    assert any(
        isinstance(e, BidiInterruptionEvent) and e.response_id == response_id
        for e in speaker.events
    )
    assert stats.interruptions == 1
    assert stats.turns == 2
    assert agent.state.value == "idle"


async def test_truncation_falls_back_to_audio_the_consumer_received() -> None:
    """Without tracking outputs, the played position is the audio receive() had yielded."""
    model = RecordingModel()
    agent = BidiAgent(model)
    async with agent:
        reader = Reader(agent)
        await agent.send("tell me a story")
        await reader.until(lambda e: isinstance(e, BidiAudioStreamEvent))
        await reader.until(lambda e: isinstance(e, BidiAudioStreamEvent))
        yielded = sum(len(e.audio) / 48 for e in reader.seen if isinstance(e, BidiAudioStreamEvent))
        for chunk in speech_chunks("stop"):
            await agent.send(chunk)
        await reader.until(completed("interrupted"))
        await reader.aclose()
    assert len(model.truncations) == 1
    assert model.truncations[0][1] >= int(yielded)


async def test_run_ends_when_inputs_are_exhausted_and_the_agent_is_idle() -> None:
    """run() with a finite input returns after the last answer, with stats."""

    class Lines:
        async def events(self, capabilities: Any) -> Any:
            yield "one"
            yield BidiTextInputEvent(text="two")

        async def aclose(self) -> None:
            pass

    speaker = FakeSpeaker(played=0.0)
    stats = await BidiAgent(RecordingModel()).run(inputs=[Lines()], outputs=[speaker], settle_s=0.2)
    finals = [
        e.text
        for e in speaker.events
        if isinstance(e, BidiTranscriptStreamEvent) and e.is_final and e.role == "assistant"
    ]
    assert finals == ["You said: one.", "You said: two."]
    assert stats.turns == 2
    assert len(stats.time_to_first_audio_ms) == 2


async def test_run_raises_when_an_input_channel_fails() -> None:
    """An input channel that raises ends run() with its error instead of hanging."""

    class Broken:
        async def events(self, capabilities: Any) -> Any:
            yield "hello"
            raise OSError("the microphone went away")

        async def aclose(self) -> None:
            pass

    agent = BidiAgent(RecordingModel())
    with pytest.raises(OSError, match="microphone went away"):
        await agent.run(inputs=[Broken()], outputs=[FakeSpeaker(played=0.0)], settle_s=0.2)
    assert agent.state.value == "idle"


def test_history_withdraws_only_the_latest_whole_recording_of_a_text() -> None:
    """withdraw_user_text removes a turn from the end of a user block, never a part of one."""
    from bidi_core.agent._history import History

    history = History()
    history.user_text_sent("ping 18")
    assert not history.withdraw_user_text("8")  # not a whole turn
    history.user_text_sent("ping 8")  # merged into the same user block
    assert history.messages == [{"role": "user", "content": [{"text": "ping 18 ping 8"}]}]
    assert history.withdraw_user_text("ping 8")
    assert history.messages == [{"role": "user", "content": [{"text": "ping 18"}]}]
    history.final_transcript("assistant", "pong", "a1")
    assert history.withdraw_user_text("ping 18")
    assert history.messages == [{"role": "assistant", "content": [{"text": "pong"}]}]
    assert not history.withdraw_user_text("ping 18")
