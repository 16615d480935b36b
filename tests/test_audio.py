"""PCM16 helpers in bidi_core.audio: level, durations, channel conversion, linear resampling."""

from __future__ import annotations

import math
from array import array

import pytest

from bidi_core.audio import (
    StreamResampler,
    duration_ms,
    rms,
    silence,
    to_channels,
    to_mono,
)
from bidi_core.testing.speech import speak, transcribe


def pcm(*samples: int) -> bytes:
    """Pack samples as PCM16 bytes."""
    return array("h", samples).tobytes()


def samples(data: bytes) -> list[int]:
    """Unpack PCM16 bytes."""
    out = array("h")
    out.frombytes(data)
    return out.tolist()


def test_rms_of_silence_and_a_square_wave() -> None:
    """rms() is 0 for silence and the amplitude for a full-scale square wave."""
    assert rms(b"") == 0.0
    assert rms(bytes(100)) == 0.0
    assert rms(pcm(1000, -1000, 1000, -1000)) == pytest.approx(1000)


def test_duration_ms_counts_frames_at_the_rate() -> None:
    """duration_ms() converts bytes to milliseconds for the rate and channel count."""
    assert duration_ms(32000, 16000) == pytest.approx(1000)
    assert duration_ms(192000, 48000, channels=2) == pytest.approx(1000)


def test_to_mono_averages_channels() -> None:
    """Stereo frames become the average of their two samples; mono passes through."""
    assert samples(to_mono(pcm(100, 300, -50, -150), 2)) == [200, -100]
    assert to_mono(pcm(1, 2, 3), 1) == pcm(1, 2, 3)


def test_to_channels_converts_up_and_down() -> None:
    """to_channels() copies mono to every channel and mixes other layouts through mono."""
    assert samples(to_channels(pcm(1, 2), 1, 2)) == [1, 1, 2, 2]
    assert samples(to_channels(pcm(10, 30, 50, 70), 2, 1)) == [20, 60]
    assert samples(to_channels(pcm(10, 30), 2, 3)) == [20, 20, 20]
    assert to_channels(pcm(5, 6), 2, 2) == pcm(5, 6)


def test_silence_has_whole_frames_of_zeros() -> None:
    """silence() returns zero bytes for the duration, in whole frames."""
    assert silence(20, 16000) == bytes(640)
    assert len(silence(10, 44100, channels=2)) == 4 * 441


def test_stream_resampler_tracks_the_rate_ratio_across_chunks() -> None:
    """Chunked linear resampling yields about ratio x input samples, the same as one call."""
    source = pcm(*(int(8000 * math.sin(i / 7)) for i in range(4800)))
    whole = StreamResampler(48000, 16000).process(source)
    chunked = StreamResampler(48000, 16000)
    out = b"".join(chunked.process(source[i : i + 962]) for i in range(0, len(source), 962))
    assert abs(len(samples(out)) - 1600) <= 2
    assert abs(len(out) - len(whole)) <= 4


def test_stream_resampler_keeps_speech_intelligible() -> None:
    """Speech resampled 24 kHz -> 16 kHz by the linear resampler still transcribes."""
    resampler = StreamResampler(24000, 16000)
    audio = speak("linear ok", 24000)
    out = b"".join(resampler.process(audio[i : i + 960]) for i in range(0, len(audio), 960))
    assert transcribe(out, 16000) == "linear ok"


def test_stream_resampler_rejects_bad_rates_and_passes_equal_rates() -> None:
    """Rates outside 8,000-192,000 Hz raise ValueError; equal rates return the input unchanged."""
    with pytest.raises(ValueError, match="whole number of Hz from 8000 to 192000"):
        StreamResampler(0, 16000)
    assert StreamResampler(16000, 16000).process(pcm(1, 2, 3)) == pcm(1, 2, 3)
    assert StreamResampler(16000, 8000).process(b"") == b""
