"""Resampler: streaming mono conversion with soxr, and the error when soxr is missing."""

from __future__ import annotations

import math
import sys
from array import array
from pathlib import Path

import pytest

from bidi_core import ModelCapabilities, UnsupportedInputError
from bidi_core.io import RESAMPLE_EXTRA, MissingDependencyError, Resampler, choose_input_rate
from bidi_core.testing.speech import speak, transcribe


def pcm(values: list[int]) -> bytes:
    """Pack samples as PCM16 bytes."""
    return array("h", values).tobytes()


def unpack(data: bytes) -> list[int]:
    """Unpack PCM16 bytes."""
    out = array("h")
    out.frombytes(data)
    return out.tolist()


def stereo(mono: bytes) -> bytes:
    """Duplicate mono PCM16 into two interleaved channels."""
    src = unpack(mono)
    out = array("h", bytes(4 * len(src)))
    out[0::2] = array("h", src)
    out[1::2] = array("h", src)
    return out.tobytes()


def tone(rate: int, ms: int, hz: float = 440.0) -> bytes:
    """A sine tone."""
    n = rate * ms // 1000
    return pcm([int(8000 * math.sin(2 * math.pi * hz * i / rate)) for i in range(n)])


@pytest.mark.parametrize(
    ("src", "dst"), [(48000, 16000), (44100, 16000), (48000, 24000), (16000, 24000)]
)
def test_output_length_follows_the_rate_ratio(src: int, dst: int) -> None:
    """process() + flush() returns the input duration at the new rate."""
    resampler = Resampler(src, dst)
    audio = tone(src, 500)
    out = resampler.process(audio) + resampler.flush()
    assert resampler.resamples
    assert abs(len(out) // 2 - dst // 2) <= 2


def test_chunked_processing_equals_one_call() -> None:
    """Chunk boundaries (even mid-frame) do not change the output beyond rounding."""
    audio = stereo(tone(44100, 300))
    whole = Resampler(44100, 16000, channels=2)
    expected = whole.process(audio) + whole.flush()
    chunked = Resampler(44100, 16000, channels=2)
    parts = [chunked.process(audio[i : i + 1001]) for i in range(0, len(audio), 1001)]
    got = unpack(b"".join(parts) + chunked.flush())
    want = unpack(expected)
    assert len(got) == len(want)
    assert max(abs(a - b) for a, b in zip(got, want, strict=True)) <= 2


def test_speech_survives_48k_stereo_to_16k_mono() -> None:
    """Speech at 48 kHz stereo converted to 16 kHz mono transcribes to the same text."""
    resampler = Resampler(48000, 16000, channels=2)
    audio = stereo(speak("soxr speaks", 48000))
    out = b"".join(resampler.process(audio[i : i + 3840]) for i in range(0, len(audio), 3840))
    out += resampler.flush()
    assert transcribe(out, 16000) == "soxr speaks"


def test_equal_rates_only_mix_channels() -> None:
    """At equal rates stereo is averaged to mono and mono passes through unchanged."""
    mixer = Resampler(16000, 16000, channels=2)
    assert not mixer.resamples
    assert unpack(mixer.process(pcm([100, 300, -100, -301]))) == [200, -200]
    assert mixer.flush() == b""
    plain = Resampler(24000, 24000)
    assert plain.process(pcm([1, 2, 3])) == pcm([1, 2, 3])


def test_flush_and_reset_start_a_fresh_stream() -> None:
    """After flush() or reset() the resampler can be used again for a new stream."""
    resampler = Resampler(48000, 16000)
    first = resampler.process(tone(48000, 100)) + resampler.flush()
    again = resampler.process(tone(48000, 100)) + resampler.flush()
    assert first == again
    resampler.process(tone(48000, 50))
    resampler.reset()
    assert resampler.process(tone(48000, 100)) + resampler.flush() == first


def test_bad_arguments_are_refused() -> None:
    """Rates outside 8-192 kHz, channels below 1 and unknown qualities raise ValueError."""
    with pytest.raises(ValueError, match="from 8000 to 192000"):
        Resampler(48000, 0)
    with pytest.raises(ValueError, match="channels"):
        Resampler(48000, 16000, channels=0)
    with pytest.raises(ValueError, match="quality"):
        Resampler(48000, 16000, quality="best")
    assert "soxr VHQ" in repr(Resampler(48000, 16000, quality="VHQ"))


def test_missing_soxr_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without soxr, a rate change raises MissingDependencyError naming the resample extra."""
    monkeypatch.setitem(sys.modules, "soxr", None)  # makes `import soxr` fail
    with pytest.raises(MissingDependencyError) as info:
        Resampler(48000, 16000)
    assert "pip install 'soxr>=0.3'" in str(info.value)  # soxr is on PyPI; bidi-core is not
    assert "./dev install 'bidi-core[resample]'" in str(info.value)
    assert "48000 Hz to 16000 Hz" in str(info.value)
    assert isinstance(info.value, ImportError)
    assert RESAMPLE_EXTRA in str(info.value)
    # Mixing channels at an unchanged rate needs no soxr.
    assert unpack(Resampler(16000, 16000, channels=2).process(pcm([2, 4]))) == [3]


def test_missing_soxr_fails_a_wav_that_needs_resampling(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """WavFileInput raises the extra's error for a 48 kHz file, and works for a 16 kHz one."""
    import wave

    from bidi_core.io import WavFileInput

    for rate in (48000, 16000):
        with wave.open(str(tmp_path / f"{rate}.wav"), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(rate)
            w.writeframes(tone(rate, 40))
    monkeypatch.setitem(sys.modules, "soxr", None)
    caps = ModelCapabilities(input_sample_rates=(16000,))

    async def collect(path: Path) -> int:
        channel = WavFileInput(path, realtime=False, tail_silence_ms=0)
        return len([e async for e in channel.events(caps)])

    import asyncio

    with pytest.raises(MissingDependencyError, match="bidi-core\\[resample\\]"):
        asyncio.run(collect(tmp_path / "48000.wav"))
    assert asyncio.run(collect(tmp_path / "16000.wav")) == 2


def test_choose_input_rate_keeps_accepted_rates() -> None:
    """An accepted rate is kept; any other becomes the model's first rate; no audio is an error."""
    caps = ModelCapabilities(input_sample_rates=(16000, 24000))
    assert choose_input_rate(caps, 24000, what="x") == 24000
    assert choose_input_rate(caps, 48000, what="x") == 16000
    assert choose_input_rate(ModelCapabilities(input_sample_rates=()), 44100, what="x") == 44100
    with pytest.raises(UnsupportedInputError, match="takes no audio input"):
        choose_input_rate(ModelCapabilities(input_modalities=("text",)), 16000, what="x")
