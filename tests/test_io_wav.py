"""WAV file channels: any PCM16 WAV feeds any model; model audio is written to a WAV."""

from __future__ import annotations

import asyncio
import struct
import wave
from array import array
from pathlib import Path

import pytest

from bidi_core import ModelCapabilities, UnsupportedInputError
from bidi_core.events import (
    BidiAudioInputEvent,
    BidiAudioStreamEvent,
    BidiConnectionStartEvent,
    BidiErrorEvent,
    BidiEvent,
    BidiInterruptionEvent,
    BidiResponseCompleteEvent,
    BidiResponseStartEvent,
    BidiTranscriptStreamEvent,
    BidiUsageEvent,
    ToolResultEvent,
    ToolUseStreamEvent,
)
from bidi_core.io import AudioFormatError, BidiInput, BidiOutput, WavFileInput, WavFileOutput
from bidi_core.testing.speech import speak, transcribe


def write_wav(path: Path, pcm: bytes, rate: int, channels: int = 1, width: int = 2) -> Path:
    """Write raw frames to a WAV file."""
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(pcm)
    return path


def read_wav(path: Path) -> tuple[int, int, bytes]:
    """Return (rate, channels, frames) of a WAV file."""
    with wave.open(str(path), "rb") as w:
        return w.getframerate(), w.getnchannels(), w.readframes(w.getnframes())


def stereo(mono: bytes) -> bytes:
    """Duplicate mono PCM16 into two interleaved channels."""
    src = array("h")
    src.frombytes(mono)
    out = array("h", bytes(4 * len(src)))
    out[0::2] = src
    out[1::2] = src
    return out.tobytes()


async def collect(channel: WavFileInput, caps: ModelCapabilities) -> list[BidiAudioInputEvent]:
    """Every audio event the channel yields."""
    events = [e async for e in channel.events(caps)]
    assert all(isinstance(e, BidiAudioInputEvent) for e in events)
    return events  # type: ignore[return-value]


def open_reader(channel: WavFileInput) -> object:
    """The WAV reader the channel holds open, if any."""
    return channel._reader


def caps(*rates: int) -> ModelCapabilities:
    """Capabilities of a model taking audio at *rates*."""
    return ModelCapabilities(input_sample_rates=rates)


# --------------------------------------------------------------------- WavFileInput


@pytest.mark.parametrize("file_rate", [44100, 48000])
@pytest.mark.parametrize("model_rate", [16000, 24000])
async def test_stereo_speech_wav_is_heard_by_the_model(
    tmp_path: Path, file_rate: int, model_rate: int
) -> None:
    """Speech in a 44.1/48 kHz stereo WAV reaches a 16/24 kHz model as mono and transcribes."""
    path = write_wav(tmp_path / "q.wav", stereo(speak("what time is it", file_rate)), file_rate, 2)
    channel = WavFileInput(path, realtime=False, tail_silence_ms=0)
    events = await collect(channel, caps(model_rate))
    assert {(e.sample_rate, e.channels, e.format) for e in events} == {(model_rate, 1, "pcm")}
    audio = b"".join(e.audio for e in events)
    assert transcribe(audio, model_rate) == "what time is it"
    assert abs(len(audio) / 2 / model_rate * 1000 - channel.duration_ms) < 5


async def test_chunks_have_chunk_ms_and_tail_silence_follows(tmp_path: Path) -> None:
    """Audio comes in chunk_ms chunks, then tail_silence_ms of zeros."""
    path = write_wav(tmp_path / "q.wav", speak("ab", 16000), 16000)  # 80 ms
    channel = WavFileInput(path, realtime=False, chunk_ms=20, tail_silence_ms=100)
    events = await collect(channel, caps(16000))
    sizes = [len(e.audio) for e in events]
    assert sizes == [640] * 9  # 80 ms of speech + 100 ms of silence, 20 ms each
    assert all(e.audio == bytes(640) for e in events[4:])
    assert b"".join(e.audio for e in events[:4]) == speak("ab", 16000)


async def test_an_accepted_rate_is_kept_without_resampling(tmp_path: Path) -> None:
    """A 24 kHz file for a model accepting 16 and 24 kHz is sent unchanged at 24 kHz."""
    pcm = speak("kept", 24000)
    path = write_wav(tmp_path / "q.wav", pcm, 24000)
    events = await collect(
        WavFileInput(path, realtime=False, tail_silence_ms=0), caps(16000, 24000)
    )
    assert {e.sample_rate for e in events} == {24000}
    assert b"".join(e.audio for e in events) == pcm


async def test_a_last_partial_chunk_is_sent(tmp_path: Path) -> None:
    """A file that is not a whole number of chunks ends with a shorter chunk, nothing lost."""
    path = write_wav(tmp_path / "q.wav", bytes(2 * 16000 * 50 // 1000), 16000)  # 50 ms
    events = await collect(WavFileInput(path, realtime=False, tail_silence_ms=0), caps(16000))
    assert [len(e.audio) for e in events] == [640, 640, 320]


async def test_realtime_pacing_yields_the_same_audio(tmp_path: Path) -> None:
    """Real-time pacing changes when chunks leave, not what they contain."""
    path = write_wav(tmp_path / "q.wav", speak("a", 16000), 16000)  # 40 ms
    fast = await collect(WavFileInput(path, realtime=False, tail_silence_ms=40), caps(16000))
    paced = await collect(WavFileInput(path, realtime=True, tail_silence_ms=40), caps(16000))
    assert paced == fast
    assert len(paced) == 4


async def test_aclose_stops_a_paced_stream_and_closes_the_file(tmp_path: Path) -> None:
    """aclose() during real-time streaming ends the iteration and releases the file."""
    path = write_wav(tmp_path / "q.wav", bytes(2 * 16000 * 10), 16000)  # 10 s
    channel = WavFileInput(path, realtime=True, chunk_ms=20, tail_silence_ms=0)
    items = channel.events(caps(16000))
    first = await anext(items)
    assert isinstance(first, BidiAudioInputEvent)
    assert len(first.audio) == 640
    assert open_reader(channel) is not None
    waiting = asyncio.ensure_future(anext(items, None))
    await asyncio.sleep(0)
    await channel.aclose()
    assert open_reader(channel) is None
    assert await waiting is None  # the pending wait ended at once, with no more audio
    assert [e async for e in items] == []
    await channel.aclose()  # idempotent
    assert [e async for e in channel.events(caps(16000))] == []


async def test_breaking_out_of_the_iteration_closes_the_file(tmp_path: Path) -> None:
    """Closing the events() generator early releases the file (no ResourceWarning)."""
    path = write_wav(tmp_path / "q.wav", bytes(2 * 16000), 16000)
    channel = WavFileInput(path, realtime=False)
    items = channel.events(caps(16000))
    await anext(items)
    await items.aclose()  # type: ignore[attr-defined]
    assert open_reader(channel) is None


async def test_text_only_model_is_refused(tmp_path: Path) -> None:
    """A model without audio input gets a clear error instead of audio it would refuse."""
    path = write_wav(tmp_path / "q.wav", bytes(640), 16000)
    with pytest.raises(UnsupportedInputError, match="takes no audio input"):
        await collect(WavFileInput(path), ModelCapabilities(input_modalities=("text",)))


def test_header_facts_and_protocol(tmp_path: Path) -> None:
    """The channel reports the file's rate, channels and duration and is a BidiInput."""
    path = write_wav(tmp_path / "q.wav", bytes(4 * 4410), 44100, channels=2)
    channel = WavFileInput(path)
    assert (channel.sample_rate, channel.channels, channel.frames) == (44100, 2, 4410)
    assert channel.duration_ms == pytest.approx(100)
    assert isinstance(channel, BidiInput)
    assert "44100 Hz x2" in repr(channel)


def float_wav(path: Path) -> Path:
    """Write a minimal IEEE-float WAV (format tag 3)."""
    data = struct.pack("<4f", 0.0, 0.5, -0.5, 0.0)
    fmt = struct.pack("<HHIIHH", 3, 1, 16000, 64000, 4, 32)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"data" + struct.pack("<I", len(data)) + data
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    return path


def test_unreadable_files_get_clear_errors(tmp_path: Path) -> None:
    """Non-PCM16, non-WAV, empty and missing files raise errors saying what is wrong."""
    with pytest.raises(AudioFormatError, match=r"8-bit PCM audio, not 16-bit.*sox"):
        WavFileInput(write_wav(tmp_path / "8.wav", bytes(100), 16000, width=1))
    with pytest.raises(AudioFormatError, match="24-bit PCM"):
        WavFileInput(write_wav(tmp_path / "24.wav", bytes(300), 16000, width=3))
    with pytest.raises(AudioFormatError, match="32-bit float audio, not 16-bit PCM"):
        WavFileInput(float_wav(tmp_path / "f.wav"))
    (tmp_path / "x.wav").write_bytes(b"ID3 this is an mp3")
    with pytest.raises(AudioFormatError, match="is not a readable WAV file"):
        WavFileInput(tmp_path / "x.wav")
    (tmp_path / "empty.wav").write_bytes(b"")
    with pytest.raises(AudioFormatError, match=r"empty\.wav"):
        WavFileInput(tmp_path / "empty.wav")
    with pytest.raises(FileNotFoundError):
        WavFileInput(tmp_path / "missing.wav")
    with pytest.raises(ValueError, match="chunk_ms"):
        WavFileInput(write_wav(tmp_path / "ok.wav", bytes(2), 16000), chunk_ms=0)
    with pytest.raises(ValueError, match="tail_silence_ms"):
        WavFileInput(tmp_path / "ok.wav", tail_silence_ms=-1)


# -------------------------------------------------------------------- WavFileOutput


def audio(
    ms: int, response_id: str | None, rate: int = 24000, text: str = ""
) -> BidiAudioStreamEvent:
    """*ms* of model audio (speech of *text*, padded with silence)."""
    pcm = speak(text, rate) if text else b""
    pcm += bytes(max(0, 2 * rate * ms // 1000 - len(pcm)))
    return BidiAudioStreamEvent(audio=pcm, sample_rate=rate, response_id=response_id)


async def test_model_audio_is_written_at_its_own_rate(tmp_path: Path) -> None:
    """The file takes the first audio event's rate and holds every chunk in order."""
    out = WavFileOutput(tmp_path / "reply.wav")
    first, second = audio(200, "r1", text="hi"), audio(200, "r2", text="yo")
    await out.handle(first)
    await out.handle(second)
    await out.aclose()
    rate, channels, frames = read_wav(tmp_path / "reply.wav")
    assert (rate, channels) == (24000, 1)
    assert frames == first.audio + second.audio
    assert transcribe(frames, rate) == "hiyo"


async def test_played_ms_reports_what_was_written_per_response(tmp_path: Path) -> None:
    """A file plays instantly: played_ms is the audio written for each response."""
    out = WavFileOutput(tmp_path / "reply.wav")
    assert isinstance(out, BidiOutput)
    await out.handle(audio(100, "r1"))
    await out.handle(audio(60, "r2"))
    await out.handle(audio(40, "r1"))
    out.clear_audio()  # nothing queued: a no-op
    await out.handle(BidiInterruptionEvent(response_id="r1"))
    assert out.played_ms("r1") == pytest.approx(140)
    assert out.played_ms("r2") == pytest.approx(60)
    assert out.played_ms("r3") == 0.0
    assert out.written_ms() == pytest.approx(200)
    await out.aclose()


async def test_a_given_rate_resamples_the_model_audio(tmp_path: Path) -> None:
    """With sample_rate=16000, 24 kHz model audio is resampled and still intelligible."""
    out = WavFileOutput(tmp_path / "reply.wav", sample_rate=16000)
    await out.handle(audio(600, "r1", text="resampled"))
    await out.handle(audio(600, "r2", rate=16000, text="native"))
    await out.aclose()
    rate, _, frames = read_wav(tmp_path / "reply.wav")
    assert rate == 16000
    assert transcribe(frames, rate) == "resamplednative"
    assert abs(len(frames) / 2 / rate - 1.2) < 0.01
    assert out.played_ms("r1") == pytest.approx(600)


async def test_stereo_audio_into_a_mono_file_is_mixed(tmp_path: Path) -> None:
    """A later chunk with another channel count is converted to the file's channels."""
    out = WavFileOutput(tmp_path / "reply.wav")
    mono = speak("a", 24000)
    await out.handle(BidiAudioStreamEvent(audio=mono, sample_rate=24000))
    await out.handle(BidiAudioStreamEvent(audio=stereo(mono), sample_rate=24000, channels=2))
    await out.aclose()
    _, channels, frames = read_wav(tmp_path / "reply.wav")
    assert channels == 1
    assert frames == mono + mono


async def test_no_audio_still_writes_a_valid_empty_file(tmp_path: Path) -> None:
    """A conversation without audio leaves a valid, empty WAV file."""
    out = WavFileOutput(tmp_path / "reply.wav")
    await out.handle(BidiTranscriptStreamEvent(role="assistant", text="text only", is_final=True))
    await out.aclose()
    assert read_wav(tmp_path / "reply.wav") == (24000, 1, b"")
    given = WavFileOutput(tmp_path / "r16.wav", sample_rate=16000)
    await given.aclose()
    assert read_wav(tmp_path / "r16.wav")[0] == 16000


async def test_every_output_event_is_tolerated(tmp_path: Path) -> None:
    """Non-audio events are ignored; aclose is idempotent; audio after close is not written."""
    out = WavFileOutput(tmp_path / "reply.wav")
    others: list[BidiEvent] = [
        BidiConnectionStartEvent(connection_id="c", model="m"),
        BidiResponseStartEvent(response_id="r1"),
        BidiTranscriptStreamEvent(role="user", text="hi", is_final=True),
        ToolUseStreamEvent(tool_use={"toolUseId": "t", "name": "n", "input": {}}),
        ToolResultEvent(tool_result={"toolUseId": "t", "status": "success", "content": []}),
        BidiInterruptionEvent(),
        BidiResponseCompleteEvent(response_id="r1"),
        BidiUsageEvent(input_tokens=1, output_tokens=1, total_tokens=2),
        BidiErrorEvent(message="x"),
        BidiAudioStreamEvent(audio=b"", sample_rate=24000),
    ]
    for event in others:
        await out.handle(event)  # type: ignore[arg-type]
    await out.handle(audio(20, "r1"))
    await out.aclose()
    await out.aclose()
    await out.handle(audio(20, "r2"))
    assert len(read_wav(tmp_path / "reply.wav")[2]) == 960
    assert out.played_ms("r2") == 0.0
    assert out.frames_written == 480
    assert "frames=480" in repr(out)


def test_wav_output_rejects_a_bad_rate(tmp_path: Path) -> None:
    """A non-positive sample_rate is refused at once."""
    with pytest.raises(ValueError, match="sample_rate"):
        WavFileOutput(tmp_path / "x.wav", sample_rate=0)


async def test_wav_in_to_wav_out_through_the_agent(tmp_path: Path) -> None:
    """A spoken WAV question goes through BidiAgent.run and the spoken reply lands in a WAV."""
    from bidi_core.agent import BidiAgent

    question = write_wav(tmp_path / "q.wav", stereo(speak("hello there", 48000)), 48000, channels=2)
    reply = tmp_path / "reply.wav"
    agent = BidiAgent("simulated")
    output = WavFileOutput(reply)
    await agent.run(
        inputs=[WavFileInput(question, realtime=False, tail_silence_ms=600)],
        outputs=[output],
        settle_s=0.2,
    )
    rate, _, frames = read_wav(reply)
    assert "hello there" in transcribe(frames, rate)
    assert agent.messages[0]["role"] == "user"
