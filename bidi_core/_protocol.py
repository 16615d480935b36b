"""The model protocol every provider implements, and its capability flags."""

from __future__ import annotations

import math
import typing
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeAlias, runtime_checkable

import attrs

from .audio import check_sample_rate

if TYPE_CHECKING:  # annotations only: listing models does not import the event schema
    from collections.abc import AsyncIterable

    from .events import BidiInputEvent, BidiOutputEvent, ToolResultEvent
    from .types import Messages, ToolSpec

__all__ = [
    "BidiModel",
    "Modality",
    "ModelCapabilities",
    "SupportsTruncation",
]

Modality: TypeAlias = Literal["text", "audio", "image"]
_MODALITIES: tuple[str, ...] = typing.get_args(Modality)


@runtime_checkable
class BidiModel(Protocol):
    """A bidirectional streaming model connection.

    Lifecycle: ``start()`` opens the connection; ``send()`` and ``receive()`` work
    until ``stop()``; ``stop()`` is idempotent and always releases resources; after
    it, ``start()`` may be called again. See DESIGN.md §2 for every rule.
    """

    config: dict[str, Any]

    async def start(
        self,
        system_prompt: str | None = None,
        tools: list[ToolSpec] | None = None,
        messages: Messages | None = None,
        **kwargs: Any,
    ) -> None:
        """Open the connection and send system prompt, tools and history."""

    async def stop(self) -> None:
        """Close the connection; idempotent."""

    def receive(self) -> AsyncIterable[BidiOutputEvent]:
        """Yield output events until ``stop()``."""

    async def send(self, content: BidiInputEvent | ToolResultEvent) -> None:
        """Send one input event."""


@runtime_checkable
class SupportsTruncation(Protocol):
    """Optional: a model that can trim an interrupted response to what was played.

    The agent calls :meth:`truncate` after a barge-in when
    ``capabilities.output_truncation`` is true.
    """

    async def truncate(self, response_id: str, played_ms: int) -> None:
        """Tell the provider only ``played_ms`` of ``response_id``'s audio was heard."""


def _frozen_tuple(value: Any) -> tuple[Any, ...]:
    if isinstance(value, str):  # tuple("audio") would split it into characters
        msg = f"Expected a sequence, got the single str {value!r}; wrap it: ({value!r},)."
        raise TypeError(msg)
    try:
        return tuple(value)
    except TypeError:
        msg = f"Expected a sequence such as ('text', 'audio'), got {value!r}."
        raise TypeError(msg) from None


@attrs.frozen(kw_only=True)
class ModelCapabilities:
    """What a model can take and produce; checked before anything is sent.

    Attributes:
        input_modalities: What ``send()`` accepts besides tool results.
        output_modalities: What ``receive()`` produces.
        tools: Whether the model calls tools.
        interruption: Whether the model reports barge-in (``BidiInterruptionEvent``).
        output_truncation: Whether the model implements :class:`SupportsTruncation`.
        resumption: Whether a restart can resume the provider-side session.
        connection_limit_s: The provider's connection time limit, or None.
        input_sample_rates: PCM rates ``send()`` accepts for audio without resampling.
        output_sample_rate: The PCM rate of ``BidiAudioStreamEvent`` audio.
        resamples_input: Whether other input rates are resampled (else refused).
        image_mime_types: Image types accepted when ``"image"`` is an input modality.
        non_blocking_tools: Whether the provider runs non-blocking tools itself (it
            takes a tool spec's ``blocking``/``scheduling`` and results with
            ``progress``); otherwise ``BidiAgent`` emulates them.
    """

    input_modalities: tuple[Modality, ...] = attrs.field(
        default=("text", "audio"), converter=_frozen_tuple
    )
    output_modalities: tuple[Modality, ...] = attrs.field(
        default=("text", "audio"), converter=_frozen_tuple
    )
    tools: bool = True
    interruption: bool = True
    output_truncation: bool = False
    resumption: bool = False
    connection_limit_s: float | None = None
    input_sample_rates: tuple[int, ...] = attrs.field(default=(16000,), converter=_frozen_tuple)
    output_sample_rate: int = 24000
    resamples_input: bool = True
    image_mime_types: tuple[str, ...] = attrs.field(
        default=("image/jpeg", "image/png"), converter=_frozen_tuple
    )
    non_blocking_tools: bool = False

    def __attrs_post_init__(self) -> None:
        # Plugins declare these; a wrong one would break `bidi models` or input checks later.
        for name in ("input_modalities", "output_modalities"):
            for modality in getattr(self, name):
                if modality not in _MODALITIES:
                    msg = (
                        f"ModelCapabilities.{name} holds {modality!r}; modalities are "
                        f"{', '.join(map(repr, _MODALITIES))}."
                    )
                    raise ValueError(msg)
        for name in ("tools", "interruption", "output_truncation", "resumption", "resamples_input"):
            if not isinstance(getattr(self, name), bool):
                msg = f"ModelCapabilities.{name} must be a bool (got {getattr(self, name)!r})."
                raise TypeError(msg)
        limit = self.connection_limit_s
        if limit is not None and (
            isinstance(limit, bool)
            or not isinstance(limit, int | float)
            or not math.isfinite(limit)
            or limit <= 0
        ):
            msg = (
                "ModelCapabilities.connection_limit_s must be a number of seconds > 0, "
                f"or None (got {limit!r})."
            )
            raise ValueError(msg)
        for rate in self.input_sample_rates:
            check_sample_rate(rate, where="ModelCapabilities.input_sample_rates")
        check_sample_rate(self.output_sample_rate, where="ModelCapabilities.output_sample_rate")
        for mime in self.image_mime_types:
            if not isinstance(typing.cast(object, mime), str):
                msg = f"ModelCapabilities.image_mime_types must hold str (got {mime!r})."
                raise TypeError(msg)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-safe summary (used by ``bidi models`` and ``list_models()``)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in attrs.asdict(self).items()}
