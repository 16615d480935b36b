"""Checking input events against a model's capabilities before anything is sent."""

from __future__ import annotations

from typing import Any

import attrs

from ._errors import UnsupportedInputError
from ._protocol import ModelCapabilities
from .audio import StreamResampler, to_mono
from .events import (
    BidiAudioInputEvent,
    BidiImageInputEvent,
    BidiInputEvent,
    BidiTextInputEvent,
    ToolResultEvent,
)

__all__ = ["InputPreparer", "check_input"]

_INPUT_TYPES = (BidiTextInputEvent, BidiAudioInputEvent, BidiImageInputEvent, ToolResultEvent)


def check_input(
    content: Any, capabilities: ModelCapabilities, *, model: str
) -> BidiInputEvent | ToolResultEvent:
    """Raise :class:`UnsupportedInputError` unless *content* is something the model takes.

    Audio at a rate outside ``capabilities.input_sample_rates`` passes only when
    ``capabilities.resamples_input`` is true (the caller then resamples).

    Args:
        content: What the user passed to ``send()``.
        capabilities: The model's capabilities.
        model: The model's name, for messages.

    Returns:
        *content*, typed.
    """
    if not isinstance(content, _INPUT_TYPES):
        names = ", ".join(t.__name__ for t in _INPUT_TYPES)
        msg = (
            f"{model} cannot send a {type(content).__name__}; send() takes one of: {names}. "
            "Output events (e.g. from receive()) cannot be sent back."
        )
        raise UnsupportedInputError(msg)
    if isinstance(content, BidiTextInputEvent):
        _require_modality("text", capabilities, model)
        if content.role not in ("user", "system"):
            msg = (
                f"{model} takes text input with role 'user' (or 'system'), "
                f"got role {content.role!r}; pass earlier assistant turns as history "
                "in start(messages=...)."
            )
            raise UnsupportedInputError(msg)
    elif isinstance(content, BidiAudioInputEvent):
        _require_modality("audio", capabilities, model)
        if content.format != "pcm":
            msg = (
                f"{model} takes audio with format='pcm' (16-bit little-endian), "
                f"got format={content.format!r}; decode it to PCM16 first."
            )
            raise UnsupportedInputError(msg)
        if content.channels < 1 or (content.channels != 1 and not capabilities.resamples_input):
            msg = f"{model} takes mono audio (channels=1), got channels={content.channels!r}."
            raise UnsupportedInputError(msg)
        if len(content.audio) % (2 * content.channels):
            msg = (
                f"{model} got {len(content.audio)} bytes of PCM16 audio with "
                f"{content.channels} channel(s), which is not a whole number of frames."
            )
            raise UnsupportedInputError(msg)
        if content.sample_rate not in capabilities.input_sample_rates and (
            not capabilities.resamples_input or content.sample_rate <= 0
        ):
            rates = ", ".join(map(str, capabilities.input_sample_rates))
            msg = (
                f"{model} takes audio at input_sample_rates ({rates}) Hz, "
                f"got sample_rate={content.sample_rate!r}; resample it first."
            )
            raise UnsupportedInputError(msg)
    elif isinstance(content, BidiImageInputEvent):
        _require_modality("image", capabilities, model)
        if content.mime_type not in capabilities.image_mime_types:
            kinds = ", ".join(capabilities.image_mime_types)
            msg = f"{model} takes images of type {kinds}, got mime_type={content.mime_type!r}."
            raise UnsupportedInputError(msg)
    elif not capabilities.tools:
        msg = f"{model} does not support tools (capabilities.tools is False)."
        raise UnsupportedInputError(msg)
    return content


def _require_modality(modality: str, capabilities: ModelCapabilities, model: str) -> None:
    if modality not in capabilities.input_modalities:
        accepted = ", ".join(capabilities.input_modalities)
        msg = (
            f"{model} does not take {modality} input (capabilities.input_modalities is {accepted})."
        )
        raise UnsupportedInputError(msg)


class InputPreparer:
    """Converts accepted audio to mono at the provider's rate, keeping resampler state.

    Args:
        target_rate: The rate the provider is sent.
        accepted_rates: Rates passed through unchanged.
    """

    def __init__(self, target_rate: int, accepted_rates: tuple[int, ...] = ()) -> None:
        self.target_rate = target_rate
        self.accepted_rates = accepted_rates or (target_rate,)
        self._resamplers: dict[int, StreamResampler] = {}

    def audio(self, event: BidiAudioInputEvent) -> BidiAudioInputEvent:
        """Return *event* as mono PCM16 at an accepted rate."""
        pcm = to_mono(event.audio, event.channels)
        rate = event.sample_rate
        if rate not in self.accepted_rates:
            resampler = self._resamplers.get(rate)
            if resampler is None:
                resampler = self._resamplers[rate] = StreamResampler(rate, self.target_rate)
            pcm = resampler.process(pcm)
            rate = self.target_rate
        if pcm is event.audio and rate == event.sample_rate:
            return event
        return attrs.evolve(event, audio=pcm, sample_rate=rate, channels=1)
