"""PCM16 helpers: level, channel mixing and streaming resampling (pure Python).

Models use :class:`StreamResampler` to accept audio at rates the provider does not
take (DESIGN §2: resample inside the adapter). The IO layer prefers ``soxr`` (the
``resample`` extra) for file and microphone audio where quality matters more.
"""

from __future__ import annotations

import math
import numbers
import sys
from array import array

from ._json import short_repr

__all__ = [
    "MAX_SAMPLE_RATE",
    "MIN_SAMPLE_RATE",
    "StreamResampler",
    "check_sample_rate",
    "duration_ms",
    "rms",
    "silence",
    "to_channels",
    "to_mono",
]

_LITTLE = sys.byteorder == "little"

#: The lowest sample rate bidi takes anywhere (events, model config, IO channels), in Hz.
MIN_SAMPLE_RATE = 8000
#: The highest sample rate bidi takes anywhere, in Hz.
MAX_SAMPLE_RATE = 192_000


def check_sample_rate(value: object, *, where: str) -> int:
    """Return *value* as an ``int`` sample rate, or raise naming *where*.

    A rate is a whole number of Hz from :data:`MIN_SAMPLE_RATE` to
    :data:`MAX_SAMPLE_RATE` (8,000 to 192,000). Anything else is refused before it
    can corrupt audio: ``16`` (kHz given for Hz) would turn 20 ms into a megabyte,
    ``1`` would block the event loop resampling, NaN or ``1e9`` would shrink a chunk
    to a sample. Integral numbers of another type (``16000.0``, ``numpy.int32``)
    are returned as ``int``.

    Raises:
        TypeError: *value* is not a number (or is a bool).
        ValueError: *value* is not a whole number in the range.
    """
    if type(value) is int and MIN_SAMPLE_RATE <= value <= MAX_SAMPLE_RATE:
        return value
    hint = (
        f"must be a whole number of Hz from {MIN_SAMPLE_RATE} to {MAX_SAMPLE_RATE} "
        f"(got {short_repr(value)})"
    )
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        msg = f"{where} {hint}, a {type(value).__name__}."
        raise TypeError(msg)
    rate = float(value)
    if not rate.is_integer() or not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
        khz = " Rates are in Hz, not kHz: 16 kHz is 16000." if 0 < rate < 1000 else ""
        msg = f"{where} {hint}.{khz}"
        raise ValueError(msg)
    return int(rate)


def _samples(pcm: bytes) -> array[int]:
    samples = array("h")
    samples.frombytes(pcm[: len(pcm) - len(pcm) % 2])
    if not _LITTLE:  # pragma: no cover - big-endian hosts
        samples.byteswap()
    return samples


def _pcm(samples: array[int]) -> bytes:
    if not _LITTLE:  # pragma: no cover
        samples = array("h", samples)
        samples.byteswap()
    return samples.tobytes()


def rms(pcm: bytes) -> float:
    """Return the root-mean-square level of PCM16 audio, 0.0 to 32768.0."""
    samples = _samples(pcm)
    if not samples:
        return 0.0
    return math.sqrt(sum(s * s for s in samples) / len(samples))


def duration_ms(num_bytes: int, sample_rate: int, channels: int = 1) -> float:
    """Return the duration in milliseconds of *num_bytes* of PCM16 audio."""
    return num_bytes / (2 * channels) / sample_rate * 1000.0


def to_mono(pcm: bytes, channels: int) -> bytes:
    """Average interleaved PCM16 channels down to mono."""
    if channels == 1:
        return pcm
    samples = _samples(pcm)
    frames = len(samples) // channels
    mono = array(
        "h",
        (
            int(sum(samples[i * channels + c] for c in range(channels)) / channels)
            for i in range(frames)
        ),
    )
    return _pcm(mono)


def to_channels(pcm: bytes, from_channels: int, to_channels: int) -> bytes:
    """Convert interleaved PCM16 between channel counts.

    Down to mono the channels are averaged; up from mono the sample is copied to
    every channel; any other change goes through mono.
    """
    if from_channels == to_channels:
        return pcm
    mono = to_mono(pcm, from_channels)
    if to_channels == 1:
        return mono
    samples = _samples(mono)
    out = array("h", bytes(2 * to_channels * len(samples)))
    for c in range(to_channels):
        out[c::to_channels] = samples
    return _pcm(out)


def silence(ms: float, sample_rate: int, channels: int = 1) -> bytes:
    """Return *ms* milliseconds of PCM16 silence (rounded down to whole frames)."""
    return bytes(2 * channels * int(sample_rate * ms / 1000))


class StreamResampler:
    """Linear-interpolation resampler for a stream of mono PCM16 chunks.

    State is carried between chunks, so chunk boundaries add no clicks and the
    output length tracks the input exactly over the stream.

    Args:
        from_rate: Input samples per second.
        to_rate: Output samples per second.
    """

    def __init__(self, from_rate: int, to_rate: int) -> None:
        from_rate = check_sample_rate(from_rate, where="StreamResampler from_rate")
        to_rate = check_sample_rate(to_rate, where="StreamResampler to_rate")
        self.from_rate = from_rate
        self.to_rate = to_rate
        self._step = from_rate / to_rate
        self._pos = 0.0  # position of the next output sample, in input samples
        self._prev: int | None = None  # last sample of the previous chunk

    def process(self, pcm: bytes) -> bytes:
        """Resample one chunk; returns the output samples available so far."""
        if self.from_rate == self.to_rate:
            return pcm
        samples = _samples(pcm)
        if not samples:
            return b""
        if self._prev is not None:
            # The previous chunk's last sample sits at index 0, so interpolation
            # across the boundary uses real data.
            source = array("h", [self._prev])
            source.extend(samples)
        else:
            source = samples
        out = array("h")
        pos = self._pos
        last = len(source) - 1
        step = self._step
        while pos <= last:
            i = int(pos)
            a = source[i]
            b = source[i + 1] if i < last else a
            out.append(int(a + (b - a) * (pos - i)))
            pos += step
        self._prev = source[last]
        self._pos = pos - last  # the last sample becomes index 0 of the next chunk
        return _pcm(out)
