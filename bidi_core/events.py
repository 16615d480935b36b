"""The event schema shared by every bidi model.

Events are frozen, keyword-only ``attrs`` classes with a ``type`` discriminator.
Audio and image payloads are ``bytes`` in memory (with a short ``repr``);
:meth:`BidiEvent.to_dict` gives a JSON-safe ``dict`` (bytes as base64) and
:func:`from_dict` rebuilds any event from it exactly::

    >>> from bidi_core.events import BidiTextInputEvent, from_dict
    >>> event = BidiTextInputEvent(text="hi")
    >>> from_dict(event.to_dict()) == event
    True

Input events (:data:`BidiInputEvent`) are passed to ``model.send()``; output
events (:data:`BidiOutputEvent`) are yielded by ``model.receive()``.
"""

from __future__ import annotations

import base64
import typing
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar, Literal, TypeAlias

import attrs

from ._event_checks import (
    check_audio,
    check_base64,
    need_bool,
    need_bytes,
    need_int,
    need_json_dict,
    need_str,
    need_typed_dict,
    wrong,
)
from ._event_decode import EventDecodeError, decode, json_copy
from ._json import short_repr
from .types import ToolResult, ToolUse

__all__ = [
    "BidiAudioDroppedEvent",
    "BidiAudioInputEvent",
    "BidiAudioStreamEvent",
    "BidiConnectionCloseEvent",
    "BidiConnectionRestartEvent",
    "BidiConnectionStartEvent",
    "BidiErrorEvent",
    "BidiEvent",
    "BidiImageInputEvent",
    "BidiInputEvent",
    "BidiInterruptionEvent",
    "BidiOutputEvent",
    "BidiResponseCompleteEvent",
    "BidiResponseStartEvent",
    "BidiTextInputEvent",
    "BidiToolCancelEvent",
    "BidiTranscriptStreamEvent",
    "BidiUsageEvent",
    "EventDecodeError",
    "StopReason",
    "ToolResultEvent",
    "ToolUseStreamEvent",
    "event_types",
    "from_dict",
]

StopReason: TypeAlias = Literal["complete", "interrupted", "tool_use", "error"]
_STOP_REASONS: tuple[str, ...] = typing.get_args(StopReason)

_EVENT_CLASSES: dict[str, type[BidiEvent]] = {}


def _bytes_repr(value: bytes) -> str:
    return f"<{len(value)} bytes>" if isinstance(value, bytes) else short_repr(value)


def _bytes_field() -> Any:
    return attrs.field(repr=_bytes_repr)


def _str_tuple(value: Iterable[str]) -> tuple[str, ...]:
    where = "BidiToolCancelEvent.tool_use_ids"
    if isinstance(value, str):  # tuple("call_1") would split it into characters
        msg = (
            f"{where} must be a sequence of ids, got the single str {short_repr(value)}; "
            "wrap it in a tuple."
        )
        raise TypeError(msg)
    if not isinstance(typing.cast(object, value), Iterable) or isinstance(value, bytes | dict):
        kind = type(value).__name__
        msg = f"{where} must be a sequence of ids (got {short_repr(value)}, a {kind})."
        raise TypeError(msg)
    return tuple(value)


def _to_dict(value: Any) -> Any:
    # Anything else is kept, for the event's check to refuse naming the field.
    return dict(value) if isinstance(value, Mapping) else value


def _dict_field() -> Any:
    return attrs.field(factory=dict, converter=_to_dict, hash=False)


class BidiEvent:
    """Base class of every event. Subclasses set the ``type`` discriminator."""

    __slots__ = ()

    type: ClassVar[str]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        event_type = cls.__dict__.get("type")
        if isinstance(event_type, str):
            _EVENT_CLASSES[event_type] = cls

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-safe ``dict`` of this event; ``bytes`` become base64 strings."""
        out: dict[str, Any] = {"type": self.type}
        for field in attrs.fields(type(self)):  # type: ignore[arg-type]
            value = getattr(self, field.name)
            if isinstance(value, bytes):
                value = base64.b64encode(value).decode("ascii")
            elif isinstance(value, tuple):
                value = list(value)
            elif isinstance(value, dict):
                value = json_copy(value)
            out[field.name] = value
        return out


# --------------------------------------------------------------------------- input


@attrs.frozen(kw_only=True)
class BidiTextInputEvent(BidiEvent):
    """Text from the user (or another role) to the model.

    Attributes:
        text: The text.
        role: Who says it; models take ``"user"``.
    """

    type: ClassVar[str] = "bidi_text_input"
    text: str
    role: str = "user"

    def __attrs_post_init__(self) -> None:
        if type(self.text) is not str:
            need_str(self, "text")
        if type(self.role) is not str:
            need_str(self, "role")


@attrs.frozen(kw_only=True)
class BidiAudioInputEvent(BidiEvent):
    """A chunk of audio to stream to the model.

    Attributes:
        audio: Raw samples; for ``format="pcm"``, signed 16-bit little-endian.
        format: ``"pcm"`` (the only format models take unless their capabilities say otherwise).
        sample_rate: Samples per second of ``audio``. Models check it against
            ``capabilities.input_sample_rates`` and resample or refuse.
        channels: Interleaved channels; models take mono.
    """

    type: ClassVar[str] = "bidi_audio_input"
    audio: bytes = _bytes_field()
    sample_rate: int
    format: str = "pcm"
    channels: int = 1

    __attrs_post_init__ = check_audio


@attrs.frozen(kw_only=True)
class BidiImageInputEvent(BidiEvent):
    """An image (e.g. a video frame) for models that take image input.

    Attributes:
        image: The encoded image (JPEG, PNG, ...), raw or base64 per ``encoding``.
        mime_type: e.g. ``"image/jpeg"``.
        encoding: ``"raw"`` if ``image`` holds the file bytes, ``"base64"`` if it holds base64 text.
    """

    type: ClassVar[str] = "bidi_image_input"
    image: bytes = _bytes_field()
    mime_type: str
    encoding: Literal["raw", "base64"] = "raw"

    def __attrs_post_init__(self) -> None:
        need_bytes(self, "image", "the image file, or its base64 text with encoding='base64'")
        if type(self.mime_type) is not str:
            need_str(self, "mime_type")
        if self.encoding not in ("raw", "base64"):
            wrong(self, "encoding", "'raw' or 'base64'", self.encoding, ValueError)
        if self.encoding == "base64":
            check_base64(self, "image")

    def raw_bytes(self) -> bytes:
        """Return the image file bytes whatever ``encoding`` says."""
        return base64.b64decode(self.image) if self.encoding == "base64" else self.image


@attrs.frozen(kw_only=True)
class ToolResultEvent(BidiEvent):
    """The result of a tool call, sent back to the model."""

    type: ClassVar[str] = "tool_result"
    tool_result: ToolResult = attrs.field(hash=False)

    def __attrs_post_init__(self) -> None:
        result = need_typed_dict(
            self, "tool_result", {"toolUseId": "str", "status": "", "content": ""}
        )
        if result["status"] not in ("success", "error"):
            wrong(
                self, "tool_result['status']", "'success' or 'error'", result["status"], ValueError
            )
        content = result["content"]
        if not isinstance(content, list | tuple):
            wrong(
                self, "tool_result['content']", "a list of {'text': ...} or {'json': ...}", content
            )
        for i, item in enumerate(content):
            if not isinstance(item, dict):
                wrong(self, f"tool_result['content'][{i}]", "a dict such as {'text': ...}", item)
            if "text" in item and not isinstance(item["text"], str):
                wrong(self, f"tool_result['content'][{i}]['text']", "a str", item["text"])


# -------------------------------------------------------------------------- output


@attrs.frozen(kw_only=True)
class BidiConnectionStartEvent(BidiEvent):
    """The first event of every ``receive()``: the connection is open."""

    type: ClassVar[str] = "bidi_connection_start"
    connection_id: str
    model: str

    def __attrs_post_init__(self) -> None:
        if type(self.connection_id) is not str:
            need_str(self, "connection_id")
        if type(self.model) is not str:
            need_str(self, "model")


@attrs.frozen(kw_only=True)
class BidiConnectionRestartEvent(BidiEvent):
    """Emitted by the agent when it restarts the model connection (e.g. at a time limit).

    Attributes:
        reason: Machine-readable reason, e.g. ``"timeout"``.
        message: The human-readable message of the error that caused the restart.
        restart_config: What the new connection is started with (e.g. a resumption handle).
    """

    type: ClassVar[str] = "bidi_connection_restart"
    reason: str
    message: str
    restart_config: dict[str, Any] = _dict_field()

    def __attrs_post_init__(self) -> None:
        if type(self.reason) is not str:
            need_str(self, "reason")
        if type(self.message) is not str:
            need_str(self, "message")
        need_json_dict(self, "restart_config")


@attrs.frozen(kw_only=True)
class BidiConnectionCloseEvent(BidiEvent):
    """The connection closed (emitted by the agent when it stops)."""

    type: ClassVar[str] = "bidi_connection_close"
    connection_id: str
    reason: str

    def __attrs_post_init__(self) -> None:
        if type(self.connection_id) is not str:
            need_str(self, "connection_id")
        if type(self.reason) is not str:
            need_str(self, "reason")


@attrs.frozen(kw_only=True)
class BidiResponseStartEvent(BidiEvent):
    """The model began a turn; one per model turn."""

    type: ClassVar[str] = "bidi_response_start"
    response_id: str

    def __attrs_post_init__(self) -> None:
        if type(self.response_id) is not str:
            need_str(self, "response_id")


@attrs.frozen(kw_only=True)
class BidiAudioStreamEvent(BidiEvent):
    """A chunk of the model's spoken output."""

    type: ClassVar[str] = "bidi_audio_stream"
    audio: bytes = _bytes_field()
    sample_rate: int
    format: str = "pcm"
    channels: int = 1
    response_id: str | None = None

    def __attrs_post_init__(self) -> None:
        check_audio(self)
        if self.response_id is not None and type(self.response_id) is not str:
            need_str(self, "response_id", optional=True)


@attrs.frozen(kw_only=True)
class BidiTranscriptStreamEvent(BidiEvent):
    """A transcript delta of the user's or the assistant's speech (or text output).

    Attributes:
        role: ``"user"`` or ``"assistant"``.
        text: The new text (a delta), or the whole utterance when ``is_final``.
        is_final: True once per utterance, carrying the final text.
        current_transcript: The utterance so far, when the provider gives it.
        item_id: Provider id of the utterance, when it has one.
    """

    type: ClassVar[str] = "bidi_transcript_stream"
    role: str
    text: str
    is_final: bool
    current_transcript: str | None = None
    item_id: str | None = None

    def __attrs_post_init__(self) -> None:
        if type(self.role) is not str:
            need_str(self, "role")
        if type(self.text) is not str:
            need_str(self, "text")
        final: object = self.is_final  # typed object: mypy may not assume it is a bool
        if type(final) is not bool:
            need_bool(self, "is_final")
        if self.current_transcript is not None and type(self.current_transcript) is not str:
            need_str(self, "current_transcript", optional=True)
        if self.item_id is not None and type(self.item_id) is not str:
            need_str(self, "item_id", optional=True)


@attrs.frozen(kw_only=True)
class BidiInterruptionEvent(BidiEvent):
    """The user barged in while a response was playing: drop queued playback."""

    type: ClassVar[str] = "bidi_interruption"
    reason: str = "user_speech"
    response_id: str | None = None

    def __attrs_post_init__(self) -> None:
        if type(self.reason) is not str:
            need_str(self, "reason")
        if self.response_id is not None and type(self.response_id) is not str:
            need_str(self, "response_id", optional=True)


@attrs.frozen(kw_only=True)
class BidiResponseCompleteEvent(BidiEvent):
    """The model finished a turn (``stop_reason`` says how)."""

    type: ClassVar[str] = "bidi_response_complete"
    response_id: str
    stop_reason: StopReason = "complete"

    def __attrs_post_init__(self) -> None:
        if type(self.response_id) is not str:
            need_str(self, "response_id")
        if self.stop_reason not in _STOP_REASONS:
            expected = ", ".join(map(repr, _STOP_REASONS))
            wrong(self, "stop_reason", f"one of {expected}", self.stop_reason, ValueError)


@attrs.frozen(kw_only=True)
class BidiUsageEvent(BidiEvent):
    """Token usage **since the previous usage event** (incremental, never cumulative).

    Attributes:
        input_tokens: Input tokens in this increment.
        output_tokens: Output tokens in this increment.
        total_tokens: Their sum as the provider counts it.
        input_details: Per-modality input tokens, e.g. ``{"text": 3, "audio": 40}``.
        output_details: Per-modality output tokens.
        cached_tokens: Input tokens served from the provider's cache.
    """

    type: ClassVar[str] = "bidi_usage"
    input_tokens: int
    output_tokens: int
    total_tokens: int
    input_details: dict[str, int] = _dict_field()
    output_details: dict[str, int] = _dict_field()
    cached_tokens: int = 0

    def __attrs_post_init__(self) -> None:
        for name in ("input_tokens", "output_tokens", "total_tokens", "cached_tokens"):
            need_int(self, name)
        for name in ("input_details", "output_details"):
            details = getattr(self, name)
            if not isinstance(details, dict) or not all(
                isinstance(k, str) and type(v) is int for k, v in details.items()
            ):
                wrong(self, name, "a dict of str to int, e.g. {'audio': 40}", details)


@attrs.frozen(kw_only=True)
class BidiErrorEvent(BidiEvent):
    """The provider reported an error; if ``recoverable`` the connection is still usable."""

    type: ClassVar[str] = "bidi_error"
    message: str
    code: str | None = None
    recoverable: bool = True
    details: dict[str, Any] = _dict_field()

    def __attrs_post_init__(self) -> None:
        if type(self.message) is not str:
            need_str(self, "message")
        if self.code is not None and type(self.code) is not str:
            need_str(self, "code", optional=True)
        recoverable: object = self.recoverable
        if type(recoverable) is not bool:
            need_bool(self, "recoverable")
        need_json_dict(self, "details")


@attrs.frozen(kw_only=True)
class ToolUseStreamEvent(BidiEvent):
    """The model asks for a tool call."""

    type: ClassVar[str] = "tool_use_stream"
    tool_use: ToolUse = attrs.field(hash=False)

    def __attrs_post_init__(self) -> None:
        need_typed_dict(self, "tool_use", {"toolUseId": "str", "name": "str", "input": ""})


@attrs.frozen(kw_only=True)
class BidiToolCancelEvent(BidiEvent):
    """The provider withdrew pending tool calls (e.g. after an interruption)."""

    type: ClassVar[str] = "bidi_tool_cancel"
    tool_use_ids: tuple[str, ...] = attrs.field(converter=_str_tuple)

    def __attrs_post_init__(self) -> None:
        for i, tool_use_id in enumerate(self.tool_use_ids):
            if not isinstance(tool_use_id, str):
                wrong(self, f"tool_use_ids[{i}]", "a str", tool_use_id)


@attrs.frozen(kw_only=True)
class BidiAudioDroppedEvent(BidiEvent):
    """The agent dropped output audio under back-pressure (see ``BidiAgent`` docs).

    Attributes:
        dropped_chunks: Chunks dropped since the previous such event.
        dropped_bytes: Bytes dropped since the previous such event.
        reason: Why, e.g. ``"output_queue_full"``.
    """

    type: ClassVar[str] = "bidi_audio_dropped"
    dropped_chunks: int
    dropped_bytes: int
    reason: str = "output_queue_full"

    def __attrs_post_init__(self) -> None:
        need_int(self, "dropped_chunks", low=0)
        need_int(self, "dropped_bytes", low=0)
        if type(self.reason) is not str:
            need_str(self, "reason")


BidiInputEvent: TypeAlias = BidiTextInputEvent | BidiAudioInputEvent | BidiImageInputEvent
BidiOutputEvent: TypeAlias = (
    BidiConnectionStartEvent
    | BidiConnectionRestartEvent
    | BidiConnectionCloseEvent
    | BidiResponseStartEvent
    | BidiAudioStreamEvent
    | BidiTranscriptStreamEvent
    | BidiInterruptionEvent
    | BidiResponseCompleteEvent
    | BidiUsageEvent
    | BidiErrorEvent
    | ToolUseStreamEvent
    | BidiToolCancelEvent
    | BidiAudioDroppedEvent
)


def event_types() -> dict[str, type[BidiEvent]]:
    """Return a copy of the ``type`` string -> event class table."""
    return dict(_EVENT_CLASSES)


def from_dict(data: Mapping[str, Any]) -> BidiEvent:
    """Rebuild an event from :meth:`BidiEvent.to_dict` output.

    Args:
        data: A mapping with a ``type`` key and the event's fields.

    Returns:
        The event, equal to the one ``data`` was made from.

    Raises:
        EventDecodeError: ``type`` is unknown, or a field is missing, unknown, mistyped
            or refused by the event's own checks, or the data nests deeper than
            100 levels. The message names the field.
    """
    event: BidiEvent = decode(data, _EVENT_CLASSES)
    return event
