"""Microphone and speaker channels, with only the audio device faked.

There is no sound card on CI, so a fake ``sounddevice`` module stands in for the
device: its raw streams call the channel's real callback from their own thread,
with real byte buffers, as PortAudio does.
"""

from __future__ import annotations

import asyncio
import importlib.abc
import sys
import threading
import time
import types
from array import array
from collections.abc import Callable, Iterator
from typing import Any

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
from bidi_core.io import (
    AudioDeviceError,
    BidiInput,
    BidiOutput,
    MicrophoneInput,
    MissingDependencyError,
    SpeakerOutput,
)
from bidi_core.testing.speech import speak, transcribe


class FakePortAudioError(Exception):
    """Stands in for sounddevice.PortAudioError."""


class FakeDevice:
    """What the fake sounddevice module knows about the machine's (fake) devices."""

    def __init__(self) -> None:
        self.default_samplerate = 48000.0
        self.source = b""  # what the microphone "hears", interleaved PCM16
        self.burst = False  # deliver the whole source inside start() (deterministic drops)
        self.refused_rates: set[int] = set()
        self.no_devices = False  # query_devices fails as PortAudio does on a machine without any
        self.inputs: list[FakeInputStream] = []
        self.outputs: list[FakeOutputStream] = []


class FakeStream:
    """The part of a sounddevice raw stream the channels use."""

    def __init__(
        self,
        device_state: FakeDevice,
        *,
        samplerate: int,
        blocksize: int,
        device: Any,
        channels: int,
        dtype: str,
        callback: Callable[..., None],
    ) -> None:
        if samplerate in device_state.refused_rates:
            msg = f"Invalid sample rate {samplerate}"
            raise FakePortAudioError(msg)
        assert dtype == "int16"
        self.state = device_state
        self.samplerate = samplerate
        self.blocksize = blocksize
        self.device = device
        self.channels = channels
        self.callback = callback
        self.started = False
        self.stopped = False
        self.closed = False
        self.thread: threading.Thread | None = None
        self._stop = threading.Event()

    @property
    def block_bytes(self) -> int:
        """Bytes in one block."""
        return 2 * self.channels * self.blocksize

    def stop(self) -> None:
        """Stop calling the callback and wait for the device thread, as PortAudio does."""
        self._stop.set()
        if self.thread is not None:
            self.thread.join(5)
        self.stopped = True

    def close(self) -> None:
        """Release the device."""
        self.stop()
        self.closed = True


class FakeInputStream(FakeStream):
    """A microphone: feeds ``state.source`` to the callback block by block from a thread."""

    def start(self) -> None:
        """Start the device thread (in burst mode, wait until it delivered everything)."""
        self.started = True
        self.thread = threading.Thread(target=self._run, name="fake-portaudio-in")
        self.thread.start()
        if self.state.burst:
            self.thread.join(5)

    def _run(self) -> None:
        source = self.state.source
        size = self.block_bytes
        for start in range(0, len(source) - size + 1, size):
            if self._stop.is_set():
                return
            block = memoryview(bytearray(source[start : start + size]))
            self.callback(block, self.blocksize, None, 0)


class FakeOutputStream(FakeStream):
    """A speaker: pulls blocks through the callback from a thread and records them."""

    def __init__(self, device_state: FakeDevice, **kwargs: Any) -> None:
        super().__init__(device_state, **kwargs)
        self.played = bytearray()
        self.auto = False

    def start(self) -> None:
        """Open the device; blocks are pulled by play() (or continuously once auto_play())."""
        self.started = True

    def play(self, blocks: int) -> None:
        """Run the callback *blocks* times on a device thread and wait for it."""

        def run() -> None:
            for _ in range(blocks):
                self._pull()

        thread = threading.Thread(target=run, name="fake-portaudio-out")
        thread.start()
        thread.join(5)

    def auto_play(self) -> None:
        """Keep pulling blocks on a device thread until stop(), like a running device."""

        def run() -> None:
            while not self._stop.is_set():
                self._pull()
                time.sleep(0.001)

        self.thread = threading.Thread(target=run, name="fake-portaudio-out")
        self.thread.start()

    def _pull(self) -> None:
        out = memoryview(bytearray(self.block_bytes))
        self.callback(out, self.blocksize, None, 0)
        self.played += out


@pytest.fixture
def device(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeDevice]:
    """Install a fake sounddevice module backed by one fake device."""
    state = FakeDevice()
    module = types.ModuleType("sounddevice")

    def query_devices(device: Any = None, kind: str | None = None) -> dict[str, Any]:
        if state.no_devices:
            msg = "Error querying device -1"
            raise FakePortAudioError(msg)
        if device == "missing":
            msg = f"No {kind} device matching {device!r}"
            raise ValueError(msg)
        return {"name": "fake", "default_samplerate": state.default_samplerate}

    def raw_input_stream(**kwargs: Any) -> FakeInputStream:
        stream = FakeInputStream(state, **kwargs)
        state.inputs.append(stream)
        return stream

    def raw_output_stream(**kwargs: Any) -> FakeOutputStream:
        stream = FakeOutputStream(state, **kwargs)
        state.outputs.append(stream)
        return stream

    module.query_devices = query_devices  # type: ignore[attr-defined]
    module.RawInputStream = raw_input_stream  # type: ignore[attr-defined]
    module.RawOutputStream = raw_output_stream  # type: ignore[attr-defined]
    module.PortAudioError = FakePortAudioError  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "sounddevice", module)
    yield state
    for stream in [*state.inputs, *state.outputs]:
        stream.close()


def stereo(mono: bytes) -> bytes:
    """Duplicate mono PCM16 into two interleaved channels."""
    src = array("h")
    src.frombytes(mono)
    out = array("h", bytes(4 * len(src)))
    out[0::2] = src
    out[1::2] = src
    return out.tobytes()


def numbered_blocks(count: int, block_bytes: int) -> bytes:
    """*count* blocks whose samples all hold the block's number."""
    return b"".join(array("h", [i] * (block_bytes // 2)).tobytes() for i in range(count))


CAPS_16K = ModelCapabilities(input_sample_rates=(16000,))
CAPS_48K = ModelCapabilities(input_sample_rates=(16000, 48000))


# ----------------------------------------------------------------- MicrophoneInput


async def test_microphone_speech_reaches_a_16k_model(device: FakeDevice) -> None:
    """48 kHz stereo capture becomes 16 kHz mono audio events that transcribe correctly."""
    speech = speak("mic check", 48000)
    device.source = stereo(speech + bytes(2 * 48000 // 5))  # 200 ms of silence after
    mic = MicrophoneInput(channels=2)
    assert isinstance(mic, BidiInput)
    assert mic.sample_rate == 48000
    heard = b""
    async for event in mic.events(CAPS_16K):
        assert isinstance(event, BidiAudioInputEvent)
        assert (event.sample_rate, event.channels) == (16000, 1)
        heard += event.audio
        if len(heard) >= len(speech) // 3:
            break
    await mic.aclose()
    assert transcribe(heard, 16000) == "mic check"
    stream = device.inputs[0]
    assert (stream.samplerate, stream.channels, stream.blocksize) == (48000, 2, 960)
    assert stream.closed
    assert stream.thread is not None
    assert not stream.thread.is_alive()
    assert mic.dropped_blocks == 0


async def test_an_accepted_capture_rate_is_sent_unchanged(device: FakeDevice) -> None:
    """Blocks at a rate the model accepts are yielded as captured, one event per block."""
    device.source = numbered_blocks(5, 1920)
    mic = MicrophoneInput(block_ms=20)
    got: list[bytes] = []
    async for event in mic.events(CAPS_48K):
        got.append(event.audio)  # type: ignore[union-attr]
        if len(got) == 5:
            break
    await mic.aclose()
    assert got == [numbered_blocks(5, 1920)[i * 1920 : (i + 1) * 1920] for i in range(5)]


async def test_a_slow_consumer_drops_the_oldest_blocks_and_counts_them(device: FakeDevice) -> None:
    """When the queue is full the oldest blocks are dropped, counted, and the newest kept."""
    device.source = numbered_blocks(10, 1920)
    device.burst = True  # all ten blocks arrive before the consumer reads one
    mic = MicrophoneInput(max_queued_blocks=3)
    items = mic.events(CAPS_48K)
    first = await anext(items)
    got = [first, await anext(items), await anext(items)]
    await mic.aclose()
    assert [e async for e in items] == []
    numbers = [array("h", e.audio)[0] for e in got]  # type: ignore[union-attr]
    assert numbers == [7, 8, 9]
    assert mic.dropped_blocks == 7


async def test_microphone_aclose_is_idempotent_and_ends_a_waiting_read(device: FakeDevice) -> None:
    """aclose() ends an iteration waiting for audio and closes the stream once."""
    mic = MicrophoneInput()
    task = asyncio.ensure_future(anext(mic.events(CAPS_16K), None))
    while not device.inputs:
        await asyncio.sleep(0.001)
    await mic.aclose()
    assert await task is None
    await mic.aclose()
    assert device.inputs[0].closed
    assert [e async for e in mic.events(CAPS_16K)] == []
    assert len(device.inputs) == 1


async def test_microphone_for_a_text_only_model_is_refused(device: FakeDevice) -> None:
    """A model without audio input is refused before the device opens."""
    mic = MicrophoneInput()
    with pytest.raises(UnsupportedInputError, match="takes no audio input"):
        await anext(mic.events(ModelCapabilities(input_modalities=("text",))))
    assert device.inputs == []


async def test_microphone_device_errors_are_clear(device: FakeDevice) -> None:
    """A missing device fails at construction, a refused rate when the stream opens."""
    with pytest.raises(AudioDeviceError, match=r"Cannot use input device 'missing'.*sounddevice"):
        MicrophoneInput(device="missing")
    device.refused_rates = {44100}
    mic = MicrophoneInput(sample_rate=44100)
    with pytest.raises(AudioDeviceError, match="Could not open the microphone"):
        await anext(mic.events(CAPS_16K))
    device.no_devices = True
    with pytest.raises(AudioDeviceError, match="Cannot use the default input device"):
        MicrophoneInput()
    with pytest.raises(AudioDeviceError, match="Cannot use the default output device"):
        SpeakerOutput()
    device.no_devices = False
    with pytest.raises(ValueError, match="block_ms"):
        MicrophoneInput(block_ms=0)
    with pytest.raises(ValueError, match="max_queued_blocks"):
        MicrophoneInput(max_queued_blocks=0)


# -------------------------------------------------------------------- SpeakerOutput


def chunk(
    ms: int, response_id: str | None, rate: int = 24000, fill: int = 1
) -> BidiAudioStreamEvent:
    """*ms* of constant-valued model audio."""
    pcm = array("h", [fill] * (rate * ms // 1000)).tobytes()
    return BidiAudioStreamEvent(audio=pcm, sample_rate=rate, response_id=response_id)


async def test_speaker_tracks_what_the_device_played(device: FakeDevice) -> None:
    """played_ms counts only the blocks the device pulled, per response."""
    speaker = SpeakerOutput(prebuffer_ms=0, drain_on_close=False)
    assert isinstance(speaker, BidiOutput)
    await speaker.handle(chunk(100, "r1"))
    await speaker.handle(chunk(100, "r2", fill=2))
    stream = device.outputs[0]
    assert (stream.samplerate, stream.channels, stream.blocksize) == (24000, 1, 480)
    assert speaker.played_ms("r1") == 0.0
    stream.play(7)  # 140 ms
    assert speaker.played_ms("r1") == pytest.approx(100)
    assert speaker.played_ms("r2") == pytest.approx(40)
    assert speaker.queued_ms == pytest.approx(60)
    played = array("h", bytes(stream.played)).tolist()
    assert played == [1] * 2400 + [2] * 960
    await speaker.aclose()


async def test_clear_audio_drops_unplayed_audio_at_once(device: FakeDevice) -> None:
    """After clear_audio (barge-in) the device plays silence and played_ms stops growing."""
    speaker = SpeakerOutput(prebuffer_ms=0)
    await speaker.handle(chunk(200, "r1"))
    stream = device.outputs[0]
    stream.play(3)
    speaker.clear_audio()
    stream.play(3)
    assert speaker.played_ms("r1") == pytest.approx(60)
    assert speaker.cleared_ms == pytest.approx(140)
    assert bytes(stream.played[3 * 960 :]) == bytes(3 * 960)
    await speaker.handle(chunk(20, "r2", fill=5))
    stream.play(1)
    assert speaker.played_ms("r2") == pytest.approx(20)
    await speaker.aclose()


async def test_an_interruption_event_clears_playback(device: FakeDevice) -> None:
    """A BidiInterruptionEvent handed to the speaker drops its queued audio too."""
    speaker = SpeakerOutput(prebuffer_ms=0)
    await speaker.handle(chunk(100, "r1"))
    device.outputs[0].play(1)
    await speaker.handle(BidiInterruptionEvent(response_id="r1"))
    assert speaker.queued_ms == 0.0
    assert speaker.played_ms("r1") == pytest.approx(20)
    await speaker.aclose()


async def test_playback_waits_for_the_prebuffer_or_the_end_of_the_response(
    device: FakeDevice,
) -> None:
    """Playback starts once prebuffer_ms is queued, or earlier when the response has ended."""
    speaker = SpeakerOutput(prebuffer_ms=60)
    await speaker.handle(BidiResponseStartEvent(response_id="r1"))
    await speaker.handle(chunk(40, "r1"))
    stream = device.outputs[0]
    stream.play(2)
    assert speaker.played_ms("r1") == 0.0  # still buffering
    await speaker.handle(chunk(40, "r1"))
    stream.play(2)
    assert speaker.played_ms("r1") == pytest.approx(40)
    stream.play(3)  # runs dry mid-response: an underrun, then rebuffering
    assert speaker.played_ms("r1") == pytest.approx(80)
    assert speaker.underruns == 1
    await speaker.handle(chunk(20, "r1"))
    await speaker.handle(BidiResponseCompleteEvent(response_id="r1"))
    stream.play(1)
    assert speaker.played_ms("r1") == pytest.approx(100)
    assert speaker.underruns == 1
    await speaker.aclose()


async def test_a_full_buffer_drops_the_oldest_audio(device: FakeDevice) -> None:
    """Beyond max_buffer_ms the oldest unplayed audio is dropped and counted, not played."""
    speaker = SpeakerOutput(prebuffer_ms=0, max_buffer_ms=100)
    await speaker.handle(chunk(80, "r1", fill=1))
    await speaker.handle(chunk(80, "r2", fill=2))
    assert speaker.dropped_ms == pytest.approx(60)
    assert speaker.queued_ms == pytest.approx(100)
    stream = device.outputs[0]
    stream.play(5)
    assert speaker.played_ms("r1") == pytest.approx(20)
    assert speaker.played_ms("r2") == pytest.approx(80)
    await speaker.aclose()


async def test_aclose_lets_queued_audio_play_out_then_closes(device: FakeDevice) -> None:
    """aclose() drains the buffer through the running device, then closes it; idempotent."""
    speaker = SpeakerOutput()
    await speaker.handle(chunk(100, "r1"))
    stream = device.outputs[0]
    stream.auto_play()
    await speaker.aclose()
    assert speaker.played_ms("r1") == pytest.approx(100)
    assert stream.closed
    assert stream.thread is not None
    assert not stream.thread.is_alive()
    await speaker.aclose()
    await speaker.handle(chunk(20, "r2"))  # closed: ignored, no new stream
    assert len(device.outputs) == 1


async def test_aclose_without_drain_drops_queued_audio(device: FakeDevice) -> None:
    """With drain_on_close=False, aclose() closes at once and nothing more is played."""
    speaker = SpeakerOutput(drain_on_close=False)
    await speaker.handle(chunk(100, "r1"))
    await speaker.aclose()
    assert device.outputs[0].closed
    assert speaker.played_ms("r1") == 0.0


async def test_a_refused_rate_falls_back_to_the_device_rate(device: FakeDevice) -> None:
    """If the device refuses 24 kHz, the speaker opens at its default rate and resamples."""
    device.refused_rates = {24000}
    speaker = SpeakerOutput(prebuffer_ms=0)
    speech = speak("ok", 24000)
    await speaker.handle(BidiAudioStreamEvent(audio=speech, sample_rate=24000, response_id="r1"))
    await speaker.handle(BidiResponseCompleteEvent(response_id="r1"))
    stream = device.outputs[0]
    assert speaker.sample_rate == 48000
    assert stream.samplerate == 48000
    stream.play(len(speech) * 2 // stream.block_bytes + 2)
    assert transcribe(bytes(stream.played), 48000) == "ok"
    assert speaker.played_ms("r1") == pytest.approx(80, abs=1)
    await speaker.aclose()


async def test_a_speaker_that_cannot_open_says_so(device: FakeDevice) -> None:
    """A device refusing every rate raises AudioDeviceError naming the rates tried."""
    device.refused_rates = {24000, 48000}
    speaker = SpeakerOutput()
    with pytest.raises(AudioDeviceError, match=r"24000 Hz or 48000 Hz"):
        await speaker.handle(chunk(20, "r1"))
    await speaker.aclose()
    with pytest.raises(AudioDeviceError, match="Cannot use output device 'missing'"):
        SpeakerOutput(device="missing")


async def test_speaker_tolerates_every_output_event(device: FakeDevice) -> None:
    """Non-audio events are ignored and open no device."""
    speaker = SpeakerOutput()
    others: list[BidiEvent] = [
        BidiConnectionStartEvent(connection_id="c", model="m"),
        BidiTranscriptStreamEvent(role="assistant", text="hi", is_final=True),
        ToolUseStreamEvent(tool_use={"toolUseId": "t", "name": "n", "input": {}}),
        ToolResultEvent(tool_result={"toolUseId": "t", "status": "success", "content": []}),
        BidiUsageEvent(input_tokens=1, output_tokens=1, total_tokens=2),
        BidiErrorEvent(message="x"),
        BidiResponseCompleteEvent(response_id="r"),
        BidiAudioStreamEvent(audio=b"", sample_rate=24000),
    ]
    for event in others:
        await speaker.handle(event)  # type: ignore[arg-type]
    speaker.clear_audio()
    assert device.outputs == []
    assert speaker.played_ms("r") == 0.0
    assert "SpeakerOutput" in repr(speaker)
    await speaker.aclose()


# ------------------------------------------------------------------- import errors


def test_missing_sounddevice_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without sounddevice, both channels raise MissingDependencyError naming the extra."""
    monkeypatch.setitem(sys.modules, "sounddevice", None)
    for factory in (MicrophoneInput, SpeakerOutput):
        with pytest.raises(MissingDependencyError) as info:
            factory()
        assert "pip install 'sounddevice>=0.4' 'soxr>=0.3'" in str(info.value)
        assert "./dev install 'bidi-core[sounddevice]'" in str(info.value)
        assert factory.__name__ in str(info.value)
        assert isinstance(info.value, ImportError)


class _NoPortAudio(importlib.abc.MetaPathFinder):
    """Makes `import sounddevice` fail the way it does when libportaudio is missing."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if name == "sounddevice":
            msg = "PortAudio library not found"
            raise OSError(msg)


def test_missing_portaudio_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """sounddevice without the PortAudio library gives an error saying how to install it."""
    monkeypatch.delitem(sys.modules, "sounddevice", raising=False)
    monkeypatch.setattr(sys, "meta_path", [_NoPortAudio(), *sys.meta_path])
    with pytest.raises(MissingDependencyError, match=r"PortAudio library.*libportaudio2"):
        MicrophoneInput()


async def test_agent_barge_in_truncates_at_what_the_speaker_played(device: FakeDevice) -> None:
    """BidiAgent + SpeakerOutput: a barge-in truncates the model at the device's played ms."""
    from bidi_core.agent import BidiAgent
    from bidi_core.simulated import SimulatedModel

    model = SimulatedModel(provider_config={"seed": 5})
    speaker = SpeakerOutput(prebuffer_ms=0, drain_on_close=False)

    class User:
        async def events(self, capabilities: ModelCapabilities) -> Any:
            yield "tell me a story"
            while not device.outputs or speaker.queued_ms < 400:
                await asyncio.sleep(0.01)
            device.outputs[0].play(10)  # the listener has heard 200 ms
            rate = capabilities.input_sample_rates[0]
            pcm = speak("stop", rate) + bytes(rate * 2 * 600 // 1000)
            step = rate * 2 * 20 // 1000
            for offset in range(0, len(pcm), step):
                yield BidiAudioInputEvent(audio=pcm[offset : offset + step], sample_rate=rate)

        async def aclose(self) -> None:
            pass

    stats = await BidiAgent(model).run(inputs=[User()], outputs=[speaker], settle_s=0.3)
    assert stats.interruptions == 1
    assert len(model.truncations) == 1
    response_id, played = model.truncations[0]
    assert played == 200
    assert speaker.played_ms(response_id) == pytest.approx(200)
