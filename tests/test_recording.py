"""Recording conversations: stereo WAV on one clock, JSONL without payloads, limits, failures."""

from __future__ import annotations

import array
import asyncio
import json
import wave
from pathlib import Path

from bidi_core import BidiAgent, BidiErrorEvent, get_model
from bidi_core.events import (
    BidiAudioInputEvent,
    BidiInterruptionEvent,
    BidiResponseCompleteEvent,
    BidiTranscriptStreamEvent,
)
from bidi_core.recording import Recorder
from bidi_core.testing import speak


def read_wav(path: Path) -> tuple[int, array.array, array.array]:
    with wave.open(str(path), "rb") as wav:
        assert wav.getnchannels() == 2
        assert wav.getsampwidth() == 2
        rate = wav.getframerate()
        frames = array.array("h")
        frames.frombytes(wav.readframes(wav.getnframes()))
    return rate, frames[0::2], frames[1::2]


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


async def collect_until(agent, predicate, limit=20.0):
    events = []
    async with asyncio.timeout(limit):
        async for event in agent.receive():
            events.append(event)
            if predicate(event):
                return events
    return events


async def talk_with_barge_in(agent: BidiAgent) -> None:
    """A long answer, then the user speaks over it (real-time audio), then an answer."""
    await agent.send("Tell me a story.")
    reader = agent.receive()
    async with asyncio.timeout(20):
        async for event in reader:
            if event.type == "bidi_audio_stream":
                break
    await asyncio.sleep(0.6)  # let some of the story play

    async def speak_over() -> None:
        pcm = speak("stop please", 16000) + bytes(16000 * 2)  # then a second of silence
        step = 640  # 20 ms
        for offset in range(0, len(pcm), step):
            await agent.send(
                BidiAudioInputEvent(audio=pcm[offset : offset + step], sample_rate=16000)
            )
            await asyncio.sleep(0.02)

    speaker = asyncio.create_task(speak_over())
    interrupted = answered = False
    async with asyncio.timeout(30):
        async for event in reader:
            if isinstance(event, BidiInterruptionEvent):
                interrupted = True
            if (
                isinstance(event, BidiTranscriptStreamEvent)
                and event.role == "assistant"
                and event.is_final
                and "You said" in event.text
            ):
                answered = True
            if interrupted and answered and isinstance(event, BidiResponseCompleteEvent):
                break
    await speaker
    await reader.aclose()


async def test_a_recording_shows_user_left_assistant_right_and_the_barge_in_cut(tmp_path):
    """Stereo WAV: user audio left, assistant right; the right channel stops at the cut."""
    model = get_model("simulated", provider_config={"pace": 1.0, "story_pace": 1.0})
    agent = BidiAgent(model, record_to=tmp_path)
    async with agent:
        await talk_with_barge_in(agent)
    (wav_path,) = tmp_path.glob("*.wav")
    (log_path,) = tmp_path.glob("*.jsonl")
    assert wav_path.stem == log_path.stem
    rate, left, right = read_wav(wav_path)
    assert rate == model.capabilities.output_sample_rate
    log = lines(log_path)
    assert log[0]["type"] == "recording_start"
    assert log[0]["channels"] == {"left": "user", "right": "assistant"}
    assert log[-1]["type"] == "recording_end"
    times = [entry["t"] for entry in log]
    assert times == sorted(times)
    # No payload inline: audio entries point into the WAV.
    for entry in log:
        if entry.get("type") in ("bidi_audio_input", "bidi_audio_stream"):
            assert set(entry["audio"]) == {"channel", "frame", "frames"}
    user_audio = [e for e in log if e.get("type") == "bidi_audio_input"]
    first = user_audio[0]["audio"]
    assert first["channel"] == "left"
    spoken = [e["audio"] for e in user_audio]
    loud = max(abs(s) for a in spoken for s in left[a["frame"] : a["frame"] + a["frames"]])
    assert loud > 1000
    # The cut: assistant audio before it, silence on the right after it until the next answer.
    (cut_entry,) = [e for e in log if e.get("type") == "bidi_interruption"]
    cut = cut_entry["cut_frame"]
    later = [
        e["audio"]["frame"]
        for e in log
        if e.get("type") == "bidi_audio_stream" and e["audio"]["frame"] >= cut
    ]
    next_answer = min(later) if later else len(right)
    assert next_answer - cut > rate // 10  # the user kept talking: a real gap
    last_sound = max(i for i in range(cut) if right[i] != 0)
    assert cut - last_sound < rate // 2, (cut, last_sound)  # the story played until the cut
    assert all(s == 0 for s in right[cut:next_answer])
    # The user's speech is on the left while the right is cut.
    assert max(abs(s) for s in left[cut : cut + rate // 5]) > 1000


async def test_jsonl_lists_every_event_the_agent_yields(tmp_path):
    """Each event and input is one JSON line with t and dir; text turns are there."""
    agent = BidiAgent("simulated", record_to=tmp_path)
    async with agent:
        await agent.send("hello recorder")
        await collect_until(agent, lambda e: e.type == "bidi_response_complete")
    (log_path,) = tmp_path.glob("*.jsonl")
    log = lines(log_path)
    kinds = [(e.get("dir"), e["type"]) for e in log]
    assert ("in", "bidi_text_input") in kinds
    assert ("out", "bidi_connection_start") in kinds
    assert ("out", "bidi_response_complete") in kinds
    assert ("out", "bidi_connection_close") in kinds
    text = next(e for e in log if e["type"] == "bidi_text_input")
    assert text["text"] == "hello recorder"


async def test_a_size_limit_stops_the_recording_and_is_reported(tmp_path):
    """At max_bytes the recording stops with a recording_limit error; the talk goes on."""
    recorder = Recorder(tmp_path, max_bytes=8192)
    agent = BidiAgent("simulated", observers=[recorder])
    async with agent:
        await agent.send("Say something long enough to pass the limit, please.")
        events = await collect_until(agent, lambda e: e.type == "bidi_response_complete")
        await agent.send("And again.")
        events += await collect_until(agent, lambda e: e.type == "bidi_response_complete")
    errors = [e for e in events if isinstance(e, BidiErrorEvent)]
    assert [e.code for e in errors] == ["recording_limit"]
    assert recorder.error
    assert "size limit" in recorder.error
    total = sum(p.stat().st_size for p in tmp_path.iterdir())
    assert total <= 8192 + 44  # the WAV header is not counted
    finals = [e for e in events if e.type == "bidi_transcript_stream" and e.is_final]
    assert len(finals) >= 2  # both turns were answered


async def test_a_failing_disk_is_reported_and_never_stops_the_talk(tmp_path, monkeypatch):
    """A write error mid-session becomes a recording_failed event; answers keep coming."""
    calls = {"n": 0}
    real = wave.Wave_write.writeframes

    def failing(self, data):
        calls["n"] += 1
        if calls["n"] > 1:
            raise OSError(28, "No space left on device")
        return real(self, data)

    monkeypatch.setattr(wave.Wave_write, "writeframes", failing)
    model = get_model("simulated", provider_config={"pace": 1.0})
    agent = BidiAgent(model, record_to=tmp_path)
    async with agent:
        await agent.send("first turn")
        events = await collect_until(agent, lambda e: e.type == "bidi_response_complete")
        await agent.send("second turn")
        events += await collect_until(agent, lambda e: e.type == "bidi_response_complete")
    codes = [e.code for e in events if isinstance(e, BidiErrorEvent)]
    assert codes == ["recording_failed"]
    finals = [e.text for e in events if e.type == "bidi_transcript_stream" and e.is_final]
    assert "You said: second turn." in finals


async def test_a_directory_that_cannot_be_created_is_reported(tmp_path):
    """record_to pointing at a file: a recording_failed event, and the talk goes on."""
    target = tmp_path / "not-a-dir"
    target.write_text("x")
    agent = BidiAgent("simulated", record_to=target / "sub")
    async with agent:
        await agent.send("hello")
        events = await collect_until(agent, lambda e: e.type == "bidi_response_complete")
    assert any(isinstance(e, BidiErrorEvent) and e.code == "recording_failed" for e in events)
    assert any(e.type == "bidi_audio_stream" for e in events)
