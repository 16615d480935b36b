"""IO channels, capabilities and models check rates and timings before any audio flows."""

from __future__ import annotations

import math
import wave
from pathlib import Path
from typing import Any

import pytest

from bidi_core import ConfigError, ModelCapabilities
from bidi_core.io import AudioFormatError, Resampler, WavFileInput, WavFileOutput
from bidi_core.simulated import SimulatedModel


def write_wav(path: Path, rate: int) -> Path:
    """A short mono PCM16 WAV at *rate*."""
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(bytes(200))
    return path


@pytest.mark.parametrize("rate", [16, 1, math.nan, 1e9, "16000"])
def test_wav_output_refuses_a_rate_outside_8k_to_192k(tmp_path: Path, rate: Any) -> None:
    """WavFileOutput(sample_rate=16) (kHz for Hz) is refused at once, naming the argument."""
    with pytest.raises(ValueError, match="WavFileOutput sample_rate must be a whole number of Hz"):
        WavFileOutput(tmp_path / "out.wav", sample_rate=rate)


@pytest.mark.parametrize(("from_rate", "to_rate"), [(16, 16000), (48000, math.nan), (1, 8000)])
def test_resampler_refuses_a_rate_outside_8k_to_192k(from_rate: Any, to_rate: Any) -> None:
    """Resampler(1, 8000) would block the loop resampling; it is refused."""
    with pytest.raises(ValueError, match=r"Resampler (from|to)_rate must be a whole number of Hz"):
        Resampler(from_rate, to_rate)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"chunk_ms": math.nan}, r"chunk_ms must be a number of ms > 0"),
        ({"chunk_ms": math.inf}, r"chunk_ms must be a number of ms > 0"),
        ({"tail_silence_ms": math.inf}, r"tail_silence_ms must be a number of ms from 0"),
    ],
)
def test_wav_input_refuses_nan_and_infinite_timings(
    tmp_path: Path, kwargs: dict[str, Any], message: str
) -> None:
    """A NaN or infinite chunk or tail length is refused, not failed on mid-stream."""
    path = write_wav(tmp_path / "in.wav", 16000)
    with pytest.raises(ValueError, match=message):
        WavFileInput(path, **kwargs)


def test_a_wav_file_declaring_one_hertz_is_refused(tmp_path: Path) -> None:
    """A file whose header says 1 Hz is an AudioFormatError, not a stalled resampler."""
    path = write_wav(tmp_path / "slow.wav", 1)
    with pytest.raises(AudioFormatError, match="declares a sample rate of 1 Hz"):
        WavFileInput(path)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"tools": "yes"}, TypeError, r"ModelCapabilities\.tools must be a bool"),
        ({"input_sample_rates": (16,)}, ValueError, r"Rates are in Hz, not kHz"),
        ({"output_sample_rate": math.nan}, ValueError, r"output_sample_rate must be a whole"),
        ({"connection_limit_s": math.nan}, ValueError, r"connection_limit_s must be a number"),
        ({"input_modalities": ("video",)}, ValueError, r"holds 'video'"),
    ],
)
def test_capabilities_refuse_values_that_break_later(
    kwargs: dict[str, Any], error: type, message: str
) -> None:
    """A plugin's capabilities are checked when built (bidi models and input checks use them)."""
    with pytest.raises(error, match=message):
        ModelCapabilities(**kwargs)


async def test_a_nan_open_timeout_set_by_a_plugin_is_refused_at_start() -> None:
    """A model whose open_timeout is NaN (a plugin that forgot to check) fails start() at once."""
    model = SimulatedModel()
    model.open_timeout = math.nan
    with pytest.raises(ConfigError, match=r"SimulatedModel\.open_timeout must be a number > 0"):
        await model.start()
    assert model.state.value == "idle"
