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
import numbers
import types
import typing
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar, Literal, NoReturn, TypeAlias, Union

import attrs

from ._json import json_problem, nesting_problem, short_repr
from .audio import MAX_SAMPLE_RATE, MIN_SAMPLE_RATE, check_sample_rate
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


# ------------------------------------------------------------------ field checks
#
# Every event checks its fields when it is built, so a wrong type fails at once with
# the class, the field and what is expected, instead of deep inside a provider's
# wire code (or on the provider's side). Audio events are built ~50 times a second
# per session: their check is one function with a fast path for the usual types.


def _wrong(
    event: object, name: str, expected: str, value: Any, error: type = TypeError
) -> NoReturn:
    got = short_repr(value)
    if error is TypeError:
        got = f"{got}, a {type(value).__name__}"
    msg = f"{type(event).__name__}.{name} must be {expected} (got {got})."
    raise error(msg)


def _str(event: object, name: str, *, optional: bool = False) -> None:
    value = getattr(event, name)
    if isinstance(value, str) or (optional and value is None):
        return
    _wrong(event, name, "a str or None" if optional else "a str", value)


def _bool(event: object, name: str) -> None:
    value = getattr(event, name)
    if not isinstance(value, bool):
        _wrong(event, name, "a bool", value)


def _int(event: object, name: str, *, low: int | None = None) -> None:
    value = getattr(event, name)
    if type(value) is not int:
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            _wrong(event, name, "an int", value)
        value = int(value)
        object.__setattr__(event, name, value)
    if low is not None and value < low:
        _wrong(event, name, f"an int >= {low}", value, ValueError)


def _bytes(event: object, name: str, hint: str) -> None:
    value = getattr(event, name)
    if isinstance(value, bytes):
        return
    if isinstance(value, bytearray | memoryview):
        object.__setattr__(event, name, bytes(value))
        return
    _wrong(event, name, f"bytes ({hint})", value)


def _json(event: object, name: str) -> None:
    problem = json_problem(getattr(event, name))
    if problem is not None:
        msg = f"{type(event).__name__}.{name} must be JSON data, but it has {problem}."
        raise ValueError(msg)


def _json_dict(event: object, name: str) -> None:
    if not isinstance(getattr(event, name), dict):
        _wrong(event, name, "a dict", getattr(event, name))
    _json(event, name)


def _typed_dict(event: object, name: str, keys: dict[str, str]) -> Mapping[str, Any]:
    """Check a ToolUse/ToolResult-shaped field: a dict with these str-typed keys, all JSON."""
    value = getattr(event, name)
    if not isinstance(value, dict):
        _wrong(event, name, f"a dict with keys {', '.join(map(repr, keys))}", value)
    missing = [key for key in keys if key not in value]
    if missing:
        msg = (
            f"{type(event).__name__}.{name} is missing the key(s) "
            f"{', '.join(map(repr, missing))}; it needs {', '.join(map(repr, keys))}."
        )
        raise ValueError(msg)
    for key, expected in keys.items():
        if expected == "str" and not isinstance(value[key], str):
            _wrong(event, f"{name}[{key!r}]", "a str", value[key])
    _json(event, name)
    return typing.cast(Mapping[str, Any], value)


def _audio(event: BidiAudioInputEvent | BidiAudioStreamEvent) -> None:
    """Check an audio event (the hot path: one call, no work for the usual types)."""
    if type(event.audio) is not bytes:
        _bytes(event, "audio", "PCM16 samples; use bytes(...) or array.tobytes()")
    rate = event.sample_rate
    if type(rate) is not int or not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
        where = f"{type(event).__name__}.sample_rate"
        object.__setattr__(event, "sample_rate", check_sample_rate(rate, where=where))
    if type(event.format) is not str:
        _str(event, "format")
    channels = event.channels
    if type(channels) is not int or channels < 1:
        _int(event, "channels", low=1)


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

    def __attrs_post_init__(self) -> None:
        if type(self.text) is not str:
            _str(self, "text")
        if type(self.role) is not str:
            _str(self, "role")


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

    __attrs_post_init__ = _audio


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
        _bytes(self, "image", "the image file, or its base64 text with encoding='base64'")
        if type(self.mime_type) is not str:
            _str(self, "mime_type")
        if self.encoding not in ("raw", "base64"):
            _wrong(self, "encoding", "'raw' or 'base64'", self.encoding, ValueError)
        if self.encoding == "base64":
            try:
                base64.b64decode(self.image, validate=True)
            except (binascii.Error, ValueError) as exc:
                msg = (
                    f"BidiImageInputEvent.image is not valid base64 ({exc}); pass the file "
                    "bytes with encoding='raw', or base64 text with encoding='base64'."
                )
                raise ValueError(msg) from None

    def raw_bytes(self) -> bytes:
        """Return the image file bytes whatever ``encoding`` says."""
        return base64.b64decode(self.image) if self.encoding == "base64" else self.image


@attrs.frozen(kw_only=True)
class ToolResultEvent(BidiEvent):
    """The result of a tool call, sent back to the model."""

    type: ClassVar[str] = "tool_result"
    tool_result: ToolResult = attrs.field(hash=False)

    def __attrs_post_init__(self) -> None:
        result = _typed_dict(self, "tool_result", {"toolUseId": "str", "status": "", "content": ""})
        if result["status"] not in ("success", "error"):
            _wrong(
                self, "tool_result['status']", "'success' or 'error'", result["status"], ValueError
            )
        content = result["content"]
        if not isinstance(content, list | tuple):
            _wrong(
                self, "tool_result['content']", "a list of {'text': ...} or {'json': ...}", content
            )
        for i, item in enumerate(content):
            if not isinstance(item, dict):
                _wrong(self, f"tool_result['content'][{i}]", "a dict such as {'text': ...}", item)
            if "text" in item and not isinstance(item["text"], str):
                _wrong(self, f"tool_result['content'][{i}]['text']", "a str", item["text"])


# -------------------------------------------------------------------------- output


@attrs.frozen(kw_only=True)
class BidiConnectionStartEvent(BidiEvent):
    """The first event of every ``receive()``: the connection is open."""

    type: ClassVar[str] = "bidi_connection_start"
    connection_id: str
    model: str

    def __attrs_post_init__(self) -> None:
        if type(self.connection_id) is not str:
            _str(self, "connection_id")
        if type(self.model) is not str:
            _str(self, "model")


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
            _str(self, "reason")
        if type(self.message) is not str:
            _str(self, "message")
        _json_dict(self, "restart_config")


@attrs.frozen(kw_only=True)
class BidiConnectionCloseEvent(BidiEvent):
    """The connection closed (emitted by the agent when it stops)."""

    type: ClassVar[str] = "bidi_connection_close"
    connection_id: str
    reason: str

    def __attrs_post_init__(self) -> None:
        if type(self.connection_id) is not str:
            _str(self, "connection_id")
        if type(self.reason) is not str:
            _str(self, "reason")


@attrs.frozen(kw_only=True)
class BidiResponseStartEvent(BidiEvent):
    """The model began a turn; one per model turn."""

    type: ClassVar[str] = "bidi_response_start"
    response_id: str

    def __attrs_post_init__(self) -> None:
        if type(self.response_id) is not str:
            _str(self, "response_id")


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
        _audio(self)
        if self.response_id is not None and type(self.response_id) is not str:
            _str(self, "response_id", optional=True)


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
            _str(self, "role")
        if type(self.text) is not str:
            _str(self, "text")
        final: object = self.is_final  # typed object: mypy may not assume it is a bool
        if type(final) is not bool:
            _bool(self, "is_final")
        if self.current_transcript is not None and type(self.current_transcript) is not str:
            _str(self, "current_transcript", optional=True)
        if self.item_id is not None and type(self.item_id) is not str:
            _str(self, "item_id", optional=True)


@attrs.frozen(kw_only=True)
class BidiInterruptionEvent(BidiEvent):
    """The user barged in while a response was playing: drop queued playback."""

    type: ClassVar[str] = "bidi_interruption"
    reason: str = "user_speech"
    response_id: str | None = None

    def __attrs_post_init__(self) -> None:
        if type(self.reason) is not str:
            _str(self, "reason")
        if self.response_id is not None and type(self.response_id) is not str:
            _str(self, "response_id", optional=True)


@attrs.frozen(kw_only=True)
class BidiResponseCompleteEvent(BidiEvent):
    """The model finished a turn (``stop_reason`` says how)."""

    type: ClassVar[str] = "bidi_response_complete"
    response_id: str
    stop_reason: StopReason = "complete"

    def __attrs_post_init__(self) -> None:
        if type(self.response_id) is not str:
            _str(self, "response_id")
        if self.stop_reason not in _STOP_REASONS:
            expected = ", ".join(map(repr, _STOP_REASONS))
            _wrong(self, "stop_reason", f"one of {expected}", self.stop_reason, ValueError)


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
            _int(self, name)
        for name in ("input_details", "output_details"):
            details = getattr(self, name)
            if not isinstance(details, dict) or not all(
                isinstance(k, str) and type(v) is int for k, v in details.items()
            ):
                _wrong(self, name, "a dict of str to int, e.g. {'audio': 40}", details)


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
            _str(self, "message")
        if self.code is not None and type(self.code) is not str:
            _str(self, "code", optional=True)
        recoverable: object = self.recoverable
        if type(recoverable) is not bool:
            _bool(self, "recoverable")
        _json_dict(self, "details")


@attrs.frozen(kw_only=True)
class ToolUseStreamEvent(BidiEvent):
    """The model asks for a tool call."""

    type: ClassVar[str] = "tool_use_stream"
    tool_use: ToolUse = attrs.field(hash=False)

    def __attrs_post_init__(self) -> None:
        _typed_dict(self, "tool_use", {"toolUseId": "str", "name": "str", "input": ""})


@attrs.frozen(kw_only=True)
class BidiToolCancelEvent(BidiEvent):
    """The provider withdrew pending tool calls (e.g. after an interruption)."""

    type: ClassVar[str] = "bidi_tool_cancel"
    tool_use_ids: tuple[str, ...] = attrs.field(converter=_str_tuple)

    def __attrs_post_init__(self) -> None:
        for i, tool_use_id in enumerate(self.tool_use_ids):
            if not isinstance(tool_use_id, str):
                _wrong(self, f"tool_use_ids[{i}]", "a str", tool_use_id)


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
        _int(self, "dropped_chunks", low=0)
        _int(self, "dropped_bytes", low=0)
        if type(self.reason) is not str:
            _str(self, "reason")


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
    # Checked first, without recursion: the field checks below recurse per level.
    problem = nesting_problem(dict(data))
    if problem is not None:
        msg = f"An event mapping must be JSON data, but it has {problem}."
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
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:  # the event's own field checks
        msg = f"{event_type!r} event is invalid: {exc}"
        raise EventDecodeError(msg) from exc
