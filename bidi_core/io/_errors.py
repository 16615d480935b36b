"""Errors raised by the IO channels."""

from __future__ import annotations

from .._errors import BidiError

__all__ = ["AudioDeviceError", "AudioFormatError", "MissingDependencyError"]


class MissingDependencyError(BidiError, ImportError):
    """An optional package an IO channel needs is not installed; the message names the extra."""


class AudioFormatError(BidiError, ValueError):
    """An audio file cannot be read: not a WAV, not 16-bit PCM, or damaged."""


class AudioDeviceError(BidiError, OSError):
    """A microphone or speaker could not be opened or failed while streaming."""
