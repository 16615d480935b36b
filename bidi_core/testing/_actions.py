"""What :class:`~bidi_core.testing.ScriptedAssistant` does (its actions) and its config.

A driver (the simulated model, a fake server) turns each action into its wire format.
"""

from __future__ import annotations

from typing import Any, Literal, TypeAlias

import attrs

from .._config import check_keys, check_number, check_sample_rate
from .._errors import ConfigError

__all__ = [
    "Action",
    "AssistantConfig",
    "AudioChunk",
    "Fault",
    "FaultKind",
    "Interrupted",
    "ResponseComplete",
    "ResponseStart",
    "SessionHandle",
    "ToolCall",
    "ToolCancel",
    "TranscriptDelta",
    "TranscriptFinal",
    "Usage",
    "UserSpeechStarted",
    "UserSpeechStopped",
    "UserTranscript",
]

FaultKind: TypeAlias = Literal["error", "disconnect", "malformed", "time_limit"]

_FAULT_KINDS = ("error", "disconnect", "malformed", "time_limit")


def _number(low: float, *, above: bool = False, optional: bool = False) -> Any:
    """An attrs validator: a finite number >= *low* (> *low* if *above*), or None if *optional*."""

    def check(_instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
        bounds: dict[str, Any] = {"above": low} if above else {"minimum": low}
        check_number(value, where=repr(attribute.name), optional=optional, **bounds)

    return check


def _sample_rate(_instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    check_sample_rate(value, where=repr(attribute.name))


def _fault_kind(_instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value not in _FAULT_KINDS:
        msg = f"{attribute.name!r} must be one of {', '.join(_FAULT_KINDS)} (got {value!r})."
        raise ValueError(msg)


@attrs.frozen(kw_only=True)
class AssistantConfig:
    """Behaviour knobs of :class:`ScriptedAssistant` (all keyword-only).

    Attributes:
        seed: Makes ids deterministic.
        output_sample_rate: PCM rate of spoken answers.
        chunk_ms: Duration of each :class:`AudioChunk`.
        pace: Seconds waited per second of answer audio (0 = as fast as possible,
            1.0 = real time). Long answers (``story``) are paced at least ``story_pace``.
        story_pace: Minimum pace of long answers, so tests can interrupt them.
        story_seconds: Length of a long answer.
        speech_threshold: RMS level above which input audio counts as speech.
        silence_ms: Quiet audio after speech that ends an utterance.
        time_limit_s: Emit a ``time_limit`` :class:`Fault` this long after start.
        fault_after_turns: Inject ``fault`` after this many answered turns.
        fault: The fault kind for ``fault_after_turns``.
        action_delay_s: Seconds waited before every action (on top of ``pace``), to
            emulate a slow server whose frames trickle in.
    """

    seed: int = 0
    output_sample_rate: int = attrs.field(default=24000, validator=_sample_rate)
    chunk_ms: int = attrs.field(default=20, validator=_number(0, above=True))
    pace: float = attrs.field(default=0.0, validator=_number(0))
    story_pace: float = attrs.field(default=0.25, validator=_number(0))
    story_seconds: float = attrs.field(default=30.0, validator=_number(0, above=True))
    speech_threshold: float = attrs.field(default=500.0, validator=_number(0))
    silence_ms: int = attrs.field(default=300, validator=_number(0))
    time_limit_s: float | None = attrs.field(
        default=None, validator=_number(0, above=True, optional=True)
    )
    fault_after_turns: int | None = attrs.field(default=None, validator=_number(1, optional=True))
    fault: FaultKind = attrs.field(default="error", validator=_fault_kind)
    action_delay_s: float = attrs.field(default=0.0, validator=_number(0))

    @classmethod
    def from_options(cls, options: dict[str, Any], *, where: str) -> AssistantConfig:
        """Build a config from a plain dict, rejecting unknown keys and bad values.

        Raises:
            ConfigError: A key is unknown or a value is out of range.
        """
        check_keys(options, [f.name for f in attrs.fields(cls)], where=where)
        try:
            return cls(**options)
        except (TypeError, ValueError) as exc:
            msg = f"Invalid value in {where}: {exc}"
            raise ConfigError(msg) from exc


@attrs.frozen(kw_only=True)
class ResponseStart:
    """The assistant starts a response."""

    response_id: str


@attrs.frozen(kw_only=True)
class TranscriptDelta:
    """Part of the assistant's answer text."""

    response_id: str
    item_id: str
    text: str


@attrs.frozen(kw_only=True)
class TranscriptFinal:
    """The assistant's whole answer text."""

    response_id: str
    item_id: str
    text: str


@attrs.frozen(kw_only=True)
class AudioChunk:
    """A chunk of the assistant's spoken answer (PCM16 mono)."""

    response_id: str
    item_id: str
    pcm: bytes = attrs.field(repr=lambda b: f"<{len(b)} bytes>")
    sample_rate: int


@attrs.frozen(kw_only=True)
class ToolCall:
    """The assistant calls a tool."""

    response_id: str
    tool_use_id: str
    name: str
    input: dict[str, Any]


@attrs.frozen(kw_only=True)
class ToolCancel:
    """The assistant withdraws pending tool calls."""

    tool_use_ids: tuple[str, ...]


@attrs.frozen(kw_only=True)
class ResponseComplete:
    """The response ended (``complete``, ``interrupted`` or ``tool_use``)."""

    response_id: str
    stop_reason: Literal["complete", "interrupted", "tool_use", "error"]


@attrs.frozen(kw_only=True)
class Usage:
    """Token usage of one response (incremental)."""

    response_id: str
    input_text_tokens: int
    input_audio_tokens: int
    output_text_tokens: int
    output_audio_tokens: int
    cached_tokens: int = 0

    @property
    def input_tokens(self) -> int:
        """All input tokens."""
        return self.input_text_tokens + self.input_audio_tokens

    @property
    def output_tokens(self) -> int:
        """All output tokens."""
        return self.output_text_tokens + self.output_audio_tokens


@attrs.frozen(kw_only=True)
class UserSpeechStarted:
    """Speech was detected in the input audio."""

    item_id: str
    audio_start_ms: int


@attrs.frozen(kw_only=True)
class UserSpeechStopped:
    """The user's utterance ended."""

    item_id: str
    audio_end_ms: int


@attrs.frozen(kw_only=True)
class UserTranscript:
    """What the user said (input transcription), final."""

    item_id: str
    text: str


@attrs.frozen(kw_only=True)
class Interrupted:
    """The user barged in on an active response; its remaining output is dropped."""

    response_id: str


@attrs.frozen(kw_only=True)
class SessionHandle:
    """A resumption handle: ``start(resume=...)`` with the snapshot restores memory."""

    handle: str


@attrs.frozen(kw_only=True)
class Fault:
    """An injected fault for the driver to produce in its wire format."""

    kind: FaultKind
    message: str
    code: str


Action: TypeAlias = (
    ResponseStart
    | TranscriptDelta
    | TranscriptFinal
    | AudioChunk
    | ToolCall
    | ToolCancel
    | ResponseComplete
    | Usage
    | UserSpeechStarted
    | UserSpeechStopped
    | UserTranscript
    | Interrupted
    | SessionHandle
    | Fault
)
