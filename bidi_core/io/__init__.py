"""Input and output channels for :meth:`bidi_core.BidiAgent.run`.

* Text console: :class:`TextInput` (typed lines) and :class:`TextOutput` (a live
  transcript). No optional package needed.
* WAV files: :class:`WavFileInput` (paced in real time or as fast as possible) and
  :class:`WavFileOutput`. Files at a rate the model does not take are resampled
  with ``soxr``: ``pip install 'bidi-core[resample]'``.
* Microphone and speaker: :class:`MicrophoneInput` and :class:`SpeakerOutput`
  through ``sounddevice``: ``pip install 'bidi-core[sounddevice]'``. They are
  loaded on first use, so importing this package never imports sounddevice,
  NumPy or soxr.
* Building blocks for channels of your own: :class:`PlaybackTracker` (which
  response's audio has been played), :class:`Resampler` (streaming PCM16 mono
  conversion), and the protocols :class:`BidiInput` and :class:`BidiOutput`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._errors import AudioDeviceError, AudioFormatError, MissingDependencyError
from ._playback import PlaybackTracker
from ._protocol import BidiInput, BidiOutput
from ._resample import RESAMPLE_EXTRA, Resampler, choose_input_rate
from ._text import TextInput, TextOutput
from ._wav import WavFileInput, WavFileOutput

if TYPE_CHECKING:
    from ._sounddevice import SOUNDDEVICE_EXTRA, MicrophoneInput, SpeakerOutput

# The device channels' module is small, but loading it on use keeps the door shut
# on anything optional for users who only want text or files.
_LAZY = {
    "MicrophoneInput": "._sounddevice",
    "SOUNDDEVICE_EXTRA": "._sounddevice",
    "SpeakerOutput": "._sounddevice",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        msg = f"module 'bidi_core.io' has no attribute {name!r}"
        raise AttributeError(msg)
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "AudioDeviceError",
    "AudioFormatError",
    "BidiInput",
    "BidiOutput",
    "MicrophoneInput",
    "MissingDependencyError",
    "PlaybackTracker",
    "RESAMPLE_EXTRA",
    "Resampler",
    "SOUNDDEVICE_EXTRA",
    "SpeakerOutput",
    "TextInput",
    "TextOutput",
    "WavFileInput",
    "WavFileOutput",
    "choose_input_rate",
]
