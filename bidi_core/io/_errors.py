"""Errors raised by the IO channels (defined in the core hierarchy, re-exported here)."""

from __future__ import annotations

from .._errors import AudioDeviceError, AudioFormatError, MissingDependencyError

__all__ = ["AudioDeviceError", "AudioFormatError", "MissingDependencyError"]
