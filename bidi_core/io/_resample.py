"""Streaming PCM16 conversion for the IO layer: channels to mono, any rate to any rate.

Resampling uses ``soxr`` (the ``resample`` extra), imported only when a rate
actually has to change; channel mixing needs nothing optional.
"""

from __future__ import annotations

import importlib
import sys
from types import ModuleType
from typing import Any, Final

from .._config import check_number, check_sample_rate
from .._errors import UnsupportedInputError
from .._protocol import ModelCapabilities
from ..audio import to_mono
from ._errors import MissingDependencyError

__all__ = ["RESAMPLE_EXTRA", "Resampler"]

#: How to install the resampler (soxr is on PyPI; bidi-core installs from a clone).
RESAMPLE_EXTRA: Final = (
    "pip install 'soxr>=0.3' (bidi-core's [resample] extra; from a clone of bidi: "
    "./dev install 'bidi-core[resample]')"
)

_QUALITIES = ("QQ", "LQ", "MQ", "HQ", "VHQ")


def _import_soxr(from_rate: int, to_rate: int) -> tuple[ModuleType, ModuleType]:
    try:
        numpy = importlib.import_module("numpy")  # optional: only when resampling
        soxr = importlib.import_module("soxr")
    except ImportError as exc:
        msg = (
            f"Converting audio from {from_rate} Hz to {to_rate} Hz needs the soxr "
            f"resampler, which is not installed ({exc}). Install it with: {RESAMPLE_EXTRA}"
        )
        raise MissingDependencyError(msg) from exc
    return numpy, soxr


def choose_input_rate(capabilities: ModelCapabilities, source_rate: int, *, what: str) -> int:
    """Return the rate to send *source_rate* audio at: kept if the model accepts it.

    Otherwise the model's preferred rate, ``capabilities.input_sample_rates[0]``.

    Raises:
        UnsupportedInputError: The model takes no audio input.
    """
    if "audio" not in capabilities.input_modalities:
        modalities = ", ".join(capabilities.input_modalities) or "none"
        msg = (
            f"{what} produces audio, but the model takes no audio input "
            f"(input modalities: {modalities}); use a text input instead."
        )
        raise UnsupportedInputError(msg)
    rates = capabilities.input_sample_rates
    if not rates or source_rate in rates:
        return source_rate
    return rates[0]


def _numpy_or_none() -> ModuleType | None:
    module = sys.modules.get("numpy")
    if module is not None:
        return module
    try:
        return importlib.import_module("numpy")  # optional speed-up for channel mixing
    except ImportError:
        return None


class Resampler:
    """Convert a stream of PCM16 chunks to mono at another sample rate.

    Interleaved multi-channel input is averaged to mono first; then, if the rates
    differ, a ``soxr.ResampleStream`` converts it, carrying filter state across
    chunks so chunk boundaries are inaudible. Chunks need not hold whole frames:
    a partial frame is kept for the next call. Call :meth:`flush` at the end of the
    stream to get the samples still inside the filter.

    Args:
        from_rate: Sample rate of the input, in Hz.
        to_rate: Sample rate of the output, in Hz.
        channels: Interleaved channels in the input (the output is mono).
        quality: soxr quality recipe: ``"QQ"``, ``"LQ"``, ``"MQ"``, ``"HQ"`` or ``"VHQ"``.

    Raises:
        MissingDependencyError: The rates differ and ``soxr`` is not installed; the
            message says how to install it (:data:`RESAMPLE_EXTRA`).
        ValueError: A rate is outside 8,000-192,000 Hz, the channel count is not a
            positive int, or ``quality`` is unknown.
    """

    def __init__(
        self, from_rate: int, to_rate: int, *, channels: int = 1, quality: str = "HQ"
    ) -> None:
        from_rate = check_sample_rate(from_rate, where="Resampler from_rate")
        to_rate = check_sample_rate(to_rate, where="Resampler to_rate")
        channels = check_number(channels, where="Resampler channels", minimum=1, integer=True)
        if quality not in _QUALITIES:
            msg = f"quality must be one of {_QUALITIES!r} (got {quality!r})."
            raise ValueError(msg)
        self.from_rate = from_rate
        self.to_rate = to_rate
        self.channels = channels
        self.quality = quality
        self._frame = 2 * channels
        self._partial = b""
        self._np: Any = None
        self._stream: Any = None
        self._soxr: Any = None
        if from_rate != to_rate:
            self._np, self._soxr = _import_soxr(from_rate, to_rate)
            self._stream = self._new_stream()
        elif channels > 1:
            self._np = _numpy_or_none()

    def _new_stream(self) -> Any:
        return self._soxr.ResampleStream(
            self.from_rate, self.to_rate, 1, dtype="int16", quality=self.quality
        )

    @property
    def resamples(self) -> bool:
        """Whether the rate changes (so soxr is in use)."""
        return self._stream is not None

    def _mono(self, pcm: bytes) -> bytes:
        if self.channels == 1:
            return pcm
        np = self._np
        if np is None:
            return to_mono(pcm, self.channels)
        frames = np.frombuffer(pcm, dtype="<i2").reshape(-1, self.channels)
        mixed = np.rint(frames.mean(axis=1)).astype("<i2")
        return bytes(mixed.tobytes())

    def process(self, pcm: bytes) -> bytes:
        """Convert one chunk; returns the mono output available so far (maybe empty)."""
        data = self._partial + pcm if self._partial else pcm
        whole = len(data) - len(data) % self._frame
        self._partial = data[whole:]
        mono = self._mono(data[:whole])
        if self._stream is None:
            return mono
        if not mono:
            return b""
        np = self._np
        out = self._stream.resample_chunk(np.frombuffer(mono, dtype="<i2"))
        return bytes(out.astype("<i2", copy=False).tobytes())

    def flush(self) -> bytes:
        """End the stream: return the samples still held by the filter, and reset it.

        A trailing partial frame is dropped. The resampler can be used again afterwards.
        """
        self._partial = b""
        if self._stream is None:
            return b""
        np = self._np
        out = self._stream.resample_chunk(np.zeros(0, dtype="<i2"), last=True)
        self._stream = self._new_stream()
        return bytes(out.astype("<i2", copy=False).tobytes())

    def reset(self) -> None:
        """Drop buffered input and filter state without returning it (e.g. on barge-in)."""
        self._partial = b""
        if self._stream is not None:
            self._stream = self._new_stream()

    def __repr__(self) -> str:
        return (
            f"<Resampler {self.from_rate} Hz x{self.channels} -> {self.to_rate} Hz mono"
            f"{' (soxr ' + self.quality + ')' if self._stream is not None else ''}>"
        )
