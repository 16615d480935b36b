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
import binascii
import difflib
import types
import typing
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar, Literal, TypeAlias, Union

import attrs

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
    "BidiServerToolEvent",
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

_EVENT_CLASSES: dict[str, type[BidiEvent]] = {}


def _bytes_repr(value: bytes) -> str:
    return f"<{len(value)} bytes>"


def _bytes_field() -> Any:
    return attrs.field(repr=_bytes_repr)


def _str_tuple(value: Iterable[str]) -> tuple[str, ...]:
    if isinstance(value, str):  # tuple("call_1") would split it into characters
        msg = f"Expected a sequence of ids, got the single str {value!r}; wrap it: ({value!r},)."
        raise TypeError(msg)
    return tuple(value)


def _dict_field() -> Any:
    return attrs.field(factory=dict, converter=dict, hash=False)


class EventDecodeError(ValueError):
    """A dictionary could not be turned into an event; the message says which field is wrong."""


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
                value = _json_copy(value)
            out[field.name] = value
        return out


def _json_copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _json_copy(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_copy(v) for v in value]
    return value


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

    def raw_bytes(self) -> bytes:
        """Return the image file bytes whatever ``encoding`` says."""
        return base64.b64decode(self.image) if self.encoding == "base64" else self.image


@attrs.frozen(kw_only=True)
class ToolResultEvent(BidiEvent):
    """The result of a tool call, sent back to the model."""

    type: ClassVar[str] = "tool_result"
    tool_result: ToolResult = attrs.field(hash=False)


# -------------------------------------------------------------------------- output


@attrs.frozen(kw_only=True)
class BidiConnectionStartEvent(BidiEvent):
    """The first event of every ``receive()``: the connection is open."""

    type: ClassVar[str] = "bidi_connection_start"
    connection_id: str
    model: str


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


@attrs.frozen(kw_only=True)
class BidiConnectionCloseEvent(BidiEvent):
    """The connection closed (emitted by the agent when it stops)."""

    type: ClassVar[str] = "bidi_connection_close"
    connection_id: str
    reason: str


@attrs.frozen(kw_only=True)
class BidiResponseStartEvent(BidiEvent):
    """The model began a turn; one per model turn."""

    type: ClassVar[str] = "bidi_response_start"
    response_id: str


@attrs.frozen(kw_only=True)
class BidiAudioStreamEvent(BidiEvent):
    """A chunk of the model's spoken output."""

    type: ClassVar[str] = "bidi_audio_stream"
    audio: bytes = _bytes_field()
    sample_rate: int
    format: str = "pcm"
    channels: int = 1
    response_id: str | None = None


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


@attrs.frozen(kw_only=True)
class BidiInterruptionEvent(BidiEvent):
    """The user barged in while a response was playing: drop queued playback."""

    type: ClassVar[str] = "bidi_interruption"
    reason: str = "user_speech"
    response_id: str | None = None


@attrs.frozen(kw_only=True)
class BidiResponseCompleteEvent(BidiEvent):
    """The model finished a turn (``stop_reason`` says how)."""

    type: ClassVar[str] = "bidi_response_complete"
    response_id: str
    stop_reason: StopReason = "complete"


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


@attrs.frozen(kw_only=True)
class BidiErrorEvent(BidiEvent):
    """The provider reported an error; if ``recoverable`` the connection is still usable."""

    type: ClassVar[str] = "bidi_error"
    message: str
    code: str | None = None
    recoverable: bool = True
    details: dict[str, Any] = _dict_field()


@attrs.frozen(kw_only=True)
class ToolUseStreamEvent(BidiEvent):
    """The model asks for a tool call."""

    type: ClassVar[str] = "tool_use_stream"
    tool_use: ToolUse = attrs.field(hash=False)


@attrs.frozen(kw_only=True)
class BidiToolCancelEvent(BidiEvent):
    """The provider withdrew pending tool calls (e.g. after an interruption)."""

    type: ClassVar[str] = "bidi_tool_cancel"
    tool_use_ids: tuple[str, ...] = attrs.field(converter=_str_tuple)


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


@attrs.frozen(kw_only=True)
class BidiServerToolEvent(BidiEvent):
    """A tool the provider runs itself (OpenAI's server-side MCP tools), as it happens.

    The agent does not run these calls; it passes the events on. ``phase`` is
    ``"listed"`` (the server's tools were listed: ``tools``), ``"list_failed"``,
    ``"call"`` (a call started: ``name``, ``arguments``), ``"result"`` (``output``) or
    ``"failed"`` (``error``).

    Attributes:
        phase: What happened (see above).
        server: The MCP server's label.
        item_id: The provider's id of the list or call.
        name: The tool called.
        arguments: The call's arguments (a JSON string, as the provider gives them).
        output: The call's output.
        error: Why the list or the call failed.
        tools: The tool names listed.
    """

    type: ClassVar[str] = "bidi_server_tool"
    phase: Literal["listed", "list_failed", "call", "result", "failed"]
    server: str
    item_id: str = ""
    name: str | None = None
    arguments: str | None = None
    output: str | None = None
    error: str | None = None
    tools: tuple[str, ...] = attrs.field(default=(), converter=_str_tuple)


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
    | BidiServerToolEvent
)


def event_types() -> dict[str, type[BidiEvent]]:
    """Return a copy of the ``type`` string -> event class table."""
    return dict(_EVENT_CLASSES)


# ---------------------------------------------------------------------- from_dict

_HINTS: dict[Any, dict[str, Any]] = {}


def _hints(cls: Any) -> dict[str, Any]:
    """Return the resolved type hints of an event class or a ``TypedDict`` (cached)."""
    hints = _HINTS.get(cls)
    if hints is None:
        hints = typing.get_type_hints(cls)
        _HINTS[cls] = hints
    return hints


def _describe(value: Any) -> str:
    return type(value).__name__


def _coerce(where: str, hint: Any, value: Any) -> Any:
    """Check *value* against *hint* and decode what JSON cannot carry (bytes, tuples)."""
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _coerce(where, option, value)
            except EventDecodeError as exc:
                errors.append(str(exc))
        raise EventDecodeError(errors[0])
    if origin is Literal:
        allowed = typing.get_args(hint)
        if value not in allowed:
            msg = f"{where} must be one of {allowed!r} (got {value!r})."
            raise EventDecodeError(msg)
        return value
    if hint is bytes:
        if not isinstance(value, str):
            msg = f"{where} must be a base64 string (got {_describe(value)})."
            raise EventDecodeError(msg)
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError) as exc:
            msg = f"{where} is not valid base64: {exc}."
            raise EventDecodeError(msg) from exc
    if hint is bool:
        if not isinstance(value, bool):
            msg = f"{where} must be a bool (got {_describe(value)})."
            raise EventDecodeError(msg)
        return value
    if hint is int:
        if not isinstance(value, int) or isinstance(value, bool):
            msg = f"{where} must be an int (got {_describe(value)})."
            raise EventDecodeError(msg)
        return value
    if hint is str:
        if not isinstance(value, str):
            msg = f"{where} must be a str (got {_describe(value)})."
            raise EventDecodeError(msg)
        return value
    if hint is Any:
        return value
    if origin is list:
        (item_hint,) = typing.get_args(hint)
        if not isinstance(value, list | tuple):
            msg = f"{where} must be a list (got {_describe(value)})."
            raise EventDecodeError(msg)
        return [_coerce(f"{where}[{i}]", item_hint, v) for i, v in enumerate(value)]
    if origin is tuple:
        (item_hint, _) = typing.get_args(hint)
        if not isinstance(value, list | tuple):
            msg = f"{where} must be a list (got {_describe(value)})."
            raise EventDecodeError(msg)
        return tuple(_coerce(f"{where}[{i}]", item_hint, v) for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, Mapping):
            msg = f"{where} must be an object (got {_describe(value)})."
            raise EventDecodeError(msg)
        _, value_hint = typing.get_args(hint)
        for key, item in value.items():
            if not isinstance(key, str):
                msg = f"{where} must have str keys (got {key!r})."
                raise EventDecodeError(msg)
            if value_hint is not Any:
                _coerce(f"{where}[{key!r}]", value_hint, item)
        return dict(value)
    if typing.is_typeddict(hint):
        # ToolUse, ToolResult and their parts: check the keys they declare, keep the rest.
        if not isinstance(value, Mapping):
            msg = f"{where} must be an object (got {_describe(value)})."
            raise EventDecodeError(msg)
        hints = _hints(hint)
        required: frozenset[str] = hint.__required_keys__
        missing = [k for k in hints if k in required and k not in value]
        if missing:
            msg = f"{where} is missing key(s) {', '.join(map(repr, missing))}."
            raise EventDecodeError(msg)
        for key, item in value.items():
            if key in hints:
                _coerce(f"{where}[{key!r}]", hints[key], item)
        return _json_copy(dict(value))
    return value  # pragma: no cover - every field hint is handled above


def from_dict(data: Mapping[str, Any]) -> BidiEvent:
    """Rebuild an event from :meth:`BidiEvent.to_dict` output.

    Args:
        data: A mapping with a ``type`` key and the event's fields.

    Returns:
        The event, equal to the one ``data`` was made from.

    Raises:
        EventDecodeError: ``type`` is unknown, or a field is missing, unknown or mistyped.
            The message names the field.
    """
    if not isinstance(typing.cast(object, data), Mapping):
        msg = f"An event must be a mapping with a 'type' key (got {_describe(data)})."
        raise EventDecodeError(msg)
    if "type" not in data:
        msg = (
            "An event mapping needs a 'type' key naming its event type, e.g. "
            f"'bidi_text_input' (got keys {sorted(map(str, data))!r})."
        )
        raise EventDecodeError(msg)
    event_type = data.get("type")
    cls = _EVENT_CLASSES.get(event_type) if isinstance(event_type, str) else None
    if cls is None:
        close = difflib.get_close_matches(str(event_type), _EVENT_CLASSES, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        msg = (
            f"Unknown event type {event_type!r}.{hint} "
            f"Known types: {', '.join(sorted(_EVENT_CLASSES))}."
        )
        raise EventDecodeError(msg)
    fields = {f.name: f for f in attrs.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(fields) - {"type"}, key=str)
    if unknown:
        msg = (
            f"{event_type!r} event has unknown field(s) {', '.join(map(repr, unknown))}; "
            f"accepted fields: {', '.join(fields)}."
        )
        raise EventDecodeError(msg)
    hints = _hints(cls)
    kwargs: dict[str, Any] = {}
    for name, field in fields.items():
        if name not in data:
            if field.default is attrs.NOTHING:
                msg = f"{event_type!r} event is missing the required field {name!r}."
                raise EventDecodeError(msg)
            continue
        kwargs[name] = _coerce(f"{event_type!r} field {name!r}", hints[name], data[name])
    return cls(**kwargs)
